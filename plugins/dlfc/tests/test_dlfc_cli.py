"""DLFC through the command line: a real sweep on digits into MLflow, read back from MLflow."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

pytest.importorskip("torch")

from harness.cli import main  # noqa: E402
from harness.errors import ExitCode  # noqa: E402


def _runs(uri: str):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    runs = client.search_runs(
        [exp.experiment_id], "tags.`harness.kind` = 'job'", order_by=["attributes.start_time ASC"]
    )
    return client, runs


@pytest.fixture(scope="module")
def dlfc_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dlfc-cli")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    argv = [
        "run",
        "--methods",
        "dlfc",
        "--datasets",
        "digits",
        "--seeds",
        "0",
        "--tracking-uri",
        uri,
        "--experiment",
        "t",
        "--cache-dir",
        str(tmp / "cache"),
        "--device",
        "cpu",
        "--param",
        "dlfc.ae_iterations=2",
        "--param",
        "dlfc.cluster_iterations=100",
        "--param",
        "dlfc.interval_updation=50",
        "--param",
        "dlfc.attention=False",
    ]
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_DLFC_THREADS", "1")  # inherited by the worker process
    try:
        first = main(argv)
        rerun = main([*argv, "--rerun"])
    finally:
        mp.undo()
    return uri, tmp, first, rerun


def test_curves_embedding_and_tags_reach_mlflow(dlfc_sweep):
    uri, _, first, _ = dlfc_sweep
    assert first == ExitCode.OK
    client, runs = _runs(uri)
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.params["dlfc.attention"] == "False"
    assert run.data.params["dlfc.mode"] == "cae" and run.data.params["dlfc.ae_weights"] == "none"
    pretrain = client.get_metric_history(run.info.run_id, "curve/pretrain_loss")
    assert sorted(m.step for m in pretrain) == [0, 1]
    acc = sorted(client.get_metric_history(run.info.run_id, "curve/acc"), key=lambda m: m.step)
    assert [m.step for m in acc] == [0, 50]
    assert acc[-1].value == pytest.approx(run.data.metrics["acc"])  # labels of the last update
    assert {m.step for m in client.get_metric_history(run.info.run_id, "curve/ari")} == {0, 50}
    assert [m.step for m in client.get_metric_history(run.info.run_id, "curve/loss")] == [50]
    embedding = np.load(client.download_artifacts(run.info.run_id, "embedding.npy"))
    assert embedding.shape == (1797, 10) and embedding.dtype == np.float32
    tags = run.data.tags
    assert tags["dlfc.ae_cache"] == "miss" and tags["device"] == "cpu" and tags["torch.num_threads"] == "1"
    assert tags["harness.method_plugin"].startswith("harness-dlfc-") and "version.torch" in tags


def test_rerun_hits_the_autoencoder_cache_and_reproduces_the_labels(dlfc_sweep):
    uri, tmp, _, rerun = dlfc_sweep
    assert rerun == ExitCode.OK
    client, runs = _runs(uri)
    assert [r.data.tags["dlfc.ae_cache"] for r in runs] == ["miss", "hit"]
    assert runs[0].data.tags["harness.run_key"] == runs[1].data.tags["harness.run_key"]
    assert len(list((tmp / "cache").glob("code-*/dlfc/ae-*.h5"))) == 1
    first, second = (np.load(client.download_artifacts(r.info.run_id, "labels.npy")) for r in runs)
    np.testing.assert_array_equal(first, second)
    # the cached run's pretraining curve is logged again
    assert len(client.get_metric_history(runs[1].info.run_id, "curve/pretrain_loss")) == 2


def test_weights_that_do_not_fit_are_a_failed_run_naming_file_and_layer(tmp_path, monkeypatch):
    from harness_dlfc import weights
    from harness_dlfc.autoencoders import ConvAutoencoder

    monkeypatch.setenv("HARNESS_DLFC_THREADS", "1")
    path = tmp_path / "w28.h5"
    weights.save(ConvAutoencoder((28, 28, 1), 10), path)  # digits are 8x8
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(
        [
            "run",
            "--methods",
            "dlfc",
            "--datasets",
            "digits",
            "--seeds",
            "0",
            "--tracking-uri",
            uri,
            "--experiment",
            "t",
            "--param",
            f"dlfc.ae_weights={path}",
        ]
    )
    assert code == ExitCode.JOBS_FAILED
    _, runs = _runs(uri)
    error = runs[0].data.tags["harness.error"]
    assert runs[0].info.status == "FAILED"
    assert error.startswith("WeightsMismatchError: weights file ") and str(path) in error
    assert "latent.weight has shape (10, 3136), the model (conv autoencoder, input 8x8x1" in error
