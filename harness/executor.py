"""Run tasks in worker processes: a fresh interpreter per task, at most ``max_workers`` at a time.

A task is one job, or several seeds of one configuration trained together (``--batch-seeds``).
A fresh (spawned) process per task keeps frameworks apart (TensorFlow and PyTorch never share a
process) and gives GPU memory back when the task ends. A worker that dies without a word (killed,
out of memory, segfault) fails the jobs it had not reported, like any other failure; the rest go on.
On a machine with GPUs each worker sees only the GPU(s) it was given (``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from harness import worker
from harness.environ import temporary_environ
from harness.gpus import GpuSlots
from harness.messages import Failure, Message, Outcome, Result, Update
from harness.sweep import Job

Task = tuple[Job, ...]
"""Jobs that one worker process runs together (one, or several seeds of one configuration)."""


class Executor(Protocol):
    """What the runner needs of an executor (:class:`LocalExecutor`, ``harness.ray_executor``)."""

    def run(
        self,
        tasks: Iterable[Task | Job],
        on_start: Callable[[Job], None],
        on_message: Callable[[Job, Update], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        """Run ``tasks``: ``on_start`` before each job, ``on_message`` per curve point or progress
        message of a running job, ``on_done`` once per job, however it ended."""

    def terminate(self) -> None:
        """Stop every task still running (Ctrl-C, or an error in the parent)."""


@dataclass
class _Running:
    jobs: dict[str, Job]
    process: Any
    conn: Connection
    gpus: str | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    closed: bool = False


class LocalExecutor:
    """Worker processes on this machine."""

    def __init__(
        self, settings: worker.WorkerSettings, max_workers: int = 1, gpu_slots: GpuSlots | None = None
    ) -> None:
        self.settings = settings
        self.max_workers = max(1, max_workers)
        self.gpu_slots = gpu_slots or GpuSlots([])
        self._ctx = mp.get_context("spawn")
        self._running: dict[Connection, _Running] = {}

    def run(
        self,
        tasks: Iterable[Task | Job],
        on_start: Callable[[Job], None],
        on_message: Callable[[Job, Update], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        """See :meth:`Executor.run`."""
        pending = deque(t if isinstance(t, tuple) else (t,) for t in tasks)
        try:
            while pending or self._running:
                while pending and len(self._running) < self.max_workers:
                    gpus = self.gpu_slots.acquire()
                    if gpus is False:  # every GPU is busy: wait for a task to end
                        break
                    task = pending.popleft()
                    for job in task:
                        on_start(job)
                    self._spawn(task, gpus)
                sentinels = {r.process.sentinel: r for r in self._running.values()}
                ready = wait([*(r.conn for r in self._running.values() if not r.closed), *sentinels])
                for item in ready:
                    running = sentinels.get(item) or self._running.get(item)  # type: ignore[call-overload]
                    if running is None or running.conn not in self._running:
                        continue
                    if item is running.conn:
                        self._read(running, on_message)
                    else:  # the process ended: drain what it sent, then settle the job
                        while not running.closed and running.conn.poll():
                            self._read(running, on_message)
                        self._finish(running, on_done)
        finally:
            self.terminate()

    def _spawn(self, task: Task, gpus: str | None) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=False)
        # Spawned children inherit os.environ at start: set what must hold before any import.
        env = dict(self.settings.env)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        with temporary_environ(env):
            process = self._ctx.Process(
                target=worker.run,
                args=([job.to_dict() for job in task], self.settings, child_conn),
                name=f"harness-job-{task[0].run_key}",
                daemon=True,
            )
            process.start()
        child_conn.close()
        self._running[parent_conn] = _Running(
            jobs={job.run_key: job for job in task}, process=process, conn=parent_conn, gpus=gpus
        )

    def _read(self, running: _Running, on_message: Callable[[Job, Update], None]) -> None:
        try:
            message: Message = running.conn.recv()
        except (EOFError, OSError):
            running.closed = True
            return
        job = running.jobs[message.run_key]
        if isinstance(message, Result | Failure):
            running.outcomes[message.run_key] = Outcome.of(job, message)
        else:
            on_message(job, message)

    def _finish(self, running: _Running, on_done: Callable[[Outcome], None]) -> None:
        running.process.join()
        del self._running[running.conn]
        running.conn.close()
        self.gpu_slots.release(running.gpus)
        for key, job in running.jobs.items():
            outcome = running.outcomes.get(key)
            if outcome is None:
                code = running.process.exitcode
                reason = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                outcome = Outcome(
                    job,
                    "FAILED",
                    error=f"WorkerDied: the worker process ended without a result ({reason})",
                    traceback=f"The worker process of job {job.label} ended ({reason}) "
                    "before it could report; the cause may be an out-of-memory kill or a crash in "
                    "native code.\n",
                )
            on_done(outcome)

    def terminate(self) -> None:
        """Stop every worker still running (Ctrl-C, or an error in the parent)."""
        for running in list(self._running.values()):
            if running.process.is_alive():
                running.process.terminate()
            running.process.join(timeout=10)
            if running.process.is_alive():
                running.process.kill()
                running.process.join()
            running.conn.close()
            self.gpu_slots.release(running.gpus)
        self._running.clear()
