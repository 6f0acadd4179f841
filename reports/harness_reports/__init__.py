"""Tables and figures from the runs a harness sweep left in MLflow (never from console logs)."""

from harness_reports.aggregate import summarize
from harness_reports.runs import load_runs

__all__ = ["load_runs", "summarize"]
