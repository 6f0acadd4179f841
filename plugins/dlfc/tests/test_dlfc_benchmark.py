"""DLFC speed at MNIST scale: one pretraining epoch and one target-update interval (140 iterations).

Synthetic data of MNIST's shape (70,000 × 28 × 28 × 1), resident on the device; on the GPU when
torch sees one. Slow on a CPU (minutes):
    pytest -m slow plugins/dlfc/tests/test_dlfc_benchmark.py --benchmark-enable
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness_dlfc.autoencoders import ConvAutoencoder  # noqa: E402
from harness_dlfc.clustering import ClusteringLayer, cluster  # noqa: E402
from harness_dlfc.pretrain import pretrain  # noqa: E402

N = 70_000


@pytest.fixture(scope="module")
def device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def data(device):
    torch.manual_seed(0)
    return torch.rand(N, 1, 28, 28, device=device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@pytest.mark.slow
def test_one_pretraining_epoch(benchmark, data, device):
    model = ConvAutoencoder((28, 28, 1), 10).to(device)

    def epoch():
        pretrain(
            model,
            data,
            epochs=1,
            batch_size=256,
            learning_rate=1.0,
            generator=torch.Generator().manual_seed(0),
        )
        _sync(device)

    benchmark.pedantic(epoch, rounds=2, iterations=1, warmup_rounds=0)
    benchmark.extra_info["device"] = str(device)


@pytest.mark.slow
def test_one_target_update_interval(benchmark, data, device):
    model = ConvAutoencoder((28, 28, 1), 10, attention=True).to(device)
    layer = ClusteringLayer(10, 10).to(device)
    init = np.random.default_rng(0).integers(0, 10, N)

    def interval():
        # one target update over all 70,000 images, then 140 mini-batch steps
        cluster(model, layer, data, init, batch_size=256, max_iterations=140, interval=140, tolerance=0.0)
        _sync(device)

    benchmark.pedantic(interval, rounds=2, iterations=1, warmup_rounds=0)
    benchmark.extra_info["device"] = str(device)
