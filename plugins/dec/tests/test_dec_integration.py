"""DEC on real data with a CI-sized budget: scikit-learn's digits (bundled, offline).

Calls ``fit_predict`` in the test process with a recording context (no MLflow), so the curves
it reports can be checked directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from harness.metrics import score
from harness_dec import PARAMS, fit_predict


@dataclass
class RecordingContext:
    """A JobContext that keeps what the method reports, scoring against the true labels."""

    truth: np.ndarray
    cache_dir: Path
    seed: int = 0
    device: str = "cpu"
    dataset: str = "digits"
    input_size: int = 8
    dry_run: bool = False
    curves: dict[str, dict[int, float]] = field(default_factory=dict)

    def log_metric(self, key: str, value: float, step: int) -> None:
        self.curves.setdefault(key, {})[step] = float(value)

    def evaluate(self, labels, step, **extra):
        scores = score(self.truth, labels)
        for key, value in (scores | extra).items():
            self.log_metric(key, value, step)

    def progress(self, completed, total, description=""):
        pass


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target


@pytest.fixture(scope="module")
def digits_run(digits, tmp_path_factory):
    x, y = digits
    context = RecordingContext(truth=y, cache_dir=tmp_path_factory.mktemp("cache"))
    params = {p.name: p.default for p in PARAMS} | {"pretrain_epochs": 40, "maxiter": 900, "threads": 1}
    result = fit_predict(x, n_clusters=10, seed=0, params=params, context=context)
    return result, context


def test_tol_is_checked_only_at_updates_after_the_first(digits_run, digits):
    # tol = 1 stops at the first update where the rule applies: iteration 10, never 0.
    # The autoencoder comes from the run above's cache file (DEC-keras' --ae_weights); the
    # batches go through the rows in a seeded permutation (order=shuffled).
    x, y = digits
    (weights,) = (digits_run[1].cache_dir / "dec").glob("*.weights.h5")
    context = RecordingContext(truth=y, cache_dir=digits_run[1].cache_dir / "unused")
    params = {p.name: p.default for p in PARAMS} | {
        "ae_weights": str(weights),
        "tol": 1.0,
        "update_interval": 10,
        "order": "shuffled",
    }
    result = fit_predict(x, n_clusters=10, seed=0, params=params, context=context)
    assert result.tags["dec.stopped"] == "tol" and result.tags["dec.iterations"] == "10"
    assert result.tags["dec.ae_cache"] == "loaded" and sorted(context.curves["acc"]) == [0, 10]
    # the same autoencoder and k-means seed as the cached run: the same starting point, and the
    # permuted rows are put back in the data's order before they are scored and returned
    assert context.curves["acc"][0] == digits_run[1].curves["acc"][0]
    assert score(y, result.labels)["acc"] == pytest.approx(context.curves["acc"][10])


def test_clustering_phase_improves_on_kmeans_of_the_same_embedding(digits_run, digits):
    result, context = digits_run
    acc, nmi = context.curves["acc"], context.curves["nmi_geometric"]
    # step 0 is k-means (n_init 20) on the pretrained embedding: DEC-keras' "AE+k-means" row
    first, last = min(acc), max(acc)
    assert first == 0 and last > 0
    # digits at this budget: NMI gains about 0.05, ACC 0.01-0.02 (seeds 0 and 1)
    assert acc[last] > acc[first], acc
    assert nmi[last] > nmi[first] + 0.02, nmi
    final = score(digits[1], result.labels)
    assert final["acc"] > 0.6


def test_returned_labels_are_those_of_the_last_target_update(digits_run, digits):
    result, context = digits_run
    last = max(context.curves["acc"])
    assert last % 30 == 0  # the usps preset's update interval, which digits gets
    assert score(digits[1], result.labels)["acc"] == pytest.approx(context.curves["acc"][last])
    assert int(result.tags["dec.iterations"]) >= last
    assert result.tags["dec.labels"].startswith("last target update")


def test_curves_tags_and_embedding(digits_run, digits):
    result, context = digits_run
    loss = context.curves["pretrain_loss"]
    assert sorted(loss) == list(range(1, 41))
    assert loss[40] < loss[1] / 2  # the autoencoder learned something
    assert set(context.curves) >= {"acc", "nmi_geometric", "ari", "loss", "delta_label"}
    assert context.curves["delta_label"][0] == 0.0  # the soft assignment starts at k-means' labels
    assert result.embedding.shape == (len(digits[0]), 10)
    tags = result.tags
    assert tags["dec.ae_cache"] == "miss" and tags["dec.resolved.preset"] == "usps"
    assert tags["dec.resolved.pretrain_epochs"] == "40" and tags["device"] == "cpu"
    assert tags["determinism.seed"] == "0" and tags["version.keras"].startswith("3.")
    assert tags["dec.stopped"] in {"tol", "maxiter"}


def test_dry_run_stops_after_one_batch_per_phase(digits, tmp_path):
    x, y = digits
    context = RecordingContext(truth=y, cache_dir=tmp_path, dry_run=True)
    params = {p.name: p.default for p in PARAMS}
    result = fit_predict(x, n_clusters=10, seed=1, params=params, context=context)
    assert list(context.curves["pretrain_loss"]) == [1] and list(context.curves["acc"]) == [0]
    assert result.labels.shape == y.shape and result.tags["dec.ae_cache"].startswith("skipped")
    assert not any(tmp_path.iterdir())  # a one-batch autoencoder is never cached


def test_missing_ae_weights_file_is_a_clear_error(digits, tmp_path):
    x, y = digits
    params = {p.name: p.default for p in PARAMS} | {"ae_weights": str(tmp_path / "nope.weights.h5")}
    with pytest.raises(FileNotFoundError, match="ae_weights file .*nope.weights.h5.* does not exist"):
        fit_predict(
            x, n_clusters=10, seed=0, params=params, context=RecordingContext(truth=y, cache_dir=tmp_path)
        )
