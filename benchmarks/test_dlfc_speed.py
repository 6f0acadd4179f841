"""DLFC speed (issue 8): 1 seed against S seeds trained as one stacked model.

Per pretraining epoch, per 140 clustering iterations (one target update over all the data and
140 mini-batch steps) and for the full protocol (pretraining from scratch, k-means, clustering),
for 1 seed and for S batched seeds, at MNIST scale: 70,000 × 28 × 28 × 1 synthetic images, or the
real MNIST when ``HARNESS_TEST_DATA`` holds it. On the GPU when torch sees one. Each test records
the device, its seconds per unit and, for S seeds, the ratio to 1 seed in ``extra_info``.

Marked ``slow`` and outside ``tests/``, so no default run collects it::

    pytest benchmarks/test_dlfc_speed.py -m slow --benchmark-enable --benchmark-json=dlfc-speed.json

Sizes come from the environment, so a CPU run can be reduced:

    DLFC_BENCH_N            images (70000)
    DLFC_BENCH_SEEDS        S, the batched seed count (10)
    DLFC_BENCH_EPOCHS       pretraining epochs timed per round (2)
    DLFC_BENCH_INTERVALS    140-iteration intervals timed per round (2)
    DLFC_BENCH_FULL_EPOCHS  pretraining epochs of the full protocol (300)
    DLFC_BENCH_FULL_ITERS   clustering iterations of the full protocol (20000; tolerance 0, so all run)
    DLFC_BENCH_FULL         0 skips the full protocol (1)
    HARNESS_DLFC_THREADS    CPU threads for torch
    HARNESS_DLFC_GRAPHS     0 turns CUDA graphs off (to measure what they bring)
    HARNESS_DLFC_CONV       matmul: convolutions as unfold + matmul (default native)
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness_dlfc.autoencoders import ConvAutoencoder  # noqa: E402
from harness_dlfc.batched import StackedModels, cluster_stacked, pretrain_stacked  # noqa: E402
from harness_dlfc.clustering import ClusteringLayer, cluster  # noqa: E402
from harness_dlfc.padding import convolution_form  # noqa: E402
from harness_dlfc.pretrain import pretrain  # noqa: E402

pytestmark = pytest.mark.slow


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


N = _env("DLFC_BENCH_N", 70_000)
S = _env("DLFC_BENCH_SEEDS", 10)
EPOCHS = _env("DLFC_BENCH_EPOCHS", 2)
INTERVALS = _env("DLFC_BENCH_INTERVALS", 2)
FULL_EPOCHS = _env("DLFC_BENCH_FULL_EPOCHS", 300)
FULL_ITERS = _env("DLFC_BENCH_FULL_ITERS", 20_000)
SEED_COUNTS = [1, S]
_seconds: dict[tuple[str, int], float] = {}


@pytest.fixture(scope="module", autouse=True)
def _threads():
    if threads := os.environ.get("HARNESS_DLFC_THREADS"):
        torch.set_num_threads(int(threads))


@pytest.fixture(scope="module")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray | None, str]:
    """(N, 28, 28, 1) float32 in [0, 1], labels (or None), and what they are."""
    root = os.environ.get("HARNESS_TEST_DATA")
    if root and (Path(root) / "mnist").is_dir():
        from harness.plugins import load_registry

        data = load_registry().dataset("mnist").load(Path(root))
        return data.images[:N].astype(np.float32), data.labels[:N], "mnist"
    rng = np.random.default_rng(0)
    return rng.random((N, 28, 28, 1), dtype=np.float32), None, "synthetic"


@pytest.fixture(scope="module")
def data(images, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images[0].transpose(0, 3, 1, 2))).to(device)


def _models(seeds: int, device: torch.device) -> list[ConvAutoencoder]:
    out = []
    for s in range(seeds):
        torch.manual_seed(s)
        out.append(ConvAutoencoder((28, 28, 1), 10, attention=True).to(device))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _record(
    benchmark, phase: str, seeds: int, seconds: float, unit: str, device: torch.device, source: str
) -> None:
    _seconds[(phase, seeds)] = seconds
    info = {"device": str(device), "seeds": seeds, "n": N, "data": source, f"seconds_per_{unit}": seconds}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda_graphs"] = os.environ.get("HARNESS_DLFC_GRAPHS", "1") != "0"
    else:
        info["torch_threads"] = torch.get_num_threads()
    info["conv_form"] = convolution_form()
    if seeds > 1 and (phase, 1) in _seconds:
        info["ratio_to_1_seed"] = seconds / _seconds[(phase, 1)]
    benchmark.extra_info.update(info)
    print(f"\n{phase} {seeds} seed(s) on {device}: {seconds:.3f} s per {unit}" + (
        f", {info['ratio_to_1_seed']:.2f}x 1 seed" if "ratio_to_1_seed" in info else ""))  # fmt: skip


def _timed(benchmark, fn, device: torch.device) -> float:
    """Run ``fn`` under pytest-benchmark once per round; return the best round's wall time."""
    times: list[float] = []

    def run():
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)

    benchmark.pedantic(run, rounds=_env("DLFC_BENCH_ROUNDS", 1), iterations=1, warmup_rounds=0)
    return min(times)


@pytest.mark.parametrize("seeds", SEED_COUNTS, ids=lambda s: f"{s}seed")
def test_pretraining_epoch(benchmark, seeds, data, device, images):
    models = _models(seeds, device)

    def fn():
        kwargs = dict(epochs=EPOCHS, batch_size=256, learning_rate=1.0)
        if seeds == 1:
            pretrain(models[0], data, generator=torch.Generator().manual_seed(0), **kwargs)
        else:
            pretrain_stacked(
                StackedModels(models), data, generators=[torch.Generator().manual_seed(s) for s in range(seeds)],
                **kwargs,
            )  # fmt: skip

    _record(
        benchmark, "pretraining", seeds, _timed(benchmark, fn, device) / EPOCHS, "epoch", device, images[2]
    )


@pytest.mark.parametrize("seeds", SEED_COUNTS, ids=lambda s: f"{s}seed")
def test_140_clustering_iterations(benchmark, seeds, data, device, images):
    models = _models(seeds, device)
    rng = np.random.default_rng(0)
    centres = torch.from_numpy(rng.normal(size=(seeds, 10, 10)).astype(np.float32)).to(device)
    init = [rng.integers(0, 10, len(data)) for _ in range(seeds)]
    kwargs = dict(batch_size=256, max_iterations=140 * INTERVALS, interval=140, tolerance=0.0)

    def fn():
        if seeds == 1:
            layer = ClusteringLayer(10, 10).to(device)
            with torch.no_grad():
                layer.centres.copy_(centres[0])
            cluster(models[0], layer, data, init[0], **kwargs)
        else:
            cluster_stacked(StackedModels(models), centres.clone(), data, init, **kwargs)

    seconds = _timed(benchmark, fn, device) / INTERVALS
    _record(benchmark, "clustering", seeds, seconds, "140_iterations", device, images[2])


class _Context:
    """A JobContext that scores against the true labels when there are any, and keeps nothing."""

    def __init__(self, seed: int, device: torch.device, labels: np.ndarray | None, cache: Path) -> None:
        self.seed, self.device, self.cache_dir, self.dry_run = seed, str(device), cache, False
        self.dataset, self.input_size, self.labels = "mnist", 28, labels
        self.acc: float | None = None

    def log_metric(self, key, value, step):
        pass

    def evaluate(self, labels, step, **extra):
        if self.labels is None:
            return
        from harness import metrics

        self.acc = metrics.score(self.labels, labels)["acc"]

    def progress(self, completed, total, description=""):
        pass


@pytest.mark.skipif(os.environ.get("DLFC_BENCH_FULL", "1") == "0", reason="DLFC_BENCH_FULL=0")
@pytest.mark.parametrize("seeds", SEED_COUNTS, ids=lambda s: f"{s}seed")
def test_full_protocol(benchmark, seeds, images, device):
    from harness.plugins import load_registry
    from harness_dlfc.method import fit_predict, fit_predict_seeds

    x, labels, source = images
    params = load_registry().method("dlfc").defaults() | {
        "attention": True, "learning_rate": 0.1, "ae_iterations": FULL_EPOCHS,
        "cluster_iterations": FULL_ITERS, "tolerance_threshold": 0.0,
    }  # fmt: skip
    results = []

    def fn():
        with tempfile.TemporaryDirectory() as cache:  # from scratch: no cached autoencoder
            ctxs = [_Context(s, device, labels, Path(cache)) for s in range(seeds)]
            if seeds == 1:
                results[:] = [fit_predict(x, n_clusters=10, seed=0, params=params, context=ctxs[0])]
            else:
                results[:] = fit_predict_seeds(
                    x, n_clusters=10, seeds=list(range(seeds)), params=params, contexts=ctxs
                )

    _record(benchmark, "full", seeds, _timed(benchmark, fn, device), "protocol", device, source)
    benchmark.extra_info |= {"pretrain_epochs": FULL_EPOCHS, "cluster_iterations": FULL_ITERS}
    for key in ("pretrain", "kmeans", "cluster"):
        benchmark.extra_info[f"{key}_s"] = float(results[0].tags[f"dlfc.{key}_s"])
    if labels is not None:
        from harness import metrics

        benchmark.extra_info["acc"] = [metrics.score(labels, r.labels)["acc"] for r in results]
