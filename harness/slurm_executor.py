"""Run jobs as SLURM batch jobs through submitit (``--executor slurm``).

Each task (one job, or with ``--batch-seeds`` several seeds of one configuration) is one task of
a SLURM job array that submitit writes, submits and watches. The task runs what a local worker
runs (:func:`harness.worker.run`) and returns its messages, curve points included, as the job's
result file in ``--slurm-folder`` (a folder on the filesystem that the compute nodes share): jobs
never open the tracking store. The ``harness run`` process on the login node reads each result as
the job ends and records it, so a SQLite store is still written by one process.

The run key → SLURM job id of every job submitted and not yet recorded is kept in
``FOLDER/submitted.json``: a ``harness run`` that was killed and is started again finds its jobs
still queued, running or ended in SLURM and waits for them instead of submitting them twice.
Ctrl-C (or ``kill``) cancels the jobs it submitted. A job that fails, runs out of time, dies or is
cancelled or preempted becomes a FAILED or KILLED run saying so, with the end of its log.

submitit is imported only here, and only when this executor is chosen.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import worker
from harness.environ import import_paths
from harness.errors import UsageError, did_you_mean
from harness.executor import Task
from harness.messages import Failure, Message, Outcome, Progress, Result, Status, Update
from harness.sweep import Job

LEDGER = "submitted.json"
"""Run key → SLURM job id of the jobs submitted and not yet recorded, in the SLURM folder."""
POLL_S = 1.0
"""How often result files are looked for (a stat per running job: cheap)."""
STATE_POLL_S = 5.0
"""How often SLURM is asked for the jobs' states (one ``sacct`` for all of them)."""
TIME_FORMATS = "minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (such as 30, 4:00:00 or 1-12)"
_TIME = re.compile(r"(?:(?P<d>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")
_KILLED_STATES = ("CANCELLED", "PREEMPTED")
_REASONS = {
    "CANCELLED": "was cancelled (scancel)",
    "PREEMPTED": "was preempted",
    "TIMEOUT": "ran out of time",
    "FAILED": "failed",
    "OUT_OF_MEMORY": "ran out of memory",
    "NODE_FAIL": "was lost with its node",
    "BOOT_FAIL": "could not boot its node",
    "DEADLINE": "missed its deadline",
}
_LOG_LINES = 40
LOST_AFTER_S = 600.0
"""A job SLURM's accounting has no word of for this long (a job id from another cluster, a purged
record) is given up as FAILED, so that a stale ledger never makes a sweep wait for ever."""


def parse_time(value: str) -> int:
    """Minutes from a SLURM time limit (``30``, ``4:00:00``, ``1-12``); rounded up to a minute."""
    m = _TIME.fullmatch(str(value).strip())
    if m is None:
        raise UsageError(f"--slurm-time: expected {TIME_FORMATS}, got {value!r}")
    days, a, b, c = (int(m.group(k)) if m.group(k) is not None else None for k in "dabc")
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = days * 86400 + (a or 0) * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = (a or 0) * 3600 + (b or 0) * 60 + c
    elif b is not None:  # MM:SS
        seconds = (a or 0) * 60 + b
    else:  # minutes
        seconds = (a or 0) * 60
    if seconds <= 0:
        raise UsageError(f"--slurm-time: expected a time limit above zero, got {value!r}")
    return math.ceil(seconds / 60)


def parse_sbatch_lines(lines: Sequence[str]) -> dict[str, Any]:
    """``["--mem=8G", "#SBATCH --qos short", "--exclusive"]`` → submitit's ``additional_parameters``."""
    out: dict[str, Any] = {}
    for line in lines:
        text = str(line).strip()
        text = text[len("#SBATCH") :].strip() if text.startswith("#SBATCH") else text
        m = re.fullmatch(r"--([A-Za-z][\w-]*)(?:[=\s]+(.+))?", text)
        if m is None:
            raise UsageError(
                f"slurm_sbatch: expected lines such as '--mem=8G' or '#SBATCH --qos=short' "
                f"(long options), got {line!r}"
            )
        out[m.group(1).replace("-", "_")] = m.group(2).strip() if m.group(2) else True
    return out


@dataclass(frozen=True)
class SlurmOptions:
    """What the SLURM jobs of a sweep ask for, and where they leave their results."""

    folder: str
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    sbatch: tuple[str, ...] = ()
    """Extra ``#SBATCH`` lines (long options), from the config's ``slurm_sbatch``."""
    gpus_per_job: int | None = None
    max_queued: int | None = None
    """At most this many of the sweep's jobs in SLURM's queue (pending or running) at once."""

    def sbatch_flags(self) -> list[str]:
        """The options as ``sbatch`` flags, for the check before anything is submitted."""
        flags = [f"--partition={self.partition}"] if self.partition else []
        flags += [f"--time={parse_time(self.time)}"] if self.time else []
        flags += [f"--account={self.account}"] if self.account else []
        flags += [f"--gpus-per-node={self.gpus_per_job}"] if self.gpus_per_job else []
        for key, value in parse_sbatch_lines(self.sbatch).items():
            flag = "--" + key.replace("_", "-")
            flags.append(flag if value is True else f"{flag}={value}")
        return flags


# -- the job's side ---------------------------------------------------------------------------------


class _Collector:
    """The worker's pipe inside a SLURM job: every message is kept and returned as the result."""

    def __init__(self) -> None:
        self.updates: list[Update] = []
        self.final: list[Result | Failure] = []

    def send(self, message: Message) -> None:
        if isinstance(message, Result | Failure):
            self.final.append(message)
        elif not isinstance(message, Progress):  # progress means nothing once the job has ended
            self.updates.append(message)

    def close(self) -> None:
        pass


def _slurm_task(
    job_dicts: list[dict[str, Any]], settings: worker.WorkerSettings
) -> tuple[list[Update], list[Result | Failure]]:
    """The body of a SLURM job: the local worker's code; its messages come back as the result file."""
    sink = _Collector()
    worker.run(job_dicts, settings, sink)
    return sink.updates, sink.final


# -- the parent's side ------------------------------------------------------------------------------


def check_cluster(options: SlurmOptions) -> None:
    """Raise :class:`UsageError` unless SLURM answers here and takes the jobs' options.

    Checked before anything is recorded or submitted: no ``sbatch``, a partition SLURM does not
    know, options it refuses or a result folder that cannot be written cost one line each.
    """
    missing = [tool for tool in ("sbatch", "sacct", "scancel", "sinfo") if shutil.which(tool) is None]
    if missing:
        raise UsageError(
            f"--executor slurm: no {missing[0]} on the PATH; run harness on a SLURM login node "
            "(or load the cluster's slurm module)"
        )
    _check_folder(options.folder)
    info = _slurm("sinfo", "-h", "-o", "%R")
    partitions = sorted({p for p in info.split() if p})
    if options.partition is not None and options.partition not in partitions:
        raise UsageError(
            f"--slurm-partition: unknown partition {options.partition!r}"
            f"{did_you_mean(options.partition, partitions)}; partitions: {', '.join(partitions)}"
        )
    if options.time is not None:
        parse_time(options.time)
    # what SLURM itself says of the options, without submitting anything
    _slurm("sbatch", "--test-only", *options.sbatch_flags(), "--wrap=true", what="the SLURM job options")


def _slurm(*command: str, what: str = "") -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"--executor slurm: {command[0]} did not answer: {exc}") from None
    if done.returncode != 0:
        said = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        text = "; ".join(said[-2:]) or f"exit code {done.returncode}"
        if what:
            raise UsageError(f"--executor slurm: SLURM refuses {what}: {text}")
        raise UsageError(f"--executor slurm: {command[0]} fails: {text}")
    return done.stdout


def _check_folder(folder: str) -> None:
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{uuid.uuid4().hex}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--slurm-folder: cannot write {str(path)!r} ({exc.strerror or exc}); give a folder on "
            "the filesystem that the compute nodes share"
        ) from None


@dataclass
class _Submitted:
    """A task in SLURM: its submitit job, and the state last shown for it."""

    task: Task
    slurm: Any
    state: str = ""
    seen: float = field(default_factory=time.monotonic)


class SlurmExecutor:
    """Tasks as the tasks of SLURM job arrays; see the module's docstring."""

    def __init__(self, settings: worker.WorkerSettings, options: SlurmOptions) -> None:
        self.settings = settings
        self.options = options
        self.folder = Path(options.folder).expanduser().resolve()
        self._active: dict[str, _Submitted] = {}  # SLURM job id -> task
        self._ledger: dict[str, str] = {}

    def connect(self) -> None:
        """Check SLURM and the folder (:func:`check_cluster`); nothing is submitted."""
        check_cluster(self.options)
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise UsageError(
                "--executor slurm: submitit is not installed (pip install submitit==1.5.4)"
            ) from None

    def shutdown(self) -> None:
        """Nothing to stop: the jobs of a finished sweep have ended, a cancelled one's are cancelled."""

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        tasks: Iterable[Task | Job],
        on_start: Callable[[Job], None],
        on_message: Callable[[Job, Update], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        """See :meth:`harness.executor.Executor.run`."""
        import submitit

        self._ledger = self._read_ledger()
        executor = submitit.SlurmExecutor(folder=self.folder / "jobs" / "%j", max_num_timeout=3)
        executor.update_parameters(**self._parameters())
        pending = deque(t if isinstance(t, tuple) else (t,) for t in tasks)
        cap = self.options.max_queued or len(pending) or 1
        last_states = float("-inf")
        try:
            while pending or self._active:
                free = cap - len(self._active)
                batch = [pending.popleft() for _ in range(min(free, len(pending)))]
                self._submit(executor, batch, on_start, on_message)
                if time.monotonic() - last_states >= STATE_POLL_S:
                    submitit.SlurmJob.watcher.update()  # one sacct for every job
                    last_states = time.monotonic()
                for job_id, submitted in list(self._active.items()):
                    state = _state(submitted.slurm)
                    if state != "UNKNOWN":
                        submitted.seen = time.monotonic()
                    elif time.monotonic() - submitted.seen > LOST_AFTER_S:
                        state = "UNKNOWN (SLURM has no record of it)"
                    if _ended(submitted.slurm, state):
                        del self._active[job_id]
                        for outcome in self._settle(submitted, state, on_message):
                            on_done(outcome)
                        for job in submitted.task:
                            self._ledger.pop(job.run_key, None)
                        self._write_ledger()
                    elif state != submitted.state:
                        submitted.state = state
                        self._show_state(submitted, on_message)
                if self._active:
                    time.sleep(POLL_S)
        finally:
            self.terminate()

    def _parameters(self) -> dict[str, Any]:
        """submitit's sbatch parameters for every job of the sweep."""
        o = self.options
        env = {**import_paths(), **self.settings.env}  # --plugin modules beside the user's code too
        setup = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        if "OMP_NUM_THREADS" not in os.environ:  # as many threads as the job has CPUs, not the node
            setup.append("export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}")
        params: dict[str, Any] = {
            "job_name": "harness",
            "setup": setup,
            "additional_parameters": {"requeue": True, **parse_sbatch_lines(o.sbatch)},
        }
        if o.partition:
            params["partition"] = o.partition
        if o.account:
            params["account"] = o.account
        if o.time:
            minutes = parse_time(o.time)
            params["time"] = minutes
            # the warning signal before the limit: at most 90 s, and within the job's time
            params["signal_delay_s"] = max(10, min(90, minutes * 60 // 10))
        if o.gpus_per_job:
            params["gpus_per_node"] = o.gpus_per_job
        if o.max_queued:
            params["array_parallelism"] = o.max_queued
        return params

    def _submit(
        self,
        executor: Any,
        batch: list[Task],
        on_start: Callable[[Job], None],
        on_message: Callable[[Job, Update], None],
    ) -> None:
        """Find each task's job again where an earlier ``harness run`` submitted it, else submit
        the rest as one job array; then the jobs are shown (and their runs opened)."""
        import submitit

        if not batch:
            return
        placed: list[tuple[Task, Any, str]] = []  # task, its submitit job, how it got there
        new: list[Task] = []
        for task in batch:
            job_id = self._ledger.get(task[0].run_key)
            kept = job_id is not None and (self.folder / "jobs" / job_id).is_dir()  # its files are here
            if kept and all(self._ledger.get(j.run_key) == job_id for j in task):
                slurm_job: Any = submitit.SlurmJob(folder=self.folder / "jobs" / "%j", job_id=str(job_id))
                placed.append((task, slurm_job, " (submitted by an earlier harness run)"))
            else:
                new.append(task)
        if new:
            jobs = executor.map_array(
                _slurm_task, [[j.to_dict() for j in task] for task in new], [self.settings] * len(new)
            )
            for task, slurm_job in zip(new, jobs, strict=True):
                placed.append((task, slurm_job, ""))
                for job in task:
                    self._ledger[job.run_key] = slurm_job.job_id
            self._write_ledger()
        for task, slurm_job, how in placed:
            self._active[slurm_job.job_id] = _Submitted(task, slurm_job)
            for job in task:
                on_start(job)
                text = f"SLURM job {slurm_job.job_id} submitted{how}"
                on_message(job, Progress(job.run_key, 0, 1, text))

    def _show_state(self, submitted: _Submitted, on_message: Callable[[Job, Update], None]) -> None:
        state = submitted.state
        word = {"PENDING": "queued", "RUNNING": "running", "REQUEUED": "requeued", "UNKNOWN": "submitted"}
        text = f"SLURM job {submitted.slurm.job_id} {word.get(state.split()[0], state.lower())}"
        if state.startswith("RUNNING"):
            node = submitted.slurm.watcher.get_info(submitted.slurm.job_id, mode="cache").get("NodeList")
            text += f" on {node}" if node else ""
        for job in submitted.task:
            on_message(job, Progress(job.run_key, 0, 1, text))

    def _settle(
        self, submitted: _Submitted, state: str, on_message: Callable[[Job, Update], None]
    ) -> list[Outcome]:
        """One outcome per job of the task: from its result file, else from SLURM's word on it."""
        slurm_job, task = submitted.slurm, submitted.task
        if slurm_job.paths.result_pickle.exists() or state.startswith("COMPLETED"):
            try:
                updates, final = slurm_job.result()
            except Exception as exc:  # noqa: BLE001 - submitit's word on a job that did not return
                return [_ended_without_result(job, slurm_job, _state(slurm_job), str(exc)) for job in task]
            by_key = {job.run_key: job for job in task}
            for update in updates:
                if update.run_key in by_key:
                    on_message(by_key[update.run_key], update)
            return [_outcome(job, slurm_job, final) for job in task]
        return [_ended_without_result(job, slurm_job, state, "") for job in task]

    def terminate(self) -> None:
        """Cancel every job still in SLURM (Ctrl-C, or an error in the parent)."""
        if not self._active:
            return
        ids = sorted(self._active)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["scancel", *ids], capture_output=True, timeout=60)
        for submitted in self._active.values():
            for job in submitted.task:
                self._ledger.pop(job.run_key, None)  # cancelled: a rerun submits them anew
        self._active.clear()
        self._write_ledger()

    # -- the ledger of submitted jobs ------------------------------------------------------------

    def _read_ledger(self) -> dict[str, str]:
        path = self.folder / LEDGER
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_ledger(self) -> None:
        path = self.folder / LEDGER
        tmp = path.with_name(f".{LEDGER}.{os.getpid()}")
        tmp.write_text(json.dumps(self._ledger, indent=1, sort_keys=True))
        tmp.replace(path)  # never half a ledger, even if harness is killed here


def _state(slurm_job: Any) -> str:
    """The job's state as SLURM's accounting last said (``UNKNOWN`` before it has a record)."""
    return str(slurm_job.watcher.get_state(slurm_job.job_id, mode="cache"))


def _ended(slurm_job: Any, state: str) -> bool:
    if slurm_job.paths.result_pickle.exists():
        return True
    if state.startswith("UNKNOWN ("):  # given up as lost
        return True
    incomplete = ("PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "CONFIGURING", "SUSPENDED")
    return state.split()[0] not in incomplete and not state.startswith("RESIZING")


def _outcome(job: Job, slurm_job: Any, final: list[Result | Failure]) -> Outcome:
    for message in final:
        if message.run_key == job.run_key:
            if isinstance(message, Failure) and message.error.startswith("UncompletedJobError: "):
                # submitit's answer to the signal before the time limit, raised inside the method
                why = message.error.partition(": ")[2]
                timed_out = "timed-out" in why
                reason = "ran out of time (TIMEOUT)" if timed_out else f"was stopped by SLURM: {why}"
                return Outcome(
                    job,
                    "FAILED",
                    error=f"SlurmJobFailed: SLURM job {slurm_job.job_id} {reason}",
                    traceback=f"Its logs: {slurm_job.paths.stdout} and {slurm_job.paths.stderr}\n"
                    + message.traceback,
                )
            outcome = Outcome.of(job, message)
            if outcome.result is not None:  # which SLURM job produced the run, for the record
                tags = {**outcome.result.tags, "slurm.job_id": str(slurm_job.job_id)}
                outcome = Outcome(job, outcome.status, result=_with_tags(outcome.result, tags))
            return outcome
    return _ended_without_result(job, slurm_job, "COMPLETED", "the job returned no result for this run")


def _with_tags(result: Any, tags: Mapping[str, str]) -> Any:
    from dataclasses import replace

    return replace(result, tags=dict(tags))


def _ended_without_result(job: Job, slurm_job: Any, state: str, detail: str) -> Outcome:
    """A FAILED (or, cancelled or preempted, KILLED) outcome naming SLURM's state and the log."""
    word = state.split()[0] if state else "UNKNOWN"
    status: Status = "KILLED" if word in _KILLED_STATES else "FAILED"
    reason = _REASONS.get(word, f"ended {state}" if word != "COMPLETED" else "ended without a result")
    error = f"SlurmJob{'Killed' if status == 'KILLED' else 'Failed'}: SLURM job {slurm_job.job_id} {reason} ({state})"
    log = _tail(slurm_job.paths.stderr)
    text = (
        f"The SLURM job {slurm_job.job_id} of {job.label} ended {state} without a result.\n"
        f"Its logs: {slurm_job.paths.stdout} and {slurm_job.paths.stderr}\n"
    )
    if detail:
        text += f"submitit says:\n{detail}\n"
    elif log:
        text += f"The last lines of its standard error:\n{log}\n"
    return Outcome(job, status, error=error, traceback=text)


def _tail(path: Path, lines: int = _LOG_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
