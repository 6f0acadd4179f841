"""The GPU install is the CPU install with DEC's framework swapped, and nothing else.

Two requirement files drift apart one forgotten bump at a time; a GPU table measured with other
pins than the CPU one would compare two software stacks, not two devices.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
SWAP = {"tensorflow-cpu": "jax"}
"""CPU file's package -> the GPU file's in its place (DEC's Keras backend)."""


def _lines(name: str) -> list[str]:
    text = (ROOT / name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _requirement(line: str) -> Requirement | None:
    return None if line.startswith("-") else Requirement(line)


def test_the_gpu_file_is_the_cpu_file_with_the_framework_swapped():
    cpu, gpu = _lines("requirements.txt"), _lines("requirements-gpu.txt")
    assert len(cpu) == len(gpu)
    swapped = []
    for a, b in zip(cpu, gpu, strict=True):
        ra, rb = _requirement(a), _requirement(b)
        if ra is not None and ra.name in SWAP:
            assert rb is not None and rb.name == SWAP[ra.name], (a, b)
            swapped.append((ra, rb))
        else:
            assert a == b  # same line, same place: every other pin and editable install agrees
    assert [(a.name, b.name) for a, b in swapped] == list(SWAP.items())
    for _, jax in swapped:  # pinned exactly, with CUDA
        assert jax.extras == {"cuda13"} and str(jax.specifier).startswith("==")


def test_every_pin_is_exact():
    for name in ("requirements.txt", "requirements-gpu.txt"):
        for line in _lines(name):
            req = _requirement(line)
            if req is not None:
                assert str(req.specifier).startswith("=="), f"{name}: {line} is not pinned"


def test_dec_extras_name_the_same_frameworks_the_files_pin():
    project = tomllib.loads((ROOT / "plugins/dec/pyproject.toml").read_text())["project"]
    extras = {k: [Requirement(r) for r in v] for k, v in project["optional-dependencies"].items()}
    pins = {
        which: {r.name: r for r in map(_requirement, _lines(f)) if r is not None}
        for which, f in (("cpu", "requirements.txt"), ("gpu", "requirements-gpu.txt"))
    }
    for which in ("cpu", "gpu"):
        (framework,) = extras[which]
        pinned = pins[which][framework.name]
        assert framework.extras == pinned.extras
        # the file's exact pin satisfies the extra's range
        assert Version(str(pinned.specifier).removeprefix("==")) in framework.specifier
    # the plain install brings no framework: the extra (or the file) chooses it
    assert not any(Requirement(r).name in ("tensorflow-cpu", "jax") for r in project["dependencies"])
