"""Recorders: where a sweep's runs are kept, behind one interface, and the listener that feeds them.

:class:`harness.tracking.Tracker` (MLflow) and :class:`harness.journal.Journal` (files, for a machine
without the store) implement :class:`Recorder` with the same signatures, so the runner, the import
of a journal and the tests treat both alike. Only the parent process records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from harness.events import (
    CurvePointLogged,
    Event,
    JobEnded,
    JobStarted,
    SweepEnded,
    SweepInterrupted,
    SweepStarted,
)

if TYPE_CHECKING:
    import pandas as pd

    from harness.messages import Outcome
    from harness.sweep import Job


class Recorder(Protocol):
    """A store of runs: a parent run per sweep, a run per job, read back as a tidy frame."""

    experiment_id: str

    def settle_orphans(self) -> list[str]:
        """Mark KILLED the runs a dead harness process left RUNNING; return their ids."""

    def finished_run_keys(self) -> dict[str, str]:
        """Run key → run id of every FINISHED job run (what a resumed sweep skips)."""

    def start_sweep(
        self,
        sweep_dict: Mapping[str, Any],
        n_jobs: int,
        n_skipped: int,
        tags: Mapping[str, str],
        *,
        start_time: int | None = None,
    ) -> str:
        """Open the sweep's parent run and return its id; ``start_time`` (ms) for a past sweep."""

    def start_job(
        self, parent_id: str, job: Job, tags: Mapping[str, str], *, start_time: int | None = None
    ) -> str:
        """Open a job's run and return its id."""

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        """One point of a training curve."""

    def finish_job(self, run_id: str, outcome: Outcome, *, end_time: int | None = None) -> None:
        """Write the outcome (scores, tags, arrays, traceback) and close the run with its status."""

    def end_sweep(
        self, run_id: str, status: str, counts: Mapping[str, int], *, end_time: int | None = None
    ) -> None:
        """Close the sweep's parent run with its job counts."""

    def kill(self, run_ids: Iterable[str]) -> None:
        """Close the runs of an interrupted sweep as KILLED, saying why."""

    def location(self, run_id: str) -> str:
        """Where a run's record is, in words a user can follow (a run id and folder, a path)."""

    def attach_summary(self, parent_id: str, runs: pd.DataFrame) -> list[str]:
        """Keep the sweep's table (and figures, where the store can hold them) with its parent run;
        return warnings worth showing (a figure that could not be made)."""

    def runs_frame(self, run_keys: Iterable[str] | None = None) -> pd.DataFrame:
        """The job runs as the reports read them (:func:`harness_reports.load_runs`)."""


class RunRecorder:
    """The listener that writes a sweep's events through a :class:`Recorder`."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.parent_id = ""
        self._run_ids: dict[str, str] = {}  # run key -> run id, for the jobs running now

    def run_id(self, job: Job) -> str:
        return self._run_ids.get(job.run_key, "")

    def notify(self, event: Event) -> None:
        match event:
            case SweepStarted(sweep=sweep, jobs=jobs, todo=todo, tags=tags):
                self.parent_id = self.recorder.start_sweep(
                    sweep.to_dict(), n_jobs=len(jobs), n_skipped=len(jobs) - len(todo), tags=tags
                )
            case JobStarted(job=job, tags=tags):
                self._run_ids[job.run_key] = self.recorder.start_job(self.parent_id, job, tags)
            case CurvePointLogged(job=job, key=key, value=value, step=step):
                self.recorder.log_metric(self._run_ids[job.run_key], key, value, step)
            case JobEnded(outcome=outcome):
                self.recorder.finish_job(self._run_ids.pop(outcome.job.run_key), outcome)
            case SweepInterrupted():
                self.recorder.kill(self._run_ids.values())
                self._run_ids.clear()
            case SweepEnded(report=report):
                status = "KILLED" if report.interrupted else ("FAILED" if report.failed else "FINISHED")
                counts = {
                    "total": report.n_jobs,
                    "skipped": report.skipped,
                    "finished": report.finished,
                    "failed": len(report.failed),
                }
                self.recorder.end_sweep(self.parent_id, status, counts)
