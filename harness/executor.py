"""Run jobs in worker processes: a fresh interpreter per job, at most ``max_workers`` at a time.

A fresh (spawned) process per job keeps frameworks apart (TensorFlow and PyTorch never share a
process) and gives GPU memory back when the job ends. A worker that dies without a word (killed,
out of memory, segfault) becomes a failed job like any other; the rest go on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from harness import worker
from harness.sweep import Job


@dataclass
class Outcome:
    """How one job ended: ``status`` is an MLflow run status (FINISHED, FAILED or KILLED)."""

    job: Job
    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None


class Executor(Protocol):
    """What the runner needs of an executor (:class:`LocalExecutor`, ``harness.ray_executor``)."""

    def run(
        self,
        jobs: Iterable[Job],
        on_start: Callable[[Job], None],
        on_message: Callable[[Job, tuple], None],
        on_done: Callable[[Outcome], None],
    ) -> None: ...

    def running_jobs(self) -> list[Job]: ...

    def terminate(self) -> None: ...


@dataclass
class _Running:
    job: Job
    process: Any
    conn: Connection
    outcome: Outcome | None = None
    closed: bool = False


class LocalExecutor:
    """Worker processes on this machine."""

    def __init__(self, settings: worker.WorkerSettings, max_workers: int = 1) -> None:
        self.settings = settings
        self.max_workers = max(1, max_workers)
        self._ctx = mp.get_context("spawn")
        self._running: dict[Connection, _Running] = {}

    def run(
        self,
        jobs: Iterable[Job],
        on_start: Callable[[Job], None],
        on_message: Callable[[Job, tuple], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        """Run ``jobs``: ``on_start`` before each, ``on_message`` per worker message, ``on_done`` after."""
        pending = deque(jobs)
        try:
            while pending or self._running:
                while pending and len(self._running) < self.max_workers:
                    job = pending.popleft()
                    on_start(job)
                    self._spawn(job)
                sentinels = {r.process.sentinel: r for r in self._running.values()}
                ready = wait([*(r.conn for r in self._running.values() if not r.closed), *sentinels])
                for item in ready:
                    running = sentinels.get(item) or self._running.get(item)
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

    def _spawn(self, job: Job) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=False)
        # Spawned children inherit os.environ at start: set what must hold before any import.
        saved = {k: os.environ.get(k) for k in self.settings.env}
        os.environ.update(self.settings.env)
        try:
            process = self._ctx.Process(
                target=worker.run,
                args=(job.to_dict(), self.settings, child_conn),
                name=f"harness-job-{job.run_key}",
                daemon=True,
            )
            process.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child_conn.close()
        self._running[parent_conn] = _Running(job=job, process=process, conn=parent_conn)

    def _read(self, running: _Running, on_message: Callable[[Job, tuple], None]) -> None:
        try:
            message = running.conn.recv()
        except (EOFError, OSError):
            running.closed = True
            return
        kind = message[0]
        if kind == "result":
            running.outcome = Outcome(running.job, "FINISHED", result=message[1])
        elif kind == "error":
            running.outcome = Outcome(
                running.job, "FAILED", error=message[1]["error"], traceback=message[1]["traceback"]
            )
        else:
            on_message(running.job, message)

    def _finish(self, running: _Running, on_done: Callable[[Outcome], None]) -> None:
        running.process.join()
        del self._running[running.conn]
        running.conn.close()
        outcome = running.outcome
        if outcome is None:
            code = running.process.exitcode
            reason = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            outcome = Outcome(
                running.job,
                "FAILED",
                error=f"WorkerDied: the worker process ended without a result ({reason})",
                traceback=f"The worker process of job {running.job.label} ended ({reason}) "
                "before it could report; the cause may be an out-of-memory kill or a crash in "
                "native code.\n",
            )
        on_done(outcome)

    def running_jobs(self) -> list[Job]:
        return [r.job for r in self._running.values()]

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
        self._running.clear()
