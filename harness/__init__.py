"""harness: benchmark clustering methods across datasets, seeds and input sizes, tracked in MLflow.

Plugins import what they need from here::

    from harness import DatasetSpec, MethodResult, MethodSpec, MetricSpec, Param, hookimpl
"""

from harness.hookspecs import hookimpl
from harness.types import (
    Dataset,
    DatasetFormat,
    DatasetSpec,
    JobContext,
    MethodResult,
    MethodSpec,
    MetricSpec,
    Param,
)

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "DatasetFormat",
    "DatasetSpec",
    "JobContext",
    "MethodResult",
    "MethodSpec",
    "MetricSpec",
    "Param",
    "hookimpl",
]
