"""Many workers at once: a fresh SQLite store stays sound, and workers reuse what they loaded."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from harness import worker_cache
from harness.cli import main
from harness.errors import ExitCode


def test_fresh_sqlite_store_with_8_workers_finishes_every_job_once(tmp_path, capfd, caplog):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    argv = [
        "run", "--plugin", "harness_test_plugins", "--methods", "flaky", "--param", "flaky.fail_seeds=",
        "--datasets", "digits", "--seeds", "0-9", "--jobs", "8", "--tracking-uri", uri, "--experiment", "t",
    ]  # fmt: skip
    assert main(argv) == ExitCode.OK
    out = capfd.readouterr()
    text = (out.out + out.err + caplog.text).lower()
    for symptom in ("database is locked", "duplicate column", "already exists", "migration", "traceback"):
        assert symptom not in text, symptom

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    runs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'", max_results=100)
    assert sorted(int(r.data.params["seed"]) for r in runs) == list(range(10))
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["harness.run_key"] for r in runs}) == 10


def test_worker_cache_loads_a_dataset_once_per_process(tmp_path):
    worker_cache.clear()
    registry = worker_cache.registry((), ())
    assert worker_cache.registry((), ()) is registry
    first = worker_cache.dataset(registry, "digits", tmp_path)
    assert worker_cache.dataset(registry, "digits", tmp_path) is first
    with pytest.raises(ValueError, match="read-only"):
        first.images[0, 0, 0, 0] = 1.0  # a method must not change what the next job gets
    assert worker_cache.dataset(registry, "digits", tmp_path / "other") is not first  # keyed by folder
    worker_cache.clear()


def test_worker_hands_methods_a_private_copy_of_cached_data(tmp_path):
    from harness.messages import Result
    from harness.sweep import Job
    from harness.worker import WorkerSettings, _run

    class Sink:
        def send(self, message) -> None:
            pass

        def close(self) -> None:
            pass

    worker_cache.clear()
    params = {"n_init": 1, "max_iter": 10, "tol": 1e-4, "algorithm": "lloyd"}
    job = Job("kmeans", "digits", "all", 8, 8, 0, params, "none")
    settings = WorkerSettings(data_dir=str(tmp_path))
    [first] = _run([job], settings, Sink())
    [again] = _run([job], settings, Sink())  # the dataset from the cache: same scores
    assert isinstance(first, Result) and isinstance(again, Result)
    assert first.result.metrics["acc"] == again.result.metrics["acc"]
    np.testing.assert_array_equal(first.result.labels, again.result.labels)
    assert first.result.data == again.result.data  # the same array, by digest
    worker_cache.clear()
