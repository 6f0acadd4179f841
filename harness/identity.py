"""What produced a run: digests of the code and data behind a method, a dataset and the core.

A version number says what a distribution claims to be; an edited checkout (``pip install -e``,
a plugin module on ``--plugin``) keeps its number while its code changes. So a run records, and
its run key includes, a digest of the source files themselves: after any edit the same command
runs again instead of reporting the old results as the new code's.

Digests are read from disk when a sweep starts, never cached across sweeps: a long-lived process
(a notebook, a test) that edits a plugin between two sweeps gets two identities, as the workers,
fresh processes that import the edited code, would.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

DIGEST_CHARS = 16
CORE_MODULES = ("harness.metrics", "harness.preprocess")
"""The core code a score depends on: how labels are scored and how images are resized and shaped."""
_SKIPPED_DIRS = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def files_digest(files: Iterable[Path], root: Path | None = None) -> str:
    """One digest of the files' names (relative to ``root``) and bytes, in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        name = str(path.relative_to(root)) if root is not None else path.name
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:DIGEST_CHARS]


def _unwrap(obj: Any) -> Any:
    """The function behind a bound method or a ``functools.partial``."""
    while True:
        if hasattr(obj, "__func__"):
            obj = obj.__func__
        elif hasattr(obj, "func") and callable(obj.func):
            obj = obj.func
        else:
            return obj


def _defining_module(obj: Any) -> str:
    """The module of ``obj``; for a method bound to an instance, the module of the instance's class:
    a dataset that subclasses :class:`harness.data.FileDataset` inherits ``load`` from the core, but
    its data and its reading code are its own package's."""
    owner = getattr(obj, "__self__", None)
    if owner is not None and not isinstance(owner, ModuleType):
        return (owner if isinstance(owner, type) else type(owner)).__module__
    return getattr(_unwrap(obj), "__module__", None) or type(obj).__module__


def source_files(obj: Any) -> tuple[Path, list[Path]]:
    """The files of the top-level package that holds ``obj`` (a function or a bound method).

    A plugin's ``fit_predict`` is often a thin wrapper that imports the real code lazily from a
    sibling module, so the whole package counts, data files such as checksum lists included. A
    plugin that is a single module (``--plugin my_module``) is that one file.
    """
    module_name = _defining_module(obj)
    top = module_name.split(".")[0]
    package = sys.modules.get(top) or importlib.import_module(top)
    paths = [Path(p) for p in getattr(package, "__path__", [])]
    if not paths:
        file = Path(package.__file__ or "")
        return file.parent, [file]
    files = [
        f
        for base in paths
        for f in base.rglob("*")
        if f.is_file()
        and f.suffix not in _SKIPPED_SUFFIXES
        and not _SKIPPED_DIRS.intersection(f.relative_to(base).parts)
    ]
    return paths[0].parent, files


def source_digest(obj: Any) -> str:
    root, files = source_files(obj)
    return files_digest(files, root)


@dataclass(frozen=True)
class Identity:
    """What produced a result: who provided it (distribution and version), a digest of its source
    and, for a dataset, of the canonical files' checksums; ``digest`` sums them up."""

    provider: str
    source: str
    files: str = "-"

    @property
    def digest(self) -> str:
        return _digest({"provider": self.provider, "source": self.source, "files": self.files})


def method_identity(spec: Any, provider: Any) -> Identity:
    return Identity(provider=str(provider), source=source_digest(spec.fit_predict))


def dataset_identity(spec: Any, provider: Any) -> Identity:
    checksums = sorted(getattr(spec, "checksums", ()) or ())
    return Identity(
        provider=str(provider),
        source=source_digest(spec.load),
        files=_digest(checksums) if checksums else "-",
    )


def metric_identity(spec: Any, provider: Any) -> str | None:
    """The digest of the code behind a metric plugin's ``score`` (its distribution, version and
    package source), or ``None`` for a metric of the core itself (:data:`CORE_MODULES`), which the
    core identity already covers.

    It is recorded on each run (``harness.metric_identities``) but kept out of the run key: a
    metric reads the labels, it cannot change them, so installing or editing a metric plugin
    retrains nothing; instead ``harness report`` recomputes a plugin metric from the stored arrays
    wherever a run's value came from other code than the plugin installed now.
    """
    if _defining_module(spec.score) in CORE_MODULES:
        return None
    return Identity(provider=str(provider), source=source_digest(spec.score)).digest


def core_identity() -> str:
    """The harness version and a digest of the code that scores labels and prepares images."""
    from harness import __version__

    files = [Path(importlib.import_module(name).__file__ or "") for name in CORE_MODULES]
    return _digest({"harness": __version__, "code": files_digest(files)})


def data_digest(x: np.ndarray, labels: np.ndarray) -> str:
    """The array and labels a method received, after resizing and scaling: shape, dtype and bytes."""
    digest = hashlib.sha256()
    for array in (x, labels):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()[:DIGEST_CHARS]


def git_state(path: Path) -> dict[str, str]:
    """The commit of the git checkout holding ``path`` and whether its tree was dirty; ``{}`` where
    it is no checkout or git is missing (never an error: an installed wheel has no git)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": "true" if dirty else "false"}


@dataclass(frozen=True)
class SweepIdentity:
    """The identities of a sweep's methods and datasets and of the core, computed once per sweep."""

    methods: dict[str, Identity]
    datasets: dict[str, Identity]
    core: str
    git: dict[str, str]


def identify(registry: Any, methods: Iterable[str], datasets: Iterable[str]) -> SweepIdentity:
    """Digest the code and declared files behind ``methods`` and ``datasets`` of ``registry``."""
    import harness

    return SweepIdentity(
        methods={m: method_identity(*registry.methods[m]) for m in methods},
        datasets={d: dataset_identity(*registry.datasets[d]) for d in datasets},
        core=core_identity(),
        git=git_state(Path(harness.__file__).parent),
    )
