"""Fixtures of the core's tests; those the plugins' tests share too are in
``helpers/harness_test_fixtures.py``. ``helpers/`` is on sys.path (pyproject's ``pythonpath``), so
its test plugins are importable here and in spawned workers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_methods() -> list[str]:
    """The methods of the tiny sweep: k-means, a test method that fails on seed 1, one that logs
    curves and an embedding, and a real deep method at a reduced budget where one is installed."""
    import importlib.util

    deep = ["dlfc"] if importlib.util.find_spec("harness_dlfc") else []
    return ["kmeans", "flaky", "curves", *deep]


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory, tiny_methods):
    """A real sweep into a temporary store, shared by the CLI and report tests: the
    ``tiny_methods`` on digits, seeds 0-2. Returns (tracking URI, argv, exit code)."""
    from harness.cli import main

    tmp = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{tmp / 'store' / 'mlflow.db'}"
    argv = [
        "run", "--plugin", "harness_test_plugins", "--methods", ",".join(tiny_methods),
        "--datasets", "digits", "--seeds", "0-2", "--tracking-uri", uri, "--experiment", "t",
        "--param", "kmeans.n_init=2",
    ]  # fmt: skip
    if "dlfc" in tiny_methods:  # a reduced budget: 5 pretraining epochs, 2 target updates
        argv += ["--param", "dlfc.ae_iterations=5", "--param", "dlfc.cluster_iterations=280"]
    code = main(argv)
    return uri, argv, code


@pytest.fixture(scope="session")
def ui_server(tiny_sweep):
    """`harness ui` on the tiny sweep's store, as a user starts it; yields (base URL, port)."""
    import json
    import shutil
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    uri = tiny_sweep[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    harness = shutil.which("harness", path=str(Path(sys.executable).parent)) or "harness"
    proc = subprocess.Popen(
        [harness, "ui", "--tracking-uri", uri, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                url = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=t"
                json.loads(urllib.request.urlopen(url, timeout=2).read())
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("harness ui did not answer within 120 s") from None
                time.sleep(1)
        yield base, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
