"""GPU placement for worker processes: found without importing a framework, handed out per task.

Each worker sees only its GPU(s) through ``CUDA_VISIBLE_DEVICES``, so a method that asks for
``cuda`` gets the one it was given, and frameworks that grab all GPU memory at start (TensorFlow)
grab only their own GPU's.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Literal

from harness.errors import UsageError


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else nvidia-smi's list."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()]


class GpuSlots:
    """Hands GPUs to tasks.

    ``per_job=None``: no limit; each task gets the next GPU in turn and tasks share GPUs freely.
    ``per_job < 1``: up to ``floor(1 / per_job)`` tasks share one GPU (``0.5``: two per GPU).
    ``per_job >= 1``: each task gets ``ceil(per_job)`` whole GPUs to itself.
    With no GPUs, every task gets ``None`` (its environment is left as it is).
    """

    def __init__(self, gpus: list[str], per_job: float | None = None) -> None:
        if per_job is not None:
            if not per_job > 0:
                raise UsageError(f"--gpus-per-job: expected a number > 0 (such as 0.5 or 1), got {per_job}")
            if not gpus:
                raise UsageError(
                    f"--gpus-per-job {per_job:g}: no GPU is visible (nvidia-smi finds none and "
                    "CUDA_VISIBLE_DEVICES names none); leave the option out to run on the CPU"
                )
            if per_job > len(gpus):
                raise UsageError(
                    f"--gpus-per-job {per_job:g}: only {len(gpus)} GPU(s) visible ({', '.join(gpus)})"
                )
        self.gpus = list(gpus)
        self.per_job = per_job
        self._in_use: Counter[str] = Counter()
        self._turn = 0

    @property
    def capacity(self) -> int | None:
        """How many tasks can hold GPUs at once (``None``: no limit)."""
        if self.per_job is None or not self.gpus:
            return None
        if self.per_job < 1:
            return len(self.gpus) * math.floor(1 / self.per_job)
        return len(self.gpus) // math.ceil(self.per_job)

    def acquire(self) -> str | None | Literal[False]:
        """GPU ids for the next task (``CUDA_VISIBLE_DEVICES`` form), ``None`` without GPUs, or
        ``False`` when every GPU is taken."""
        if not self.gpus:
            return None
        if self.per_job is None:
            gpu = self.gpus[self._turn % len(self.gpus)]
            self._turn += 1
            self._in_use[gpu] += 1
            return gpu
        if self.per_job < 1:
            share = math.floor(1 / self.per_job)
            for gpu in self.gpus:
                if self._in_use[gpu] < share:
                    self._in_use[gpu] += 1
                    return gpu
            return False
        free = [g for g in self.gpus if self._in_use[g] == 0]
        need = math.ceil(self.per_job)
        if len(free) < need:
            return False
        for gpu in free[:need]:
            self._in_use[gpu] += 1
        return ",".join(free[:need])

    def release(self, gpus: str | None) -> None:
        if not gpus:
            return
        for gpu in gpus.split(","):
            self._in_use[gpu] -= 1


def check_gpu_visible(device: str, gpus: list[str]) -> None:
    """``--device cuda`` on a machine without a GPU would fail every job of a deep method one by
    one (and silently run the others on the CPU): say so once, before anything runs."""
    if gpus:
        return
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is None and any(Path("/dev").glob("nvidia[0-9]*")):
        return  # a GPU device node without nvidia-smi: let the frameworks decide
    why = f"CUDA_VISIBLE_DEVICES is {hidden!r}" if hidden is not None else "nvidia-smi finds none"
    raise UsageError(f"device {device!r}: no GPU is visible here ({why}); use device auto or cpu")


def worker_environment(
    device: str, executor: str, jobs: int, gpus_per_job: float | None
) -> tuple[dict[str, str], GpuSlots | None]:
    """The environment every worker starts with, and the GPU slots local workers are placed on.

    Raises :class:`UsageError` where the device and ``--gpus-per-job`` contradict each other or
    name GPUs that are not there.
    """
    env = {"PYTHONHASHSEED": "0"}
    if executor == "local" and jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        # N workers that each start one OpenMP thread per core oversubscribe the machine (k-means
        # on digits: 3.8 s instead of 0.15 s per job); share the cores out instead.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    if device == "cpu":
        if gpus_per_job is not None:
            raise UsageError(f"--gpus-per-job {gpus_per_job:g} contradicts --device cpu")
        env["CUDA_VISIBLE_DEVICES"] = ""  # no framework in a worker reserves GPU memory it won't use
        return env, None
    if executor != "local":
        return env, None  # Ray places its tasks itself
    gpus = visible_gpus()
    if device.startswith("cuda"):
        check_gpu_visible(device, gpus)
    if device in ("auto", "cuda"):
        return env, GpuSlots(gpus, gpus_per_job)
    if gpus_per_job is not None:
        raise UsageError(
            f"--gpus-per-job places workers on GPUs itself: use it with --device auto or cuda, not {device}"
        )
    return env, None
