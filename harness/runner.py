"""One sweep from start to end: check data, skip finished jobs, run the rest, track, summarise."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from harness import record
from harness.data import default_data_dir
from harness.executor import Executor, LocalExecutor, Outcome
from harness.gpus import GpuSlots
from harness.identity import SweepIdentity, identify
from harness.journal import Journal
from harness.plugins import Registry
from harness.sweep import Job, Sweep, expand, group_seeds
from harness.tracking import Tracker
from harness.worker import WARNINGS_TAG, WorkerSettings


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


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def run_sweep(
    sweep: Sweep,
    registry: Registry,
    *,
    settings: WorkerSettings | None = None,
    max_workers: int = 1,
    batch_seeds: int = 1,
    gpu_slots: GpuSlots | None = None,
    executor: Executor | None = None,
    rerun: bool = False,
    download: bool = False,
    offline: str | None = None,
    console: Console | None = None,
) -> SweepReport:
    """Run every job of ``sweep`` that has not finished before (all of them with ``rerun``).

    ``batch_seeds > 1`` lets methods that can train up to that many seeds of one configuration at
    once do so (one worker, one stacked model); each seed is still its own run. ``offline`` names
    a folder that records the sweep instead of MLflow (:mod:`harness.journal`). Jobs run on
    ``executor``, by default ``max_workers`` local worker processes placed on ``gpu_slots``.

    Raises :class:`~harness.errors.UsageError` before anything is recorded when a dataset's files
    are missing or corrupt, or the tracking store cannot be used.
    """
    console = console or Console(stderr=True, soft_wrap=True)
    settings = settings or WorkerSettings(data_dir=sweep.data_dir, device=sweep.device)
    identity = identify(registry, sweep.methods, sweep.datasets)
    jobs = expand(sweep, registry, dry_run=settings.dry_run, identity=identity)

    root = Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()
    for name in sweep.datasets:
        registry.dataset(name).fetch(root, download)

    if offline:
        tracker: Tracker | Journal = Journal(offline)
        where = f"offline folder {offline}"
    else:
        tracker = Tracker(sweep.tracking_uri, sweep.experiment)
        where = f"{sweep.tracking_uri}, experiment {sweep.experiment!r}"
    console.print(
        f"[bold]harness[/] {len(sweep.methods)} method(s) × {len(sweep.datasets)} dataset(s) × "
        f"{len(sweep.sizes)} size(s) × {len(sweep.seeds)} seed(s) = {len(jobs)} jobs → {where}"
    )
    orphans = tracker.settle_orphans()
    if orphans:
        console.print(
            f"[yellow]{len(orphans)} job run(s) left RUNNING by a harness process that died: marked KILLED[/]"
        )
    # a smoke test is repeated to check the code as it is now: it never skips
    done = {} if rerun or settings.dry_run else tracker.finished_run_keys()
    todo = [job for job in jobs if job.run_key not in done]
    parent_id = tracker.start_sweep(
        sweep.to_dict(),
        n_jobs=len(jobs),
        n_skipped=len(jobs) - len(todo),
        tags={
            "version.harness": _version("harness"),
            "version.mlflow": _version("mlflow"),
            **_core_tags(identity),
        },
    )
    report = SweepReport(parent_id, tracker.experiment_id, len(jobs), skipped=len(jobs) - len(todo))
    if report.skipped:
        console.print(
            f"[dim]{report.skipped} of {len(jobs)} jobs already finished in this experiment: "
            "skipped (use --rerun to run them again)[/]"
        )

    run_ids: dict[str, str] = {}  # run key -> child run id, for the jobs running now
    job_tasks: dict[str, TaskID] = {}
    identity_tags = _identity_tags(registry, identity)

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    overall = progress.add_task("sweep", total=len(todo))

    def on_start(job: Job) -> None:
        job_dict = job.to_dict()
        tags = {
            **identity_tags[("method", job.method)],
            **identity_tags[("dataset", job.dataset)],
            **_core_tags(identity),
            "version.harness": _version("harness"),
        }
        run_ids[job.run_key] = tracker.start_job(parent_id, job_dict, tags)
        job_tasks[job.run_key] = progress.add_task(f"  {job.label}", total=None)

    def on_message(job: Job, message: tuple) -> None:
        kind = message[0]
        if kind == "metric":
            _, key, value, step = message
            tracker.log_metric(run_ids[job.run_key], key, value, step)
        elif kind == "progress":
            _, completed, total, description = message
            text = f"  {job.label}" + (f" · {description}" if description else "")
            progress.update(job_tasks[job.run_key], completed=completed, total=total, description=text)

    def on_done(outcome: Outcome) -> None:
        job = outcome.job
        tracker.finish_job(run_ids.pop(job.run_key), outcome, job.to_dict())
        progress.remove_task(job_tasks.pop(job.run_key))
        progress.advance(overall)
        if outcome.status == "FINISHED":
            report.finished += 1
            m = outcome.result["metrics"]
            progress.console.print(
                f"[green]✓[/] {job.label}  ACC {m['acc']:.3f}  NMI {m['nmi_geometric']:.3f}  "
                f"({m['runtime_s']:.1f} s)"
            )
            raised = outcome.result["tags"].get(WARNINGS_TAG, "")
            for line in raised.splitlines():
                progress.console.print(Text.assemble(("    ! ", "yellow"), line))  # no markup from warnings
            if raised:
                report.warned.append(job)
        else:
            report.failed.append((job, outcome.error or "failed"))
            progress.console.print(f"[red]✗[/] {job.label}  {outcome.error}")

    executor = executor or LocalExecutor(settings, max_workers=max_workers, gpu_slots=gpu_slots)
    try:
        with progress:
            executor.run(group_seeds(todo, registry, batch_seeds), on_start, on_message, on_done)
    except KeyboardInterrupt:
        report.interrupted = True
        tracker.kill(run_ids.values())
        run_ids.clear()
    from harness_reports import summarize

    report.runs = tracker.runs_frame([j.run_key for j in jobs])
    report.summary = summarize(report.runs)
    if not report.interrupted and isinstance(tracker, Tracker):
        _log_sweep_figures(tracker, parent_id, report.runs, console)

    status = "KILLED" if report.interrupted else ("FAILED" if report.failed else "FINISHED")
    tracker.end_sweep(
        parent_id,
        status,
        {
            "total": len(jobs),
            "skipped": report.skipped,
            "finished": report.finished,
            "failed": len(report.failed),
        },
    )
    return report


def _core_tags(identity: SweepIdentity) -> dict[str, str]:
    git = (
        {record.GIT_COMMIT: identity.git["commit"], record.GIT_DIRTY: identity.git["dirty"]}
        if identity.git
        else {}
    )
    return {record.CORE_IDENTITY: identity.core, **git}


def _identity_tags(registry: Registry, identity: SweepIdentity) -> dict[tuple[str, str], dict[str, str]]:
    """What produced each method's and dataset's runs, and each method's keyed defaults, as tags."""
    tags = {}
    for name, ident in identity.methods.items():
        spec = registry.method(name)
        defaults = {
            p.name: "none" if p.default is None else str(p.default) for p in spec.params if p.in_run_key
        }
        tags[("method", name)] = {
            record.METHOD_PLUGIN: ident.provider,
            record.METHOD_SOURCE: ident.source,
            record.METHOD_IDENTITY: ident.digest,
            record.PARAM_DEFAULTS: json.dumps(defaults, sort_keys=True),
            **({record.NOISE_LABELS: "true"} if spec.noise_labels else {}),
        }
    for name, ident in identity.datasets.items():
        tags[("dataset", name)] = {
            record.DATASET_PLUGIN: ident.provider,
            record.DATASET_SOURCE: ident.source,
            record.DATASET_FILES: ident.files,
            record.DATASET_IDENTITY: ident.digest,
        }
    return tags


def _log_sweep_figures(tracker: Tracker, parent_id: str, runs: pd.DataFrame, console: Console) -> None:
    """The report's table and figures, as artifacts of the sweep's parent run."""
    from harness_reports import tables

    if (runs["status"] == "FINISHED").sum() == 0:
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "summary.md").write_text(tables.to_markdown(runs))
        (out / "runs.csv").write_text(tables.to_csv(runs))
        try:
            from harness_reports.figures import make_figures  # seaborn, matplotlib: heavy, optional here

            make_figures(tracker.client, runs, out / "figures")
        except Exception as exc:  # a figure must never cost the sweep its results
            console.print(f"[yellow]figures not made: {type(exc).__name__}: {exc}[/]")
        tracker.client.log_artifacts(parent_id, str(out))
