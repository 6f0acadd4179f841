"""The fixtures every test folder shares (``tests/`` and each plugin's ``plugins/*/tests``).

Loaded as a pytest plugin (``-p harness_test_fixtures`` in pyproject.toml), so that the plugins'
tests get them without living under ``tests/``. Tests never download: real datasets come from
../shared/data (or $HARNESS_TEST_DATA) and tests that need them skip cleanly where they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """Where the real datasets are looked for (they may be absent)."""
    env = os.environ.get("HARNESS_TEST_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path} (set HARNESS_TEST_DATA)")
    return path


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """No test writes to the user's cache or reads their data dir by accident."""
    base = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    monkeypatch.delenv("HARNESS_CACHE_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def registry():
    from harness.plugins import load_registry

    return load_registry()
