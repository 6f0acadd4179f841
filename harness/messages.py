"""What crosses from a worker to the parent, and how a job ended: small frozen records.

A worker (a local process, a Ray task) sends, per job, any number of :class:`CurvePoint` and
:class:`Progress` messages, then exactly one :class:`Result` or :class:`Failure`. Each names the
job's run key. Executors turn them into an :class:`Outcome` per job, which recorders write.
Everything here pickles, so it can cross a pipe or Ray's object store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from harness.sweep import Job


@dataclass(frozen=True)
class ReceivedData:
    """What the method was given (after resizing and scaling): its digest, shape and dtype."""

    digest: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class JobResult:
    """A finished job: its final scores and counts, parameters and tags for the run, the arrays."""

    metrics: dict[str, float]
    params: dict[str, Any]
    tags: dict[str, str]
    labels: np.ndarray
    host: str
    embedding: np.ndarray | None = None
    labels_true: np.ndarray | None = None
    """The truth: reports colour t-SNE plots by class, and compute metrics added after the run
    (``harness report --metrics``), without the dataset. Runs recorded before it was kept with
    every run have it only beside an embedding."""
    data: ReceivedData | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays a recorder saves, by file stem (absent ones left out)."""
        named = {"labels": self.labels, "embedding": self.embedding, "labels_true": self.labels_true}
        return {name: array for name, array in named.items() if array is not None}


@dataclass(frozen=True)
class CurvePoint:
    run_key: str
    key: str
    """With :data:`harness.record.CURVE_PREFIX` already in front."""
    value: float
    step: int


@dataclass(frozen=True)
class Progress:
    run_key: str
    completed: float
    total: float
    description: str = ""


@dataclass(frozen=True)
class Result:
    run_key: str
    result: JobResult


@dataclass(frozen=True)
class Failure:
    run_key: str
    error: str
    """``Type: message``, one line where the exception's message is one line."""
    traceback: str


Message = CurvePoint | Progress | Result | Failure
Update = CurvePoint | Progress
"""The messages of a running job (as opposed to the one that ends it)."""

Status = Literal["FINISHED", "FAILED", "KILLED"]


@dataclass(frozen=True)
class Outcome:
    """How one job ended; ``status`` is an MLflow run status."""

    job: Job
    status: Status
    result: JobResult | None = None
    error: str | None = None
    traceback: str | None = None

    @classmethod
    def of(cls, job: Job, message: Result | Failure) -> Outcome:
        if isinstance(message, Result):
            return cls(job, "FINISHED", result=message.result)
        return cls(job, "FAILED", error=message.error, traceback=message.traceback)
