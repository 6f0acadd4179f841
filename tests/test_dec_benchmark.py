"""Speed of DEC's two phases at MNIST scale (70,000 x 784): one pretraining epoch, and 140
clustering iterations (one target update plus 140 ``train_on_batch`` steps, MNIST's interval).

Timing depends on the inputs' shape only, so the data are uniform noise of MNIST's shape.
Excluded by default (slow on a CPU); run, on a GPU when there is one::

    pytest -m slow tests/test_dec_benchmark.py --benchmark-enable --benchmark-columns=min,median,max,rounds

``DEC_BENCH_THREADS=1`` caps TensorFlow's thread pools (a shared CPU).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

N, D, K = 70_000, 784, 10


class _Quiet:
    """A context that records nothing (the benchmark measures the method, not the tracker)."""

    seed, device, dataset, input_size, dry_run = 0, "auto", "mnist", 28, False

    def log_metric(self, key, value, step):
        pass

    def evaluate(self, labels, step, **extra):
        return {}

    def progress(self, completed, total, description=""):
        pass


@pytest.fixture(scope="module")
def mnist_scale():
    from harness_dec import runtime

    runtime.select_backend("tensorflow", "auto")
    threads = int(os.environ["DEC_BENCH_THREADS"]) if os.environ.get("DEC_BENCH_THREADS") else None
    tags = runtime.configure("tensorflow", "auto", threads, False, seed=0)
    x = np.random.default_rng(0).random((N, D), dtype=np.float32)
    return x, tags


def test_one_pretraining_epoch(benchmark, mnist_scale):
    from harness_dec.method import _pretrain
    from harness_dec.model import autoencoder
    from harness_dec.presets import PRESETS, Resolved

    x, tags = mnist_scale
    ae, _ = autoencoder(D, init="variance_scaling")
    resolved = Resolved("mnist", **vars(PRESETS["mnist"]))
    _pretrain(ae, x[:2048], resolved, 256, 1, _Quiet())  # trace and compile outside the timing
    benchmark.extra_info["device"] = tags["device"]
    benchmark.pedantic(_pretrain, args=(ae, x, resolved, 256, 1, _Quiet()), rounds=3, iterations=1)


def test_140_clustering_iterations(benchmark, mnist_scale):
    import keras
    from keras import ops

    from harness_dec.method import self_train
    from harness_dec.model import autoencoder, dec_model

    x, tags = mnist_scale
    _, encoder = autoencoder(D, init="variance_scaling")
    model = dec_model(encoder, K)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss="kld")
    x_dev = ops.convert_to_tensor(x)
    labels = np.arange(N) % K

    def run():
        return self_train(
            model, x_dev, labels, interval=140, maxiter=140, tol=0.0, batch_size=256, context=_Quiet()
        )

    self_train(
        model, x_dev, labels, interval=140, maxiter=2, tol=0.0, batch_size=256, context=_Quiet()
    )  # warm-up
    benchmark.extra_info["device"] = tags["device"]
    _, stopped, iteration = benchmark.pedantic(run, rounds=3, iterations=1)
    assert (stopped, iteration) == ("maxiter", 139)
