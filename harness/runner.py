"""One sweep from start to end, as a sequence of events: check data, skip finished jobs, run the
rest, summarise. What is shown (:mod:`harness.console`) and what is recorded
(:mod:`harness.recording`) listen to the events; the runner only decides their order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import pandas as pd

from harness import record
from harness.data import resolve_data_dir
from harness.events import (
    CurvePointLogged,
    JobEnded,
    JobProgressed,
    JobStarted,
    Listener,
    SweepEnded,
    SweepInterrupted,
    SweepStarted,
    emit,
)
from harness.executor import Executor
from harness.identity import SweepIdentity, identify
from harness.messages import CurvePoint, Outcome, Update
from harness.plugins import Registry
from harness.recording import Recorder, RunRecorder
from harness.sweep import Job, Sweep, expand, group_seeds


@dataclass
class SweepReport:
    """What a sweep did; ``summary`` aggregates every job of the sweep, skipped ones included."""

    parent_run_id: str
    experiment_id: str
    n_jobs: int
    skipped: int = 0
    finished: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)
    warned: list[Job] = field(default_factory=list)
    """Finished jobs whose method raised warnings (shown under each job, tagged ``harness.warnings``)."""
    interrupted: bool = False
    summary: pd.DataFrame | None = None
    runs: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    """What went wrong beside the jobs (a figure that could not be made), to show at the end."""


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def run_sweep(
    sweep: Sweep,
    registry: Registry,
    *,
    recorder: Recorder,
    executor: Executor,
    listeners: Sequence[Listener] = (),
    where: str = "",
    dry_run: bool = False,
    batch_seeds: int = 1,
    rerun: bool = False,
) -> SweepReport:
    """Run every job of ``sweep`` that has not finished in ``recorder`` before (all with ``rerun``).

    ``batch_seeds > 1`` lets methods that can train up to that many seeds of one configuration at
    once do so (one worker, one stacked model); each seed is still its own run. ``listeners`` hear
    every event after the recorder has written it. ``where`` names the store for the display.
    Call :func:`fetch_datasets` first, before a store is opened: a missing file is then one line
    and nothing is recorded.
    """
    identity = identify(registry, sweep.methods, sweep.datasets)
    jobs = expand(sweep, registry, dry_run=dry_run, identity=identity)

    orphans = recorder.settle_orphans()
    # a smoke test is repeated to check the code as it is now: it never skips
    done = {} if rerun or dry_run else recorder.finished_run_keys()
    todo = [job for job in jobs if job.run_key not in done]
    recording = RunRecorder(recorder)
    audience: list[Listener] = [recording, *listeners]
    tags = {
        "version.harness": _version("harness"),
        "version.mlflow": _version("mlflow"),
        **_core_tags(identity),
    }
    emit(audience, SweepStarted(sweep, tuple(jobs), tuple(todo), where, tags, orphans=len(orphans)))
    report = SweepReport(
        recording.parent_id, recorder.experiment_id, len(jobs), skipped=len(jobs) - len(todo)
    )
    jobs_events = _JobEvents(audience, report, recording, _identity_tags(registry, identity))
    try:
        executor.run(
            group_seeds(todo, registry, batch_seeds),
            jobs_events.started,
            jobs_events.update,
            jobs_events.ended,
        )
    except KeyboardInterrupt:
        report.interrupted = True
        emit(audience, SweepInterrupted(tuple(jobs_events.running.values())))
    report.runs = recorder.runs_frame([j.run_key for j in jobs])
    from harness_reports import summarize

    report.summary = summarize(report.runs)
    if not report.interrupted:
        report.notes += recorder.attach_summary(report.parent_run_id, report.runs)
    emit(audience, SweepEnded(report))
    return report


def fetch_datasets(registry: Registry, sweep: Sweep, download: bool = False) -> None:
    """Make sure every dataset of the sweep is present with good checksums (downloading it first
    where allowed); raises :class:`~harness.data.DataError` naming the file and the fix."""
    root = resolve_data_dir(sweep.data_dir)
    for name in sweep.datasets:
        registry.dataset(name).fetch(root, download)


class _JobEvents:
    """The executor's callbacks, as events for the listeners and counts for the report."""

    def __init__(
        self,
        audience: Sequence[Listener],
        report: SweepReport,
        recording: RunRecorder,
        tags: dict[tuple[str, str], dict[str, str]],
    ) -> None:
        self.audience, self.report, self.recording, self.tags = audience, report, recording, tags
        self.running: dict[str, Job] = {}

    def started(self, job: Job) -> None:
        self.running[job.run_key] = job
        emit(self.audience, JobStarted(job, self.tags[job.method, job.dataset]))

    def update(self, job: Job, update: Update) -> None:
        if isinstance(update, CurvePoint):
            emit(self.audience, CurvePointLogged(job, update.key, update.value, update.step))
        else:
            emit(self.audience, JobProgressed(job, update.completed, update.total, update.description))

    def ended(self, outcome: Outcome) -> None:
        job = outcome.job
        self.running.pop(job.run_key, None)
        failed = outcome.status != "FINISHED"
        where = self.recording.recorder.location(self.recording.run_id(job)) if failed else ""
        emit(self.audience, JobEnded(outcome, record=where))
        if failed:
            self.report.failed.append((job, outcome.error or "failed"))
            return
        self.report.finished += 1
        if outcome.result is not None and outcome.result.tags.get(record.WARNINGS):
            self.report.warned.append(job)


def _core_tags(identity: SweepIdentity) -> dict[str, str]:
    git = {}
    if identity.git:
        git = {record.GIT_COMMIT: identity.git["commit"], record.GIT_DIRTY: identity.git["dirty"]}
    return {record.CORE_IDENTITY: identity.core, **git}


def _identity_tags(registry: Registry, identity: SweepIdentity) -> dict[tuple[str, str], dict[str, str]]:
    """Per (method, dataset): what produced its runs, the method's keyed defaults, the core."""
    methods = {}
    for name, ident in identity.methods.items():
        spec = registry.method(name)
        defaults = {
            p.name: "none" if p.default is None else str(p.default) for p in spec.params if p.in_run_key
        }
        methods[name] = {
            record.METHOD_PLUGIN: ident.provider,
            record.METHOD_SOURCE: ident.source,
            record.METHOD_IDENTITY: ident.digest,
            record.PARAM_DEFAULTS: json.dumps(defaults, sort_keys=True),
            **({record.NOISE_LABELS: "true"} if spec.noise_labels else {}),
        }
    datasets = {
        name: {
            record.DATASET_PLUGIN: ident.provider,
            record.DATASET_SOURCE: ident.source,
            record.DATASET_FILES: ident.files,
            record.DATASET_IDENTITY: ident.digest,
        }
        for name, ident in identity.datasets.items()
    }
    core = {**_core_tags(identity), "version.harness": _version("harness")}
    return {(m, d): methods[m] | datasets[d] | core for m in methods for d in datasets}
