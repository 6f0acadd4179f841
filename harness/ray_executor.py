"""Run jobs as Ray tasks, on a local Ray instance or on a cluster (``--executor ray``).

Each task (one job, or with ``--batch-seeds`` several seeds of one configuration) is one Ray task
asking for one CPU (and ``gpus_per_job`` GPUs). It runs exactly what a local worker runs
(:func:`harness.worker.run`) with a :class:`_Sink` in place of the pipe: curve
points and progress go to the parent in batches through a small mailbox actor, and the outcome comes
back as the task's return value. Workers never open the tracking store, so remote nodes need no
access to it. Ray keeps its worker processes, so datasets loaded by one job are reused by the next
(:mod:`harness.worker_cache`) — but only for methods that declare ``MethodSpec.shares_process``: a
job of any other method (TensorFlow, PyTorch) gets a fresh process, as locally, so two frameworks
never share one and GPU memory is given back when the job ends.

Ray is imported only here, and only when this executor is chosen: it is an optional dependency
(``pip install harness[ray]``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from harness import worker
from harness.environ import import_paths, temporary_environ
from harness.errors import UsageError
from harness.executor import Task
from harness.messages import Failure, Message, Outcome, Result, Update
from harness.netcheck import unreachable
from harness.sweep import Job

OBJECT_STORE_BYTES = 512 * 1024**2
"""Object store of a local Ray instance: results are labels and embeddings, a few MB per job."""

_ADDRESS = re.compile(r"(?:ray://)?(?P<host>\[[^\]]+\]|[^:/\s]+):(?P<port>\d{1,5})")
VALID_ADDRESSES = "auto, HOST:PORT of a Ray head node (ray start --head prints it), or ray://HOST:PORT"
_QUIET_ENV = {
    "RAY_AUTH_MODE": "disabled",  # no token prompt or warning for a private local instance
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",  # and no FutureWarning about it at init
}


def check_address(address: str) -> None:
    """Raise :class:`UsageError` unless ``address`` is ``auto`` or a reachable ``HOST:PORT``.

    Checked before anything is recorded, so that a typo costs one line, not a half-made sweep.
    """
    if address == "auto":
        return
    m = _ADDRESS.fullmatch(address.strip())
    if m is None or not 0 < int(m.group("port")) < 65536:
        raise UsageError(f"--ray-address: expected {VALID_ADDRESSES}, got {address!r}")
    reason = unreachable(m.group("host").strip("[]"), int(m.group("port")))
    if reason is not None:
        raise UsageError(
            f"--ray-address: no Ray cluster answers at {address!r} ({reason}); expected {VALID_ADDRESSES}"
        )


# -- the worker's side: the protocol of harness.worker, carried through Ray ------------------------


class _Mailbox:
    """A Ray actor holding the messages that running tasks have sent and the parent not yet read."""

    def __init__(self) -> None:
        self._messages: list[Update] = []

    def put(self, batch: list[Update]) -> None:
        self._messages.extend(batch)

    def drain(self) -> list[Update]:
        out, self._messages = self._messages, []
        return out


class _Sink:
    """The worker's pipe inside a Ray task.

    Updates (curve points and progress, each naming its job's run key) are sent to the mailbox at
    most every ``interval`` seconds (one actor call per batch, not per point); the final
    :class:`~harness.messages.Result` or :class:`~harness.messages.Failure` of each job is kept and
    returned by the task.
    """

    def __init__(self, mailbox: Any, interval: float = 0.5, batch: int = 500) -> None:
        self._mailbox = mailbox
        self._interval = interval
        self._batch = batch
        self._buffer: list[Update] = []
        self._sent_at = float("-inf")  # the first message goes at once: it names what the job does
        self._last: Any = None
        self.final: list[Result | Failure] = []

    def send(self, message: Message) -> None:
        if isinstance(message, Result | Failure):
            self.final.append(message)
            return
        self._buffer.append(message)
        if len(self._buffer) >= self._batch or time.monotonic() - self._sent_at >= self._interval:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._last = self._mailbox.put.remote(self._buffer)
            self._buffer = []
        self._sent_at = time.monotonic()

    def close(self) -> None:
        """Send what is left and wait until the mailbox has it: it must be there before the result."""
        import ray

        self._flush()
        if self._last is not None:
            ray.get(self._last)


def _job_task(
    job_dicts: list[dict[str, Any]], settings: worker.WorkerSettings, mailbox: Any
) -> list[Result | Failure]:
    """The body of a Ray task: the local worker's code, with a sink for the pipe."""
    sink = _Sink(mailbox)
    worker.run(job_dicts, settings, sink)
    return sink.final


def _outcome(job: Job, final: list[Result | Failure]) -> Outcome:
    """The job's outcome from the final messages its task returned."""
    for message in final:
        if message.run_key == job.run_key:
            return Outcome.of(job, message)
    return _failed(job, "WorkerDied: the Ray task ended without a result", "")


def _failed(job: Job, error: str, detail: str) -> Outcome:
    return Outcome(
        job,
        "FAILED",
        error=error,
        traceback=f"The Ray task of job {job.label} ended without a result; the cause may be an "
        f"out-of-memory kill, a crash in native code or a lost node. Ray says:\n{detail}\n",
    )


# -- the parent's side ----------------------------------------------------------------------------


class RayExecutor:
    """Jobs as Ray tasks: at most ``max_workers`` at a time (default: as many as the cluster fits).

    Jobs of ``shared_process_methods`` may share a worker process with earlier jobs (and their
    cached datasets); every other job gets a fresh one.

    With no ``address`` a private local Ray instance is started (``max_workers`` CPUs, or all of
    them) and stopped at the end; with ``auto`` or ``HOST:PORT`` the jobs go to that cluster.
    """

    def __init__(
        self,
        settings: worker.WorkerSettings,
        *,
        address: str | None = None,
        max_workers: int | None = None,
        gpus_per_job: float | None = None,
        shared_process_methods: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.shared_process_methods = frozenset(shared_process_methods)
        self.address = address
        self.max_workers = max_workers
        self.gpus_per_job = gpus_per_job
        self._running: dict[Any, Task] = {}
        self._connected = False

    # -- connection ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Start or join Ray; a cluster that cannot be reached is a :class:`UsageError`."""
        if self.address is not None:
            check_address(self.address)
        try:
            import ray
        except ImportError:
            raise UsageError(
                "--executor ray: Ray is not installed (pip install 'harness[ray]', or ray==2.60.0)"
            ) from None
        # A local instance's workers inherit this environment, so they need no runtime_env (which
        # would make Ray start a second set of workers); a cluster's workers get it as one.
        env = {**_QUIET_ENV, **self.settings.env, **(import_paths() if self.address is None else {})}
        try:
            with temporary_environ(env):
                if self.address is None:
                    ray.init(
                        address="local",
                        num_cpus=self.max_workers or os.cpu_count(),
                        object_store_memory=OBJECT_STORE_BYTES,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                    )
                else:
                    ray.init(
                        address=self.address,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                        runtime_env={"env_vars": dict(self.settings.env)} if self.settings.env else None,
                    )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.address is None:
                raise UsageError(f"--executor ray: cannot start a local Ray instance: {first}") from None
            raise UsageError(
                f"--ray-address: cannot use Ray at {self.address!r}: {first}; expected {VALID_ADDRESSES}"
            ) from None
        self._connected = True

    def shutdown(self) -> None:
        """Leave Ray: a local instance stops, a cluster keeps running."""
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False

    def capacity(self) -> int:
        """How many jobs the cluster can run at once with their CPU and GPU needs."""
        import ray

        resources = ray.cluster_resources()
        fits = int(resources.get("CPU", 1))
        if self.gpus_per_job:
            fits = min(fits, int(resources.get("GPU", 0) / self.gpus_per_job))
        return max(1, fits)

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        tasks: Iterable[Task | Job],
        on_start: Callable[[Job], None],
        on_message: Callable[[Job, Update], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        """See :meth:`harness.executor.Executor.run`."""
        import ray

        if not self._connected:
            self.connect()
        options: dict[str, Any] = {
            "num_cpus": 1,
            "num_gpus": self.gpus_per_job or 0,
            "max_retries": 0,
            "name": "harness-job",
        }
        shared = ray.remote(**options)(_job_task)
        fresh = ray.remote(**options, max_calls=1)(_job_task)  # its worker exits after the job
        mailbox: Any = ray.remote(_Mailbox).options(num_cpus=0).remote()
        limit = self.max_workers or self.capacity()
        by_key: dict[str, Job] = {}
        pending = deque(t if isinstance(t, tuple) else (t,) for t in tasks)
        try:
            while pending or self._running:
                while pending and len(self._running) < limit:
                    task = pending.popleft()
                    for job in task:
                        on_start(job)
                        by_key[job.run_key] = job
                    remote = shared if task[0].method in self.shared_process_methods else fresh
                    self._running[remote.remote([j.to_dict() for j in task], self.settings, mailbox)] = task
                refs = list(self._running)
                done, _ = ray.wait(refs, num_returns=1, timeout=0.5)
                if done:  # and every other task that has ended meanwhile
                    done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
                for update in ray.get(mailbox.drain.remote()):
                    if update.run_key in by_key:  # a late word from a settled job's dead worker is dropped
                        on_message(by_key[update.run_key], update)
                for ref in done:
                    task = self._running.pop(ref)
                    for outcome in self._settle(task, ref):
                        on_done(outcome)
                        del by_key[outcome.job.run_key]
        finally:
            self.terminate()
            with contextlib.suppress(Exception):  # never hide why the loop ended
                ray.kill(mailbox)

    def _settle(self, task: Task, ref: Any) -> list[Outcome]:
        """One outcome per job of the task, from the one value its Ray task returned."""
        import ray

        try:
            final = ray.get(ref)
        except ray.exceptions.RayError as exc:
            text = str(exc).strip()
            first = text.splitlines()[0] if text else ""
            return [_failed(job, f"{type(exc).__name__}: {first}", text) for job in task]
        return [_outcome(job, final) for job in task]

    def terminate(self) -> None:
        """Cancel every task still running (Ctrl-C, or an error in the parent)."""
        if not self._running:
            return
        import ray

        for ref in self._running:
            with contextlib.suppress(Exception):  # already ended, or its worker gone
                ray.cancel(ref, force=True)
        self._running.clear()
