"""What happens during a sweep, as events that listeners subscribe to.

The runner (:mod:`harness.runner`) decides the order of things and emits these; the console
reporter (:mod:`harness.console`) draws them and the run recorder (:mod:`harness.recording`)
writes them to MLflow or to an offline journal. A program that embeds harness can add its own
listener (a web dashboard, a notifier) without touching the run loop, as a pytest plugin listens
to a test session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.messages import Outcome
    from harness.runner import SweepReport
    from harness.sweep import Job, Sweep


@dataclass(frozen=True)
class SweepStarted:
    """Before the first job: what will run, what was skipped as already finished, and where to."""

    sweep: Sweep
    jobs: tuple[Job, ...]
    todo: tuple[Job, ...]
    where: str
    """The tracking store and experiment, or the offline folder, in words."""
    tags: dict[str, str]
    """Tags for the sweep's parent run (versions, identity of the core, git state)."""
    orphans: int = 0
    """Runs a dead harness process had left RUNNING, now marked KILLED."""


@dataclass(frozen=True)
class JobStarted:
    job: Job
    tags: dict[str, str]
    """Tags for the job's run: what produced it (:mod:`harness.identity`)."""


@dataclass(frozen=True)
class CurvePointLogged:
    job: Job
    key: str
    value: float
    step: int


@dataclass(frozen=True)
class JobProgressed:
    job: Job
    completed: float
    total: float
    description: str = ""


@dataclass(frozen=True)
class JobEnded:
    """A job ended (FINISHED, FAILED or KILLED); ``record`` says where its run is kept."""

    outcome: Outcome
    record: str = ""


@dataclass(frozen=True)
class SweepInterrupted:
    """Ctrl-C or ``kill``: the jobs still running were stopped (their runs are to be KILLED)."""

    running: tuple[Job, ...]


@dataclass(frozen=True)
class SweepEnded:
    report: SweepReport


Event = (
    SweepStarted | JobStarted | CurvePointLogged | JobProgressed | JobEnded | SweepInterrupted | SweepEnded
)


class Listener(Protocol):
    """Anything that wants to hear about a sweep; it ignores the events it has no use for."""

    def notify(self, event: Event) -> None: ...


def emit(listeners: Iterable[Listener], event: Event) -> None:
    """Tell every listener, in order (the recorder first, so a display can say where a run is)."""
    for listener in listeners:
        listener.notify(event)
