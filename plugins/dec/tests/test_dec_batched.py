"""Seed-batched DEC (``fit_predict_seeds``): S seeds as one stacked model must give each seed what
``fit_predict`` gives it alone — the same initial weights and batch order, the same optimizer
arithmetic, its own stop — and a seed that stopped must not move any more.

Runs on whichever Keras backend the process has (TensorFlow in CI), on a CPU, one thread.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from test_dec_integration import RecordingContext

from harness.metrics import score
from harness_dec import PARAMS, fit_predict, fit_predict_seeds, harness_methods

SEEDS = (0, 1, 2)
BUDGET = {"pretrain_epochs": 3, "maxiter": 120, "update_interval": 30, "threads": 1}


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target


def _params(**given):
    return {p.name: p.default for p in PARAMS} | BUDGET | given


@pytest.fixture(scope="module")
def runs(digits, tmp_path_factory):
    """The same seeds batched and one at a time, each with its own (empty) autoencoder cache."""
    x, y = digits
    cache = tmp_path_factory.mktemp("batched")
    batched_ctx = [RecordingContext(truth=y, cache_dir=cache, seed=s) for s in SEEDS]
    batched = fit_predict_seeds(x, n_clusters=10, seeds=SEEDS, params=_params(), contexts=batched_ctx)
    single, single_ctx = [], []
    for s in SEEDS:
        ctx = RecordingContext(truth=y, cache_dir=tmp_path_factory.mktemp(f"single{s}"), seed=s)
        single.append(fit_predict(x, n_clusters=10, seed=s, params=_params(), context=ctx))
        single_ctx.append(ctx)
    return batched, batched_ctx, single, single_ctx, cache


def test_the_spec_offers_seed_batching():
    (spec,) = harness_methods()
    assert spec.fit_predict_seeds is fit_predict_seeds


def test_initial_weights_are_each_seeds_own_build():
    import keras

    from harness_dec import method, stacked

    together = stacked.stack(
        [ae.get_weights() for ae in method.initial_autoencoders((3, 5), 20, (8, 8, 16, 4), "glorot_uniform")]
    )
    for i, s in enumerate((3, 5)):
        (alone,) = method.initial_autoencoders((s,), 20, (8, 8, 16, 4), "glorot_uniform")
        for a, b in zip(stacked.unstack(together, i), alone.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert keras.backend.backend() in {"tensorflow", "jax", "torch"}


def test_batch_orders_are_each_seeds_own():
    from harness_dec import clustering

    n = 1000
    perms = np.stack([clustering.batch_rng(s).permutation(n) for s in (3, 5)])
    idx, w = clustering.epoch_batches(perms, 256)
    assert idx.shape == w.shape == (4, 2, 256)
    for i, s in enumerate((3, 5)):
        alone, _ = clustering.epoch_batches(clustering.batch_rng(s).permutation(n)[None], 256)
        np.testing.assert_array_equal(idx[:, i], alone[:, 0])
    # the partial last batch: its real rows, then padding that carries no weight
    assert w[-1, :, : n - 768].all() and not w[-1, :, n - 768 :].any()
    assert sorted(idx[:, 0][w[:, 0] > 0].tolist()) == list(range(n))


def test_batched_seeds_train_as_they_do_alone(runs, digits):
    batched, batched_ctx, single, single_ctx, _ = runs
    for b, s in zip(batched_ctx, single_ctx, strict=True):
        # same initial weights and batch order: the same pretraining curve up to summation order
        np.testing.assert_allclose(
            list(b.curves["pretrain_loss"].values()), list(s.curves["pretrain_loss"].values()), rtol=1e-4
        )
        assert b.curves["acc"][0] == pytest.approx(s.curves["acc"][0], abs=0.01)  # AE + k-means
    acc_b = np.array([score(digits[1], r.labels)["acc"] for r in batched])
    acc_s = np.array([score(digits[1], r.labels)["acc"] for r in single])
    # per seed they agree (rounding can flip a few points), and on average well within the seed spread
    assert np.abs(acc_b - acc_s).max() < 0.02, (acc_b, acc_s)
    assert abs(acc_b.mean() - acc_s.mean()) <= max(acc_s.std(), 0.01), (acc_b, acc_s)
    for r, s in zip(batched, SEEDS, strict=True):
        assert r.tags["determinism.seed"] == str(s) and r.tags["dec.seed_batch"] == "0,1,2"
        assert r.embedding.shape == (len(digits[0]), 10)


def test_batched_runs_fill_the_cache_a_single_run_then_hits(runs, digits):
    x, y = digits
    batched_ctx, cache = runs[1], runs[4]
    ctx = RecordingContext(truth=y, cache_dir=cache, seed=1)
    result = fit_predict(x, n_clusters=10, seed=1, params=_params(maxiter=1), context=ctx)
    assert result.tags["dec.ae_cache"] == "hit"
    assert ctx.curves["pretrain_loss"] == batched_ctx[1].curves["pretrain_loss"]
    assert ctx.curves["acc"][0] == batched_ctx[1].curves["acc"][0]


def test_a_stopped_seed_keeps_its_parameters_and_momentum():
    from keras import ops

    from harness_dec import clustering, stacked

    rng = np.random.default_rng(0)
    x, p = rng.random((100, 6), dtype=np.float32), rng.dirichlet(np.ones(3), size=(2, 100)).astype(np.float32)
    params = [ops.convert_to_tensor(rng.normal(size=shape).astype(np.float32)) for shape in
              [(2, 6, 5), (2, 5), (2, 5, 4), (2, 4), (2, 3, 4)]]  # fmt: skip
    optimizer = stacked.Optimizer("sgd", 0.1)
    run = stacked.make_runner(_backend(), stacked.kld_loss, optimizer, masked=True)
    idx, w = clustering.sequential_batches(0, 4, 32, 100, None, 2)
    state = optimizer.init(params)
    args = (
        (ops.convert_to_tensor(x), ops.convert_to_tensor(p.reshape(200, 3))),
        ops.convert_to_tensor(idx),
        ops.convert_to_tensor(w),
    )
    moved, state, _, _ = run(params, state, ops.convert_to_tensor(np.array([True, True])), *args)
    before = [ops.convert_to_numpy(a) for a in moved]
    momentum = [ops.convert_to_numpy(m) for m in state]
    assert all(np.abs(m[1]).max() > 0 for m in momentum)  # seed 1 has momentum to spend
    after, state2, _, _ = run(moved, state, ops.convert_to_tensor(np.array([True, False])), *args)
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(a)[1], b[1])  # stopped: not moved at all
        assert np.abs(ops.convert_to_numpy(a)[0] - b[0]).max() > 0  # still training
    for m, m0 in zip(state2, momentum, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(m)[1], m0[1])


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_optimizer_is_keras_arithmetic(kind):
    import keras
    from keras import ops

    from harness_dec import stacked

    rng = np.random.default_rng(1)
    values = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)]
    grads = [[rng.normal(size=v.shape).astype(np.float32) for v in values] for _ in range(3)]
    variables = [keras.Variable(v) for v in values]
    reference = keras.optimizers.SGD(0.1, momentum=0.9) if kind == "sgd" else keras.optimizers.Adam(0.01)
    ours = stacked.Optimizer(kind, 0.1 if kind == "sgd" else 0.01)
    params = [ops.convert_to_tensor(v[None]) for v in values]
    state = ours.init(params)
    for g in grads:
        reference.apply([ops.convert_to_tensor(a) for a in g], variables)
        params, state = ours.apply(state, [ops.convert_to_tensor(a[None]) for a in g], params)
    for v, p in zip(variables, params, strict=True):
        np.testing.assert_allclose(
            ops.convert_to_numpy(v.value), ops.convert_to_numpy(p)[0], rtol=1e-6, atol=1e-7
        )


def _backend() -> str:
    import keras

    return keras.backend.backend()
