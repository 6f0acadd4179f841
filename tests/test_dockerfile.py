"""The GPU image's Dockerfile (it cannot be built here: no registry): its base is pinned, it
installs what the requirements files say, and it keeps data and runs in volumes. tox lints it
with hadolint."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPU_REQUIREMENTS = "requirements-gpu.txt"
CPU_ONLY = {"tensorflow-cpu"}
"""Lines of requirements.txt that a GPU install replaces (requirements-gpu.txt says with what)."""


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _pins(path: Path) -> dict[str, str]:
    """Package name → its requirement line; ``-e`` lines keyed by their path."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-e "):
            pins[line[3:].strip()] = line
            continue
        name = re.split(r"[\[=<>!~ ]", line, maxsplit=1)[0].lower()
        pins[name] = line
    return pins


def test_the_base_image_is_a_pinned_cuda_runtime():
    [base] = [rest for word, rest in _instructions() if word == "FROM"]
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", base), base


def test_the_image_installs_the_gpu_requirements_and_the_checkout_they_name():
    runs = [rest for word, rest in _instructions() if word == "RUN"]
    files = []
    for run in runs:
        for command in run.split("&&"):
            args = shlex.split(command)
            if args[:2] == ["pip", "install"]:
                files += [args[i + 1] for i, a in enumerate(args) if a in ("-r", "--requirement")]
                extra = [a for a in args[2:] if not a.startswith("-") and a not in files]
                assert not extra, f"packages installed beside the requirements file: {extra}"
    assert files == [GPU_REQUIREMENTS]
    gpu_file = ROOT / GPU_REQUIREMENTS
    if not gpu_file.is_file():
        pytest.skip(f"{GPU_REQUIREMENTS} is not in this checkout yet (it comes with the GPU install)")
    gpu, cpu = _pins(gpu_file), _pins(ROOT / "requirements.txt")
    # everything a CPU install gets, the image gets too, at the same pin (the frameworks aside)
    for name, line in cpu.items():
        if name not in CPU_ONLY:
            assert gpu.get(name) == line, f"{GPU_REQUIREMENTS} lacks {line!r}"
    # the checkout is copied whole, and .dockerignore keeps every package the file installs
    copies = [rest for word, rest in _instructions() if word == "COPY"]
    assert any(c.split()[0] == "." for c in copies)
    ignored = {p.strip().rstrip("/") for p in (ROOT / ".dockerignore").read_text().splitlines()}
    for path in (p for p in gpu if p.startswith(".")):
        parts = Path(path).parts
        assert not any(part in ignored for part in parts), f"{path} is left out by .dockerignore"
        assert (ROOT / path / "pyproject.toml").is_file(), path


def test_harness_is_the_entry_point_with_data_and_store_in_volumes():
    found = dict(_instructions()[::-1])  # the last of each instruction
    assert json.loads(found["ENTRYPOINT"]) == ["harness"]
    volumes = json.loads(found["VOLUME"])
    env = " ".join(rest for word, rest in _instructions() if word == "ENV")
    data = re.search(r"HARNESS_DATA_DIR=(\S+)", env).group(1)
    store = re.search(r"MLFLOW_TRACKING_URI=sqlite:///(\S+)", env).group(1)
    assert data in volumes
    assert any(Path(store).is_relative_to(v) for v in volumes), (store, volumes)
