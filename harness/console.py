"""The terminal side of a sweep: progress bars, a line per job, the summary table, what to do next.

A listener of :mod:`harness.events`, apart from the run loop (as pytest's terminal reporter is a
plugin apart from its session): the runner never prints. Progress goes to standard error, the
summary table to standard output, so ``harness run > table.txt`` keeps only the table.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness import record
from harness.events import (
    Event,
    JobEnded,
    JobProgressed,
    JobStarted,
    SweepEnded,
    SweepInterrupted,
    SweepStarted,
)


class ConsoleReporter:
    """Draws a sweep's events; ``next_step`` is the closing hint (how to browse or import the runs).

    ``debug`` prints a failed job's whole traceback under its line, not only its last line.
    """

    def __init__(
        self,
        console: Console | None = None,
        out: Console | None = None,
        *,
        next_step: str = "",
        dry_run: bool = False,
        debug: bool = False,
    ) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.out = out or Console()
        self.next_step = next_step
        self.dry_run = dry_run
        self.debug = debug
        self._progress: Progress | None = None
        self._overall: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}

    def notify(self, event: Event) -> None:
        match event:
            case SweepStarted():
                self._started(event)
            case JobStarted(job=job):
                if self._progress is not None:
                    self._tasks[job.run_key] = self._progress.add_task(f"  {job.label}", total=None)
            case JobProgressed(job=job, completed=completed, total=total, description=text):
                if self._progress is not None and job.run_key in self._tasks:
                    line = f"  {job.label}" + (f" · {text}" if text else "")
                    self._progress.update(
                        self._tasks[job.run_key], completed=completed, total=total, description=line
                    )
            case JobEnded():
                self._ended(event)
            case SweepInterrupted():
                self._stop()
            case SweepEnded(report=report):
                self._stop()
                self._summary(report)

    # -- the parts -------------------------------------------------------------------------------

    def _started(self, event: SweepStarted) -> None:
        sweep, jobs, todo = event.sweep, event.jobs, event.todo
        methods = f"{len(sweep.methods)} method(s)"
        if sweep.n_configurations > len(sweep.methods):  # a parameter takes several values
            methods = f"{sweep.n_configurations} configuration(s) of {methods}"
        self.console.print(
            f"[bold]harness[/] {methods} × {len(sweep.datasets)} dataset(s) × "
            f"{len(sweep.sizes)} size(s) × {len(sweep.seeds)} seed(s) = {len(jobs)} jobs → {event.where}"
        )
        for method in sweep.methods:
            if sweep.swept(method):
                names = ", ".join(
                    f"{k}={'/'.join(map(str, sweep.params[method][k]))}" for k in sweep.swept(method)
                )
                self.console.print(f"[dim]  {method}: {names}[/]")
        if event.orphans:
            self.console.print(
                f"[yellow]{event.orphans} job run(s) left RUNNING by a harness process that died: marked KILLED[/]"
            )
        skipped = len(jobs) - len(todo)
        if skipped:
            self.console.print(
                f"[dim]{skipped} of {len(jobs)} jobs already finished in this experiment: "
                "skipped (use --rerun to run them again)[/]"
            )
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._overall = self._progress.add_task("sweep", total=len(todo))
        self._progress.start()

    def _ended(self, event: JobEnded) -> None:
        outcome, job = event.outcome, event.outcome.job
        print_ = self._progress.console.print if self._progress is not None else self.console.print
        if self._progress is not None:
            if job.run_key in self._tasks:
                self._progress.remove_task(self._tasks.pop(job.run_key))
            if self._overall is not None:
                self._progress.advance(self._overall)
        if outcome.status == "FINISHED" and outcome.result is not None:
            m = outcome.result.metrics
            print_(
                f"[green]✓[/] {job.label}  ACC {m['acc']:.3f}  NMI {m['nmi_geometric']:.3f}  ({m['runtime_s']:.1f} s)"
            )
            for line in outcome.result.tags.get(record.WARNINGS, "").splitlines():
                print_(Text.assemble(("    ! ", "yellow"), line))  # no markup from warnings
            return
        print_(Text.assemble(("✗ ", "red"), f"{job.label}  {outcome.error}"))
        if event.record:
            print_(Text.assemble(("    ", ""), f"{event.record}", style="dim"))
        if self.debug and outcome.traceback:
            print_(Text(outcome.traceback.rstrip()))

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _summary(self, report: Any) -> None:
        if report.summary is not None:
            self.out.print(summary_table(report.summary, dry_run=self.dry_run))
        for note in report.notes:
            self.console.print(f"[yellow]{note}[/]")
        counts = f"{report.finished} finished, {len(report.failed)} failed, {report.skipped} skipped"
        self.console.print(f"{counts} · {self.next_step.format(parent=report.parent_run_id)}")
        if report.warned:
            names = ", ".join(job.label for job in report.warned[:3]) + (
                ", …" if len(report.warned) > 3 else ""
            )
            self.console.print(
                f"[yellow]{len(report.warned)} run(s) raised warnings[/] ({names}): see under each job above, "
                "or the runs' harness.warnings tag"
            )
        for job, error in report.failed:
            self.console.print(Text.assemble(("failed", "red"), f" {job.label}: {error}"))
        if report.failed and not self.debug:
            self.console.print("[dim]--debug shows each failed job's traceback under its line[/]")
        if report.interrupted:
            self.console.print(
                "[yellow]interrupted[/]: the runs in progress are marked KILLED; rerun the same command to resume"
            )


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.3f}" + ("" if math.isnan(std) else f" ± {std:.3f}")


def summary_table(summary: pd.DataFrame, dry_run: bool = False) -> Table:
    """The sweep's scores per dataset, size and method, over the finished seeds; the caption
    explains a short cell (``3/5``) by the first one, and is left out where no cell is short."""
    short = summary[summary["n_failed"] > 0]
    note = None
    if not short.empty:
        done, failed = int(short["n_finished"].iloc[0]), int(short["n_failed"].iloc[0])
        note = (
            f"seeds: runs finished; {done}/{done + failed} means {done} of the {done + failed} that ran "
            f"({failed} failed or {'was' if failed == 1 else 'were'} interrupted: not averaged)"
        )
    table = Table(
        title="dry run (a smoke test): scores mean nothing"
        if dry_run
        else "mean ± sample std over the finished seeds",
        caption=note,
    )
    for name in ("dataset", "size", "method", "ACC", "NMI (geometric)", "seeds"):
        table.add_column(name, justify="right" if name in ("size", "seeds") else "left")
    for row in summary.itertuples(index=False):
        seeds = f"{row.n_finished}" + (f"/{row.n_finished + row.n_failed}" if row.n_failed else "")
        table.add_row(
            str(row.dataset),
            str(row.input_size),
            str(row.method),
            _mean_std(row.acc_mean, row.acc_std),
            _mean_std(row.nmi_geometric_mean, row.nmi_geometric_std),
            seeds,
        )
    return table
