"""The Ray executor on a local instance (2 CPUs): same runs and scores as local worker processes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.errors import ExitCode

SWEEP = [
    "run", "--plugin", "harness_test_plugins", "--methods", "kmeans,curves,flaky,stacked", "--datasets",
    "digits", "--seeds", "0-1", "--param", "kmeans.n_init=2", "--experiment", "t", "--jobs", "2", "--batch-seeds",
]  # fmt: skip


def _jobs(uri: str) -> dict[str, object]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    runs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'", max_results=100)
    return {r.data.tags["harness.run_key"]: r for r in runs}


def test_ray_sweep_gets_the_local_executors_runs_and_scores(tmp_path):
    pytest.importorskip("ray")
    import ray

    local, remote = (f"sqlite:///{tmp_path / name / 'mlflow.db'}" for name in ("local", "ray"))
    assert main([*SWEEP, "--tracking-uri", local]) == ExitCode.JOBS_FAILED  # flaky fails on seed 1
    assert main([*SWEEP, "--tracking-uri", remote, "--executor", "ray"]) == ExitCode.JOBS_FAILED
    assert not ray.is_initialized()  # the local instance is gone with the sweep

    want, got = _jobs(local), _jobs(remote)
    assert len(got) == 8 and set(got) == set(want)  # the same jobs, once each
    stacked = [r for r in got.values() if r.data.params["method"] == "stacked"]
    assert len({r.data.tags["task"] for r in stacked}) == 1  # both seeds in one Ray task
    client = MlflowClient(tracking_uri=remote)
    for key, run in got.items():
        assert run.info.status == want[key].info.status
        if run.info.status == "FAILED":
            assert run.data.tags["harness.error"] == want[key].data.tags["harness.error"]
            text = Path(client.download_artifacts(run.info.run_id, "traceback.txt")).read_text()
            assert "flaky fails on seed 1 as asked" in text
            continue
        for metric in ("acc", "nmi_geometric", "nmi_arithmetic", "ari", "n_clusters_found"):
            assert run.data.metrics[metric] == want[key].data.metrics[metric], metric
        assert run.data.params == want[key].data.params
        if run.data.params["method"] == "curves":  # streamed from the task while it ran
            loss = client.get_metric_history(run.info.run_id, "curve/loss")
            assert sorted((m.step, m.value) for m in loss) == [(0, 1.0), (1, 0.5), (2, 1 / 3)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once the socket closes: nothing listens there


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:{port}", "--ray-address: no Ray cluster answers at '127.0.0.1:{port}'"),
        ("head-node", "--ray-address: expected auto, HOST:PORT"),
    ],
)
def test_unreachable_ray_address_is_one_line_exit_2_and_no_store(tmp_path, capsys, address, message):
    port = _closed_port()
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    argv = ["run", "--executor", "ray", "--ray-address", address.format(port=port), "--tracking-uri", uri]
    assert main(argv) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: ") and message.format(port=port) in err and "\n" not in err
    assert "auto" in err and "HOST:PORT" in err  # what would be valid
    assert not (tmp_path / "store").exists()


def test_no_ray_cluster_for_auto_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray"))  # no cluster file from another session
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    assert main(["run", "--executor", "ray", "--ray-address", "auto", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: --ray-address: cannot use Ray at 'auto'") and "\n" not in err
    assert "HOST:PORT" in err
    assert not (tmp_path / "store").exists()


def test_ray_address_without_the_ray_executor_is_a_usage_error(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    assert main(["run", "--ray-address", "auto", "--tracking-uri", uri]) == ExitCode.USAGE_ERROR
    assert "only used with executor 'ray'" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_ctrl_c_cancels_ray_tasks_marks_runs_killed_and_stops_ray(tmp_path):
    pytest.importorskip("ray")
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    ray_tmp = tempfile.mkdtemp(prefix="hray", dir="/tmp")  # Ray's socket paths must stay short
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    argv = [
        sys.executable, "-m", "harness.cli", "run", "--executor", "ray", "--jobs", "2", "--plugin",
        "harness_test_plugins", "--methods", "slow", "--datasets", "digits", "--seeds", "0-3",
        "--tracking-uri", uri, "--experiment", "t",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parent / "helpers"),
        "HARNESS_TEST_SLOW_SECONDS": "600",
        "RAY_TMPDIR": ray_tmp,  # this instance's processes, and only them, name this folder
    }
    log = tmp_path / "run.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.time() + 240
        # Open the store only once harness has made it (its header line): a fresh SQLite store
        # opened by two processes at once races its schema migration.
        while "jobs →" not in log.read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        client = MlflowClient(tracking_uri=uri)
        while time.time() < deadline and proc.poll() is None:
            exp = client.get_experiment_by_name("t")
            if len(client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'")) == 2:
                break
            time.sleep(1)
        time.sleep(3)  # the two tasks are running on Ray now
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        leftovers = subprocess.run(["pgrep", "-f", ray_tmp], capture_output=True, text=True).stdout
        shutil.rmtree(ray_tmp, ignore_errors=True)
    err = log.read_text()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err
    runs = _jobs(uri).values()
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]  # queued jobs never started
    assert leftovers == "", "Ray processes outlived the sweep"
