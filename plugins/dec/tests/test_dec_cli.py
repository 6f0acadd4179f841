"""DEC end to end through the CLI: a worker process per job, curves and tags read back from MLflow,
and the pretrained autoencoder reused by a rerun."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.errors import ExitCode


def _argv(tmp: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--methods",
        "dec",
        "--datasets",
        "digits",
        "--seeds",
        "0",
        "--param",
        "dec.pretrain_epochs=5",
        "--param",
        "dec.update_interval=10",
        "--param",
        "dec.maxiter=45",
        "--param",
        "dec.threads=1",
        "--cache-dir",
        str(tmp / "cache"),
        "--tracking-uri",
        f"sqlite:///{tmp / 'm.db'}",
        "--experiment",
        "t",
        *extra,
    ]


def _runs(tmp: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'm.db'}")
    exp = client.get_experiment_by_name("t")
    runs = client.search_runs(
        [exp.experiment_id], "tags.`harness.kind` = 'job'", order_by=["attributes.start_time ASC"]
    )
    return client, runs


def _curve(client, run, key):
    return {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same job twice (--rerun): the first trains the autoencoder, the second reuses it."""
    tmp = tmp_path_factory.mktemp("dec-cli")
    assert main(_argv(tmp)) == ExitCode.OK
    assert main(_argv(tmp, "--rerun")) == ExitCode.OK
    return tmp


def test_curves_params_and_tags_are_tracked(two_runs):
    client, runs = _runs(two_runs)
    assert len(runs) == 2
    first = runs[0]
    assert first.info.status == "FINISHED" and first.data.params["dec.pretrain_epochs"] == "5"
    assert first.data.params["dec.preset"] == "auto" and first.data.tags["dec.resolved.preset"] == "usps"
    assert first.data.tags["dec.resolved.update_interval"] == "10"
    assert sorted(_curve(client, first, "curve/pretrain_loss")) == [1, 2, 3, 4, 5]
    acc = _curve(client, first, "curve/acc")
    assert sorted(acc) == [0, 10, 20, 30, 40]  # every target update, maxiter 45
    assert {"curve/nmi_geometric", "curve/ari", "curve/loss", "curve/delta_label"} <= set(first.data.metrics)
    assert first.data.metrics["acc"] == pytest.approx(acc[40])  # the labels of the last update
    assert first.data.tags["dec.stopped"] == "maxiter"
    assert first.data.tags["version.tensorflow"] and first.data.tags["device"] == "cpu"
    embedding = np.load(client.download_artifacts(first.info.run_id, "embedding.npy"))
    assert embedding.shape == (1797, 10)


def test_rerun_hits_the_autoencoder_cache_and_reproduces_the_run(two_runs):
    client, (first, second) = _runs(two_runs)
    assert first.data.tags["dec.ae_cache"] == "miss" and second.data.tags["dec.ae_cache"] == "hit"
    assert first.data.tags["dec.ae_key"] == second.data.tags["dec.ae_key"]
    assert list((two_runs / "cache").glob("code-*/dec/*.weights.h5"))
    # the reused autoencoder's curve is shown on the run that reused it
    assert _curve(client, second, "curve/pretrain_loss") == _curve(client, first, "curve/pretrain_loss")
    # same weights, same k-means seed: the same starting point
    assert _curve(client, second, "curve/acc")[0] == _curve(client, first, "curve/acc")[0]
    assert float(second.data.tags["dec.pretrain_s"]) < float(first.data.tags["dec.pretrain_s"])
