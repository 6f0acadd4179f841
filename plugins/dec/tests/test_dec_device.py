"""Which device DEC really trains on, and the one line that says a visible GPU goes unused.

A GPU is simulated by what the harness reads to find one (``CUDA_VISIBLE_DEVICES``, or the
install metadata the backend choice reads), never by a stand-in for the run: the framework
installed here, a CPU build, then really runs and really cannot use it.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from harness.cli import main
from harness.errors import ExitCode
from harness.testing import KitContext
from harness_dec import PARAMS, fit_predict, runtime

TINY = {"pretrain_epochs": 1, "maxiter": 2, "update_interval": 1, "n_init": 1, "threads": 1}


def _backend_here() -> str:
    return runtime.resolve_backend("auto", "cpu")


def _cpu_build_or_skip() -> str:
    build = runtime.cpu_only_build(_backend_here())
    if build is None:
        pytest.skip(f"the {_backend_here()} installed here may use a GPU: no GPU can be simulated")
    return build


def _digits():
    bunch = load_digits()
    return (bunch.data[:400] / 16.0).astype(np.float32), bunch.target[:400]


def _run(tmp_path, device: str):
    params = {p.name: p.default for p in PARAMS} | TINY
    images, truth = _digits()
    context = KitContext(seed=0, cache_dir=tmp_path, truth=truth, device=device)  # the contract kit's
    return fit_predict(images, n_clusters=10, seed=0, params=params, context=context)


def test_a_visible_gpu_the_framework_cannot_use_is_one_warning_and_the_tag_says_cpu(tmp_path, monkeypatch):
    build = _cpu_build_or_skip()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what a worker placed on GPU 0 sees
    with pytest.warns(RuntimeWarning) as caught:
        result = _run(tmp_path, "auto")
    lines = [str(w.message) for w in caught if "GPU" in str(w.message)]
    assert lines == [
        f"dec: a GPU is visible (0) but {build} cannot use it, so this run trained on the CPU; "
        f"install with {runtime.GPU_INSTALL}"
    ]
    assert result.tags["device"] == "cpu" and "device.name" not in result.tags


def test_no_warning_on_device_cpu(tmp_path, monkeypatch, recwarn):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert _run(tmp_path, "cpu").tags["device"] == "cpu"
    assert not [w for w in recwarn if "GPU" in str(w.message)]


def test_the_device_tag_is_where_the_framework_put_the_tensor():
    from keras import ops

    backend = _backend_here()
    tensor = ops.convert_to_tensor(np.zeros((3, 2), dtype=np.float32))
    told = runtime.tensor_device(backend, tensor)
    # asked of the tensor, in the framework's own words for where it lives
    native = {
        "tensorflow": lambda t: "GPU" in t.device.upper(),
        "jax": lambda t: next(iter(t.devices())).platform != "cpu",
        "torch": lambda t: t.device.type == "cuda",
    }[backend](tensor)
    assert told["device"].startswith("cuda:") == native
    assert (told["device"] == "cpu") == (not native)


def test_the_start_of_a_run_names_the_cpu_build_before_any_job(monkeypatch):
    build = _cpu_build_or_skip()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert runtime.gpu_problem("auto", "auto") == (
        f"dec: a GPU is visible but {build} cannot use it; install with {runtime.GPU_INSTALL}"
    )
    assert runtime.gpu_problem("auto", "cpu") is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert runtime.gpu_problem("auto", "auto") is None


def test_auto_passes_over_a_cpu_only_build_where_a_gpu_is_visible(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras", raising=False)  # a fresh job process: nothing chosen yet
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: object())  # all three installed
    monkeypatch.setattr(
        runtime, "cpu_only_build", lambda b: "tensorflow-cpu 2.21.0" if b == "tensorflow" else None
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert runtime.resolve_backend("auto", "auto") == "jax"
    assert runtime.resolve_backend("auto", "cpu") == "tensorflow"  # the CPU: the measured default
    assert runtime.resolve_backend("tensorflow", "auto") == "tensorflow"  # asked for by name: kept
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert runtime.resolve_backend("auto", "auto") == "tensorflow"


def test_cpu_only_builds_are_read_from_install_metadata(monkeypatch):
    from importlib import metadata

    versions = {"tensorflow-cpu": "2.21.0", "torch": "2.13.0+cpu", "jax": "0.10.2", "jaxlib": "0.10.2"}

    def version(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(metadata, "version", version)
    monkeypatch.setattr(metadata, "distributions", lambda: [])
    assert runtime.cpu_only_build("tensorflow") == "tensorflow-cpu 2.21.0"
    assert runtime.cpu_only_build("torch") == "torch 2.13.0+cpu"
    assert runtime.cpu_only_build("jax") == "jax 0.10.2 (jaxlib 0.10.2 without a CUDA plugin)"
    versions |= {"tensorflow": "2.21.0", "torch": "2.13.0"}
    assert runtime.cpu_only_build("tensorflow") is None and runtime.cpu_only_build("torch") is None


def test_the_parent_prints_the_line_once_per_method_before_any_job(monkeypatch, capsys):
    from harness.cli import _warn_unused_gpu
    from harness.config import build_sweep
    from harness.plugins import load_registry

    build = _cpu_build_or_skip()
    registry = load_registry()
    sweep = build_sweep(registry, {}, {"methods": ["dec", "kmeans"], "datasets": ["digits"], "seeds": [0, 1]})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    _warn_unused_gpu(registry, sweep)
    assert capsys.readouterr().err.splitlines() == [
        f"harness: warning: dec: a GPU is visible but {build} cannot use it; install with {runtime.GPU_INSTALL}"
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    _warn_unused_gpu(registry, sweep)
    assert capsys.readouterr().err == ""


@pytest.mark.slow  # a worker process imports Keras and TensorFlow: a minute on the shared CPU
def test_harness_run_says_it_once_at_the_start_and_the_run_records_the_truth(tmp_path, monkeypatch, capfd):
    build = _cpu_build_or_skip()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    argv = [
        "run",
        "--methods",
        "dec",
        "--datasets",
        "digits",
        "--seeds",
        "0",
        "--offline",
        str(tmp_path / "j"),
    ]
    argv += [f"--param=dec.{k}={v}" for k, v in TINY.items()] + ["--cache-dir", str(tmp_path / "c")]
    assert main(argv) == ExitCode.OK
    err = capfd.readouterr().err
    start = f"harness: warning: dec: a GPU is visible but {build} cannot use it; install with {runtime.GPU_INSTALL}"
    assert err.count(start) == 1
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "j" / "runs").glob("*/record.json")]
    assert record["tags"]["device"] == "cpu"
    assert f"a GPU is visible (0) but {build} cannot use it" in record["tags"]["harness.warnings"]
