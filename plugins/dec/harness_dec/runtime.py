"""Framework set-up for one job: Keras backend, device, threads, seeds, and the facts to record.

Everything here must happen before the first ``import keras`` (the backend) or before the
framework runs its first op (threads, visible GPUs, memory growth). Each harness job runs in a
fresh process, so the first call in that process wins.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_CHOICES = ("auto", *BACKENDS)
"""``auto`` = ``$KERAS_BACKEND`` where the user set it (as Keras itself reads it), else TensorFlow
where it is installed (the reproductions were measured on it), else JAX (what a GPU machine
without TensorFlow has), else PyTorch. Where a GPU is visible and the device is not ``cpu``, a
backend whose installed build cannot use a GPU (:func:`cpu_only_build`) is passed over for one
that can, so adding the GPU install beside the CPU one is enough."""

GPU_INSTALL = "pip install -r requirements-gpu.txt (or: pip install -e 'plugins/dec[gpu]')"
"""How to get a Keras backend that runs on an NVIDIA GPU (JAX with CUDA), in the warning's words."""


def cpu_only_build(backend: str) -> str | None:
    """The installed build of ``backend``'s framework in words, where its install metadata shows
    that it cannot run on a GPU (``tensorflow-cpu``, jaxlib without a CUDA plugin, a ``+cpu``
    torch); ``None`` where it may. Reads package metadata only: nothing is imported."""
    from importlib.metadata import PackageNotFoundError, distributions, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    if backend == "tensorflow":
        cpu = installed("tensorflow-cpu")
        return f"tensorflow-cpu {cpu}" if cpu and not installed("tensorflow") else None
    if backend == "jax":
        lib = installed("jaxlib")
        names = {(d.metadata["Name"] or "").lower() for d in distributions()}
        plugin = any(re.fullmatch(r"jax[-_]cuda\d+[-_]plugin", n) for n in names)
        return f"jax {installed('jax')} (jaxlib {lib} without a CUDA plugin)" if lib and not plugin else None
    if backend == "torch":
        torch_version = installed("torch")
        return f"torch {torch_version}" if torch_version and torch_version.endswith("+cpu") else None
    return None


def gpu_problem(backends: str | list[str], device: str = "auto") -> str | None:
    """One line saying that DEC will train on the CPU although a GPU is visible, or ``None``.

    ``backends``: the ``backend`` parameter (a list where the sweep expands it). Called by the
    harness parent at the start of a run (:attr:`harness.MethodSpec.gpu_check`), so it reads only
    the environment and install metadata, as :func:`resolve_backend` does in the worker.
    """
    from harness.gpus import visible_gpus

    if device == "cpu" or not visible_gpus():
        return None
    problems = []
    for name in [backends] if isinstance(backends, str) else backends:
        try:
            backend = resolve_backend(name, device)
        except (RuntimeError, ValueError):
            continue  # the job will say so itself
        build = cpu_only_build(backend)
        if build is not None:
            problems.append(build)
    if not problems:
        return None
    return f"dec: a GPU is visible but {', '.join(problems)} cannot use it; install with {GPU_INSTALL}"


def resolve_backend(backend: str, device: str = "auto") -> str:
    """The backend ``auto`` stands for here, or ``backend`` itself; raises if it is not installed."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise ValueError(f"dec: unknown backend {backend!r}; valid: {', '.join(BACKEND_CHOICES)}")
        return backend
    if "keras" in sys.modules:  # a process that already chose: keep it
        return sys.modules["keras"].backend.backend()
    chosen = os.environ.get("KERAS_BACKEND", "").strip()
    if chosen:
        if chosen not in BACKENDS:
            raise ValueError(
                f"dec: $KERAS_BACKEND is {chosen!r}, which DEC cannot run on; valid: {', '.join(BACKENDS)}"
            )
        if importlib.util.find_spec(chosen) is None:
            raise RuntimeError(f"dec: $KERAS_BACKEND asks for {chosen}, which is not installed here")
        return chosen
    installed = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]
    if not installed:
        raise RuntimeError(
            "dec: none of tensorflow, jax, torch is installed (Keras needs one of them); "
            "install with pip install -e 'plugins/dec[cpu]' or 'plugins/dec[gpu]'"
        )
    if device != "cpu" and len(installed) > 1:
        from harness.gpus import visible_gpus

        if visible_gpus():
            can = [name for name in installed if cpu_only_build(name) is None]
            if can:
                return can[0]
    return installed[0]


def select_backend(backend: str, device: str) -> None:
    """Point Keras at ``backend`` and set the environment GPU frameworks read at import time."""
    if backend not in BACKENDS:
        raise ValueError(f"dec: unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != backend:
            raise RuntimeError(
                f"dec: backend {backend!r} asked for, but Keras is already loaded with {loaded!r} in this "
                f"process (harness runs each job in a fresh process; call fit_predict in one of its own)"
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Never take the whole card: grow on demand (TF), do not preallocate 75 % (JAX).
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = "cpu"  # not a CUDA plugin failing to start, then falling back


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Mute file descriptor 2 while TensorFlow loads: TF 2.21 writes absl/oneDNN start-up lines
    straight to it, whatever TF_CPP_MIN_LOG_LEVEL says. Python errors still surface as exceptions."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def configure(
    backend: str, device: str, threads: int | None, deterministic: bool, seed: int
) -> dict[str, str]:
    """Apply device, thread and determinism settings, seed Keras, and return tags describing them."""
    with _native_stderr_silenced():
        import keras

        if backend == "tensorflow":
            import tensorflow  # noqa: F401 - loaded here, quietly

    tags: dict[str, str] = {"dec.backend": backend, "version.keras": keras.__version__}
    if backend == "tensorflow":
        tags |= _configure_tensorflow(device, threads, deterministic)
    elif backend == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        if deterministic:
            torch.use_deterministic_algorithms(True)
        tags |= {
            "version.torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() and device != "cpu" else "cpu",
        }
        tags["dec.threads"] = str(torch.get_num_threads())
    else:
        import jax

        tags |= {"version.jax": jax.__version__, "device": str(jax.devices()[0]).lower()}
    # Python, NumPy and the backend's generators (the core seeded Python and NumPy already; this
    # call re-seeds them to the same seed and adds Keras' own SeedGenerator state).
    # It also imports TensorFlow wherever TF is installed, whatever the backend: quietly, too.
    with _native_stderr_silenced():
        keras.utils.set_random_seed(seed)
    tags |= {
        "determinism.seeded": "python,numpy,keras",
        "determinism.seed": str(seed),
        "determinism.op_determinism": str(bool(deterministic)).lower(),
        "determinism.PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "unset"),
    }
    return tags


def _configure_tensorflow(device: str, threads: int | None, deterministic: bool) -> dict[str, Any]:
    import tensorflow as tf

    tags: dict[str, str] = {"version.tensorflow": tf.__version__}
    build = tf.sysconfig.get_build_info()
    for key in ("cuda_version", "cudnn_version"):
        if build.get(key):
            tags[f"version.{key.split('_')[0]}"] = str(build[key])
    try:  # raises once TF's runtime is initialised (a second job in the same process)
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        gpus = tf.config.list_physical_devices("GPU")
        if device.startswith("cuda"):
            if not gpus:
                raise ValueError(
                    f"dec: device {device!r} asked for, but TensorFlow sees no GPU (tensorflow-cpu is "
                    f"installed, or CUDA is missing; see plugins/dec/pyproject.toml)"
                )
            match = re.fullmatch(r"cuda:(\d+)", device)
            index = int(match.group(1)) if match else 0
            if index >= len(gpus):
                raise ValueError(f"dec: device {device!r} asked for, but TensorFlow sees {len(gpus)} GPU(s)")
            tf.config.set_visible_devices([gpus[index]], "GPU")
            gpus = [gpus[index]]
        elif device == "cpu":
            tf.config.set_visible_devices([], "GPU")
            gpus = []
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as exc:
        tags["dec.runtime_note"] = f"settings not applied: {exc}"
        gpus = tf.config.get_visible_devices("GPU")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        tags["device"] = f"{gpus[0].name.replace('/physical_device:', '').lower()} ({name})"
        tags["dec.memory_growth"] = "true"
    else:
        tags["device"] = "cpu"
    tags["dec.threads"] = (
        f"intra {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"inter {tf.config.threading.get_inter_op_parallelism_threads() or 'default'}"
    )
    return tags


def tensor_device(backend: str, tensor: Any) -> dict[str, str]:
    """Where ``tensor`` really lives, as the tags ``device`` (``cpu`` or ``cuda:N``, as DLFC
    records it) and ``device.name``: asked of the framework about a tensor it made, not read from
    what was requested or what it lists, so a run's device tag is the truth on every backend."""
    if backend == "jax":
        (dev,) = tensor.devices()
        if dev.platform == "cpu":
            return {"device": "cpu"}
        return {"device": f"cuda:{dev.id}", "device.name": str(dev.device_kind)}
    if backend == "torch":
        import torch

        where = tensor.device
        if where.type != "cuda":
            return {"device": where.type}
        index = where.index if where.index is not None else torch.cuda.current_device()
        return {"device": f"cuda:{index}", "device.name": torch.cuda.get_device_name(index)}
    import tensorflow as tf

    spec = tf.DeviceSpec.from_string(tensor.device)
    if (spec.device_type or "CPU").upper() != "GPU":
        return {"device": "cpu"}
    index = spec.device_index or 0
    gpus = tf.config.get_visible_devices("GPU")
    name = tf.config.experimental.get_device_details(gpus[index]).get("device_name", "GPU") if gpus else "GPU"
    return {"device": f"cuda:{index}", "device.name": str(name)}


def check_device_used(backend: str, used: str, requested: str) -> None:
    """Raise where ``cuda`` was asked for and the tensors landed on the CPU; warn (one line, kept
    with the run as ``harness.warnings``) where a GPU is visible to this worker, the device was
    left to ``auto``, and the framework could not use it."""
    if used != "cpu" or requested == "cpu":
        return
    build = cpu_only_build(backend) or backend
    if requested.startswith("cuda"):
        raise ValueError(
            f"dec: device {requested!r} asked for, but {build} placed the data on the CPU; install with {GPU_INSTALL}"
        )
    from harness.gpus import visible_gpus

    gpus = visible_gpus()
    if gpus:
        import warnings

        warnings.warn(
            f"dec: a GPU is visible ({', '.join(gpus)}) but {build} cannot use it, so this run trained on "
            f"the CPU; install with {GPU_INSTALL}",
            RuntimeWarning,
            stacklevel=2,
        )


# ---- the few things Keras leaves to each framework: gradients, loops, compilation -------------


def value_and_grad(
    backend: str, fn: Callable[..., tuple[Any, Any]]
) -> Callable[..., tuple[tuple[Any, Any], list]]:
    """``fn(params, *args) -> (scalar, aux)`` as ``(params, *args) -> ((scalar, aux), grads)``."""
    if backend == "jax":
        import jax

        return jax.value_and_grad(fn, has_aux=True)
    if backend == "tensorflow":
        import tensorflow as tf

        def tf_grad(params: list, *args: Any) -> tuple[tuple[Any, Any], list]:
            with tf.GradientTape() as tape:
                tape.watch(params)
                value, aux = fn(params, *args)
            return (value, aux), tape.gradient(value, params)

        return tf_grad
    import torch

    def torch_grad(params: list, *args: Any) -> tuple[tuple[Any, Any], list]:
        leaves = [p.detach().requires_grad_(True) for p in params]
        with torch.enable_grad():
            value, aux = fn(leaves, *args)
        grads = torch.autograd.grad(value, leaves)
        return (value.detach(), aux.detach()), list(grads)

    return torch_grad


def fori_loop(backend: str, steps: int, body: Callable[[Any, Any], Any], init: Any) -> Any:
    """``steps`` iterations of ``body(i, carry)``: one XLA loop on JAX/TF, Python on PyTorch."""
    if backend == "torch":
        carry = init
        for i in range(steps):
            carry = body(i, carry)
        return carry
    from keras import ops

    return ops.fori_loop(0, steps, body, init)


def compile_fn(backend: str, fn: Callable[..., Any], donate: bool = False) -> Callable[..., Any]:
    """``fn`` compiled as a whole: ``jax.jit``, TF ``tf.function(jit_compile=True)`` (XLA), and
    on PyTorch eager under ``no_grad`` (gradients are taken explicitly inside). ``donate``: on a
    JAX accelerator the first two arguments (parameters, optimizer state) are given to the call,
    so a step updates them in place instead of holding two copies."""
    if backend == "jax":
        import jax

        donate_argnums = (0, 1) if donate and jax.default_backend() != "cpu" else ()
        return jax.jit(fn, donate_argnums=donate_argnums)
    if backend == "tensorflow":
        import tensorflow as tf

        # XLA where it pays: on a GPU it fuses each step's small kernels; on a CPU it only adds
        # seconds of compilation per shape to what oneDNN's matmuls already do as fast.
        return tf.function(fn, jit_compile=bool(tf.config.get_visible_devices("GPU")))
    import torch

    def no_grad(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return fn(*args, **kwargs)

    return no_grad


@functools.cache
def compiled(backend: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`compile_fn` once per process for a module-level ``fn`` (later seeds, tests and
    benchmarks in the same process reuse its traces instead of compiling again)."""
    return compile_fn(backend, fn)
