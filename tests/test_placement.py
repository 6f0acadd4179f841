"""Seed-batched tasks and GPU placement of workers, end to end with the test plugin ``stacked``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.errors import ExitCode, UsageError
from harness.gpus import GpuSlots


def _runs(uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'", max_results=100)


def _run(uri: str, experiment: str, *extra: str) -> int:
    argv = ["run", "--plugin", "harness_test_plugins", "--methods", "stacked,kmeans", "--datasets", "digits"]
    argv += ["--param", "kmeans.n_init=1", "--tracking-uri", uri, "--experiment", experiment, *extra]
    return main(argv)


def test_batched_seeds_are_ordinary_runs_with_the_same_results(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert _run(uri, "batched", "--seeds", "0-4", "--batch-seeds", "2", "--device", "cpu") == ExitCode.OK
    assert _run(uri, "single", "--seeds", "0-4", "--device", "cpu") == ExitCode.OK
    batched, single = _runs(uri, "batched"), _runs(uri, "single")
    assert len(batched) == len(single) == 10
    assert all(r.info.status == "FINISHED" for r in batched)

    stacked = [r for r in batched if r.data.params["method"] == "stacked"]
    by_task: dict[str, list[int]] = {}
    for run in stacked:
        by_task.setdefault(run.data.tags["task"], []).append(int(run.data.params["seed"]))
        assert run.data.tags["gpus"] == ""  # --device cpu hides GPUs from workers
    # seeds 0-4 in tasks of at most 2: {0, 1}, {2, 3}, {4}; kmeans has no batched form
    assert sorted(sorted(s) for s in by_task.values()) == [[0, 1], [2, 3], [4]]
    assert (
        sorted(
            r.data.tags["harness.batched_seeds"] for r in stacked if "harness.batched_seeds" in r.data.tags
        )
        == ["2"] * 4
    )
    assert not any(
        "harness.batched_seeds" in r.data.tags for r in batched if r.data.params["method"] == "kmeans"
    )
    # a batched run's runtime is its share of the batch, so that runtimes add up across runs
    for run in stacked:
        m = run.data.metrics
        if "harness.batched_seeds" in run.data.tags:
            assert m["runtime_s"] == pytest.approx(m["batch_runtime_s"] / 2) and m["runtime_s"] > 0
        else:  # seed 4 ran alone
            assert "batch_runtime_s" not in m and m["runtime_s"] > 0

    # each seed's curve went to its own run, and a run key does not depend on batching
    client = MlflowClient(tracking_uri=uri)
    for run in stacked:
        curve = client.get_metric_history(run.info.run_id, "curve/seed_curve")
        assert [m.value for m in curve] == [float(run.data.params["seed"])]
    key = lambda r: r.data.tags["harness.run_key"]  # noqa: E731
    assert {key(r): r.data.metrics["acc"] for r in batched} == {key(r): r.data.metrics["acc"] for r in single}


def test_resume_batches_only_the_seeds_not_finished(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert _run(uri, "t", "--seeds", "0-1", "--batch-seeds", "--device", "cpu") == ExitCode.OK
    assert _run(uri, "t", "--seeds", "0-3", "--batch-seeds", "--device", "cpu") == ExitCode.OK
    stacked = [r for r in _runs(uri, "t") if r.data.params["method"] == "stacked"]
    assert sorted(int(r.data.params["seed"]) for r in stacked) == [0, 1, 2, 3]
    tasks = {r.data.params["seed"]: r.data.tags["task"] for r in stacked}
    assert tasks["0"] == tasks["1"] and tasks["2"] == tasks["3"] and tasks["0"] != tasks["2"]


def test_workers_get_their_own_gpus(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # two GPUs, as far as placement can tell
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = _run(uri, "t", "--methods", "stacked", "--seeds", "0-3", "--jobs", "4", "--gpus-per-job", "1")
    assert code == ExitCode.OK
    gpus = sorted(r.data.tags["gpus"] for r in _runs(uri, "t"))
    assert set(gpus) <= {"0", "1"} and len(gpus) == 4


def test_gpu_slots_share_and_exclude():
    half = GpuSlots(["0", "1"], 0.5)
    assert half.capacity == 4
    taken = [half.acquire() for _ in range(4)]
    assert sorted(taken) == ["0", "0", "1", "1"] and half.acquire() is False
    half.release("1")
    assert half.acquire() == "1"

    two = GpuSlots(["0", "1", "2"], 2)
    assert two.capacity == 1 and two.acquire() == "0,1" and two.acquire() is False
    two.release("0,1")
    assert two.acquire() == "0,1"

    free = GpuSlots(["0", "1"])
    assert [free.acquire() for _ in range(3)] == ["0", "1", "0"] and free.capacity is None
    assert GpuSlots([]).acquire() is None


@pytest.mark.parametrize(
    ("gpus", "per_job", "message"),
    [([], 1.0, "no GPU is visible"), (["0"], 2.0, "only 1 GPU(s) visible"), (["0"], 0.0, "a number > 0")],
)
def test_gpu_slots_refuse_what_cannot_be_placed(gpus, per_job, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        GpuSlots(gpus, per_job)


def test_gpus_per_job_without_a_gpu_is_a_usage_error(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    assert _run(uri, "t", "--gpus-per-job", "0.5") == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert "--gpus-per-job 0.5: no GPU is visible" in err and "\n" not in err
    assert not (tmp_path / "store").exists()


def test_offline_sweep_needs_no_mlflow_and_imports_into_the_store(tmp_path: Path):
    offline = tmp_path / "offline"
    argv = [
        "run", "--plugin", "harness_test_plugins", "--methods", "stacked,flaky", "--datasets", "digits",
        "--seeds", "0-1", "--device", "cpu", "--offline", str(offline), "--batch-seeds",
    ]  # fmt: skip
    script = (
        "import sys; from harness.cli import main; code = main(sys.argv[1:]); "
        "sys.exit(10 + code if 'mlflow' in sys.modules else code)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent / "helpers")}
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env)
    assert done.returncode == ExitCode.JOBS_FAILED, done.stderr  # flaky fails on seed 1; no mlflow import
    assert "harness import" in done.stderr
    records = {p.name for p in (offline / "runs").iterdir()}
    assert len(records) == 4 and not (tmp_path / "mlflow.db").exists()

    # a rerun of the offline sweep resumes: only the failed job runs again
    again = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env)
    assert "3 of 4 jobs already finished" in again.stderr

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["import", str(offline), "--tracking-uri", uri, "--experiment", "t"]) == ExitCode.OK
    runs = _runs(uri, "t")
    assert sorted((r.data.params["method"], r.data.params["seed"], r.info.status) for r in runs) == [
        ("flaky", "0", "FINISHED"), ("flaky", "1", "FAILED"), ("stacked", "0", "FINISHED"), ("stacked", "1", "FINISHED"),
    ]  # fmt: skip
    client = MlflowClient(tracking_uri=uri)
    stacked = [r for r in runs if r.data.params["method"] == "stacked"]
    for run in stacked:
        assert run.data.tags["harness.batched_seeds"] == "2" and 0.5 < run.data.metrics["acc"] <= 1
        assert [m.value for m in client.get_metric_history(run.info.run_id, "curve/seed_curve")] == [
            float(run.data.params["seed"])
        ]
        assert np.load(client.download_artifacts(run.info.run_id, "labels.npy")).shape == (1797,)
    failed = next(r for r in runs if r.info.status == "FAILED")
    assert (
        "flaky fails on seed 1"
        in Path(client.download_artifacts(failed.info.run_id, "traceback.txt")).read_text()
    )

    # importing again duplicates nothing
    assert main(["import", str(offline), "--tracking-uri", uri, "--experiment", "t"]) == ExitCode.OK
    assert len(_runs(uri, "t")) == 4
