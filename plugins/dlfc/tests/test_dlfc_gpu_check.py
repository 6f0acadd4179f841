"""A CPU-only torch is named at the start of a run where a GPU is visible (install metadata only)."""

from __future__ import annotations

from importlib import metadata

from harness_dlfc import gpu_check


def test_a_cpu_torch_is_named_and_a_cuda_torch_is_not(monkeypatch):
    installed = {"torch": "2.13.0+cpu"}
    monkeypatch.setattr(metadata, "version", lambda name: installed[name])
    assert gpu_check({}, "auto") == (
        "dlfc: a GPU is visible but torch 2.13.0+cpu cannot use it; install with pip install -r requirements-gpu.txt"
    )
    installed["torch"] = "2.13.0"  # PyPI's Linux wheel: the CUDA build
    assert gpu_check({}, "auto") is None
