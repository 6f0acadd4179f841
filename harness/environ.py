"""Environment variables set for a block only: what a child process must inherit at its start."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_environ(env: Mapping[str, str]) -> Iterator[None]:
    """Set ``env`` in ``os.environ`` for the block, then put back what was there (a variable that was
    unset is unset again). Spawned workers and a local Ray instance copy the environment when they
    start, so this is how they get settings that must hold before their first import."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def import_paths() -> dict[str, str]:
    """PYTHONPATH for workers that start a fresh interpreter: this process's own import folders.

    Spawned local workers inherit the parent's ``sys.path`` (so ``--plugin`` modules beside the
    user's code import there); a local Ray instance's workers and SLURM jobs start from the
    installed packages only. Folders of the Python installation itself are left out. On a Ray
    cluster, plugins are installed on every node.
    """
    prefixes = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots: list[str] = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if not path.is_dir() or any(str(path).startswith(p + os.sep) for p in prefixes):
            continue
        if str(path) not in roots:
            roots.append(str(path))
    existing = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    roots += [p for p in existing if p not in roots]
    return {"PYTHONPATH": os.pathsep.join(roots)} if roots else {}
