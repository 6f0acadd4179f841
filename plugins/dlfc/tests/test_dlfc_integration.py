"""DLFC end to end inside one process, on scikit-learn's digits (bundled) with a reduced budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness import metrics  # noqa: E402
from harness.preprocess import prepare  # noqa: E402
from harness_dlfc import fit_predict  # noqa: E402
from harness_dlfc.weights import WeightsMismatchError  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """CI machines are small and shared: one torch thread unless the caller chose otherwise."""
    import os

    monkeypatch.setenv("HARNESS_DLFC_THREADS", os.environ.get("HARNESS_DLFC_THREADS", "1"))


class FakeContext:
    """The JobContext of a worker, recording curves in memory."""

    def __init__(self, cache_dir: Path, labels: np.ndarray, dry_run: bool = False) -> None:
        self.seed, self.device, self.dataset, self.input_size = 0, "auto", "digits", 8
        self.cache_dir, self.dry_run, self._labels = cache_dir, dry_run, labels
        self.curves: dict[str, list[tuple[int, float]]] = {}
        self.progressed: list[tuple[float, float]] = []

    def log_metric(self, key, value, step):
        self.curves.setdefault(key, []).append((step, value))

    def evaluate(self, labels, step, **extra):
        scores = metrics.score(self._labels, labels)
        for key, value in (scores | extra).items():
            self.log_metric(key, value, step)

    def progress(self, completed, total, description=""):
        self.progressed.append((completed, total))


@pytest.fixture(scope="module")
def digits(registry):
    data = registry.dataset("digits").load(Path("unused"))
    return prepare(data, 8, "bilinear", "image"), data.labels


def _params(registry, **overrides):
    return registry.method("dlfc").defaults() | overrides


def _run(x, labels, registry, cache, seed=0, dry_run=False, **overrides):
    np.random.seed(seed)  # as the core does before calling a method
    ctx = FakeContext(cache, labels, dry_run)
    result = fit_predict(x, n_clusters=10, seed=seed, params=_params(registry, **overrides), context=ctx)
    return result, ctx


def test_reduced_budget_clusters_digits_and_the_cache_reproduces_it(digits, registry, tmp_path):
    # 15 pretraining epochs and 150 clustering iterations, target update every 70: k-means on
    # pixels scores 0.79 here; a barely trained 10-d conv AE is already far above chance (0.1).
    x, labels = digits
    budget = dict(ae_iterations=15, cluster_iterations=150, interval_updation=70)
    result, ctx = _run(x, labels, registry, tmp_path, **budget)
    acc = metrics.score(labels, result.labels)["acc"]
    assert acc > 0.5
    assert result.labels.shape == (1797,) and result.embedding.shape == (1797, 10)
    assert result.embedding.dtype == np.float32
    loss = [v for _, v in ctx.curves["pretrain_loss"]]
    assert len(loss) == 15 and loss[-1] < 0.6 * loss[0]
    assert [s for s, _ in ctx.curves["acc"]] == [0, 70, 140]
    assert [s for s, _ in ctx.curves["loss"]] == [70, 140] and [s for s, _ in ctx.curves["delta_label"]] == [
        70,
        140,
    ]
    assert {"nmi_geometric", "ari"} <= set(ctx.curves)
    assert ctx.curves["acc"][-1][1] == pytest.approx(acc)  # labels = those of the last update
    tags = result.tags
    assert (
        tags["dlfc.ae_cache"] == "miss"
        and tags["device"] == "cpu"
        and tags["version.torch"] == torch.__version__
    )
    assert tags["dlfc.n_parameters"] == str(
        sum(9 * a * b + b for a, b in [(1, 32), (32, 64), (64, 64), (64, 32), (32, 1)])
        + 2 * 256 * 10
        + 10
        + 256
    )  # 8 px: code 2x2x64
    assert {"torch.cudnn_deterministic", "torch.deterministic_algorithms", "torch.num_threads"} <= set(tags)
    assert tags["dlfc.pretrain_collapsed"] == "False" and float(tags["dlfc.recon_spread"]) > 0.1
    assert len(list((tmp_path / "dlfc").glob("ae-*.h5"))) == 1

    again, ctx2 = _run(x, labels, registry, tmp_path, **budget)
    assert again.tags["dlfc.ae_cache"] == "hit"
    assert ctx2.curves["pretrain_loss"] == ctx.curves["pretrain_loss"]  # the cached run's curve
    np.testing.assert_array_equal(again.labels, result.labels)  # CPU runs are deterministic
    np.testing.assert_array_equal(again.embedding, result.embedding)

    from harness_dlfc.method import cache_key

    params = _params(registry, **budget)
    key = cache_key(x, ctx, 0, params)
    assert tags["dlfc.ae_cache_file"].endswith(f"ae-{key}.h5")
    assert cache_key(x, ctx, 1, params) != key  # the seed, the data and the AE parameters count
    assert cache_key(x[::-1], ctx, 0, params) != key
    assert cache_key(x, ctx, 0, params | {"learning_rate": 0.1}) != key
    assert cache_key(x, ctx, 0, params | {"cluster_iterations": 5, "tolerance_threshold": 0.5}) == key
    assert cache_key(x, ctx, 0, params | {"mode": "dae"}) == key  # the same network


def test_a_collapsed_pretraining_is_tagged_and_warned_about(digits, registry, tmp_path):
    # learning rate 20 saturates the sigmoid output within a few steps, as rate 1 does to some
    # MNIST seeds: the loss stops moving and the reconstructions no longer depend on the input
    x, labels = digits
    with pytest.warns(UserWarning, match=r"dlfc seed 0: pretraining collapsed \(learning_rate 20.0\)"):
        result, ctx = _run(
            x, labels, registry, tmp_path, ae_iterations=4, cluster_iterations=10, learning_rate=20.0
        )
    loss = [v for _, v in ctx.curves["pretrain_loss"]]
    assert loss[-1] == pytest.approx(loss[1], rel=1e-6)
    assert result.tags["dlfc.pretrain_collapsed"] == "True" and float(result.tags["dlfc.recon_spread"]) < 1e-4


def test_reconstruction_stats_of_a_constant_and_of_the_identity():
    from harness_dlfc.pretrain import reconstruction_stats

    x = torch.rand(300, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    mse, spread = reconstruction_stats(torch.nn.Identity(), x, chunk=128)
    assert mse == 0 and spread == pytest.approx(1.0)
    mean = x.mean(0, keepdim=True)

    class Mean(torch.nn.Module):
        def forward(self, batch):
            return mean.expand_as(batch)

    mse, spread = reconstruction_stats(Mean(), x, chunk=128)
    assert mse == pytest.approx(float(((x - mean) ** 2).mean()), rel=1e-5) and spread == pytest.approx(
        0, abs=1e-6
    )


def test_dry_run_is_one_batch_per_phase_and_caches_nothing(digits, registry, tmp_path):
    x, labels = digits
    result, ctx = _run(x, labels, registry, tmp_path, dry_run=True)
    assert len(ctx.curves["pretrain_loss"]) == 1 and [s for s, _ in ctx.curves["acc"]] == [0]
    assert result.labels.shape == (1797,) and not (tmp_path / "dlfc").exists()


@pytest.mark.parametrize(
    ("mode", "extra", "width"), [("ae", {"include_layer": 32}, 10), ("cae", {"attention": True}, 10)]
)
def test_other_architectures_run(digits, registry, tmp_path, mode, extra, width):
    x, labels = digits
    result, _ = _run(
        x, labels, registry, tmp_path, mode=mode, ae_iterations=2, cluster_iterations=10, **extra
    )
    assert result.embedding.shape == (1797, width) and len(np.unique(result.labels)) > 1


def test_a_weights_file_that_does_not_fit_fails_before_any_training(digits, registry, tmp_path):
    from harness_dlfc import weights
    from harness_dlfc.autoencoders import ConvAutoencoder

    x, labels = digits
    weights.save(ConvAutoencoder((8, 8, 1), 10, attention=True), tmp_path / "att.h5")
    with pytest.raises(
        WeightsMismatchError,
        match=r"att.h5' \(conv autoencoder, input 8x8x1, K=10, attention=True\) does not fit .*unexpected attention.dense.bias",
    ):
        _run(x, labels, registry, tmp_path, ae_weights=str(tmp_path / "att.h5"))
    result, _ = _run(
        x,
        labels,
        registry,
        tmp_path,
        ae_weights=str(tmp_path / "att.h5"),
        attention=True,
        cluster_iterations=1,
    )
    assert (
        result.tags["dlfc.ae_cache"] == "loaded" and result.tags["dlfc.ae_weights_format"] == "harness-dlfc"
    )
    assert len(result.tags["dlfc.ae_weights_sha256"]) == 64
