"""DLFC's fast path and seed-batched training (issue 8).

The single-seed loops must keep the numbers of the original eager code (``torch.optim.SGD``,
``loss.backward``); the batched loops must give every seed what one-at-a-time training gives it,
up to floating-point summation order. On the CPU here; the CUDA-graph step has its own check,
which runs only where CUDA is available.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from test_dlfc_integration import FakeContext  # noqa: E402

from harness import metrics  # noqa: E402
from harness.preprocess import prepare  # noqa: E402
from harness_dlfc.autoencoders import ConvAutoencoder  # noqa: E402
from harness_dlfc.batched import StackedModels, cluster_stacked, pretrain_stacked  # noqa: E402
from harness_dlfc.clustering import ClusteringLayer, cluster  # noqa: E402
from harness_dlfc.method import _seeded_model, fit_predict, fit_predict_seeds  # noqa: E402
from harness_dlfc.pretrain import pretrain  # noqa: E402
from harness_dlfc.steps import MomentumSGD  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    import os

    monkeypatch.setenv("HARNESS_DLFC_THREADS", os.environ.get("HARNESS_DLFC_THREADS", "1"))
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ["HARNESS_DLFC_THREADS"]))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits(registry):
    data = registry.dataset("digits").load(Path("unused"))
    return prepare(data, 8, "bilinear", "image"), data.labels


def _images(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, atol: float = 0.0) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        if atol:
            torch.testing.assert_close(p, q, rtol=0, atol=atol, msg=name)
        else:
            assert torch.equal(p, q), name


# --- the single-seed fast path keeps the original numbers ----------------------------------------


def test_momentum_sgd_matches_torch_optim_sgd_bit_for_bit():
    torch.manual_seed(0)
    a = [torch.randn(5, 3), torch.randn(3)]
    b = [t.clone().requires_grad_() for t in a]
    opt = torch.optim.SGD(b, lr=0.3, momentum=0.9)
    ours = MomentumSGD(a, lr=0.3, momentum=0.9)
    for _ in range(4):
        grads = [torch.randn_like(t) for t in a]
        for t, g in zip(b, grads, strict=True):
            t.grad = g.clone()
        opt.step()
        ours.step(grads)
        for t, u in zip(a, b, strict=True):
            assert torch.equal(t, u.detach())


def test_pretraining_is_bitwise_the_original_eager_loop():
    x = torch.rand(300, 1, 8, 8)
    torch.manual_seed(0)
    reference = ConvAutoencoder((8, 8, 1), 4, attention=True)
    torch.manual_seed(0)
    model = ConvAutoencoder((8, 8, 1), 4, attention=True)
    # the code before the fast path: torch.optim.SGD, backward, batches x[randperm[...]]
    opt = torch.optim.SGD(reference.parameters(), lr=1.0, momentum=0.9)
    g = torch.Generator().manual_seed(5)
    for _ in range(2):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 64):
            batch = x[order[s : s + 64]]
            loss = F.mse_loss(reference(batch), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    pretrain(model, x, epochs=2, batch_size=64, learning_rate=1.0, generator=torch.Generator().manual_seed(5))
    _assert_same_weights(model, reference)


# --- seed batching --------------------------------------------------------------------------------


def test_batched_seeds_get_the_single_seed_initial_weights(digits, registry):
    x, _ = digits
    params = registry.method("dlfc").defaults() | {"attention": True}
    cpu = torch.device("cpu")
    single = [_seeded_model(x, 10, seed, params, cpu)[0] for seed in (3, 4)]
    stack = StackedModels([_seeded_model(x, 10, seed, params, cpu)[0] for seed in (3, 4)])
    for i, model in enumerate(single):
        for name, p in model.named_parameters():
            assert torch.equal(stack.params[name][i], p), name
    assert not torch.equal(stack.params["latent.weight"][0], stack.params["latent.weight"][1])


@pytest.mark.parametrize("form", ["native", "matmul"])
@pytest.mark.parametrize("size", [28, 15])
def test_stacked_forward_and_gradients_are_each_seeds_own(form, size, monkeypatch):
    # native: vmap turns the convolutions into grouped ones; matmul: into batched matmuls
    from harness_dlfc.autoencoders import ConvAutoencoder

    monkeypatch.setenv("HARNESS_DLFC_CONV", form)
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(ConvAutoencoder((size, size, 1), 10, attention=True))
    stack = StackedModels(models)
    x = torch.rand(3, 8, 1, size, size, generator=torch.Generator().manual_seed(0))
    losses = torch.vmap(lambda p, xb: F.mse_loss(stack.call("forward", p, xb), xb))(stack.params, x)
    grads = torch.autograd.grad(losses.sum(), list(stack.params.values()))
    for i, model in enumerate(models):
        loss = F.mse_loss(model(x[i]), x[i])
        torch.testing.assert_close(losses[i], loss, rtol=1e-5, atol=1e-7)
        for g, own in zip(grads, torch.autograd.grad(loss, list(model.parameters())), strict=True):
            torch.testing.assert_close(g[i], own, rtol=1e-4, atol=1e-6)


def test_batched_pretraining_follows_each_seeds_own_batch_order(digits):
    # Same initial weights and batch order per seed ⇒ the same trajectory up to rounding; a
    # different order (or a mixed-up gradient) would be far off after 2 epochs of SGD at lr 1.
    x = _images(digits[0][:700])
    seeds = (0, 1, 2)
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(ConvAutoencoder((8, 8, 1), 10))
    singles = []
    for s, m in zip(seeds, models, strict=True):
        single = ConvAutoencoder((8, 8, 1), 10)
        single.load_state_dict(m.state_dict())
        curve = pretrain(
            single, x, epochs=2, batch_size=128, learning_rate=1.0, generator=torch.Generator().manual_seed(s)
        )
        singles.append((single, curve))
    curves = pretrain_stacked(
        StackedModels(models), x, epochs=2, batch_size=128, learning_rate=1.0,
        generators=[torch.Generator().manual_seed(s) for s in seeds],
    )  # fmt: skip
    for model, (single, curve), batched_curve in zip(models, singles, curves, strict=True):
        _assert_same_weights(model, single, atol=1e-5)
        np.testing.assert_allclose(batched_curve, curve, rtol=1e-5)


def _toy_clustering(seeds=(0, 1), n=200):
    """Conv encoders on 4×4 images; seed 0's centres put every point in cluster 0 (stable labels:
    it converges at the first check), seed 1's are three nearly equal centres on unstructured data
    (labels keep changing)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 4, 4, generator=g)
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(ConvAutoencoder((4, 4, 1), 3))
    centres = []
    for i, m in enumerate(models):
        with torch.no_grad():
            z = m.encode(x)
        if i == 0:
            c = torch.stack([z.mean(0), z.mean(0) + 1e3, z.mean(0) - 1e3])
        else:
            c = z.mean(0) + 1e-3 * z.std(0) * torch.randn(3, 3, generator=g)
        centres.append(c)
    labels = [ClusteringLayer(3, 3).requires_grad_(False) for _ in models]
    initial = []
    for layer, c, m in zip(labels, centres, models, strict=True):
        layer.centres.copy_(c)
        with torch.no_grad():
            initial.append(layer(m.encode(x)).argmax(1).numpy())
    return x, models, torch.stack(centres), initial


def _copies(models):
    out = []
    for m in models:
        c = ConvAutoencoder((4, 4, 1), 3)
        c.load_state_dict(m.state_dict())
        out.append(c)
    return out


def test_batched_clustering_matches_single_and_a_converged_seed_stops_changing():
    x, models, centres, initial = _toy_clustering()
    kwargs = dict(batch_size=64, interval=5, tolerance=1e-9, learning_rate=3.0)  # a high rate: labels move
    # one at a time
    singles = []
    for m, c, init in zip(_copies(models), centres, initial, strict=True):
        layer = ClusteringLayer(3, 3)
        with torch.no_grad():
            layer.centres.copy_(c)
        seen = []
        out = cluster(
            m,
            layer,
            x,
            init,
            max_iterations=40,
            on_update=lambda it, *r, seen=seen: seen.append(it),
            **kwargs,
        )
        singles.append((m, layer, out, seen))
    assert singles[0][2].stopped_by_tolerance and singles[0][2].iterations == 5
    assert not singles[1][2].stopped_by_tolerance, "toy data meant to keep seed 1 changing"

    # batched, to 40 iterations and to 6 (just past seed 0's stop)
    runs = {}
    for limit in (40, 6):
        stacked = _copies(models)
        mu = centres.clone()
        seen: dict[int, list[int]] = {0: [], 1: []}
        outcomes = cluster_stacked(
            StackedModels(stacked), mu, x, initial, max_iterations=limit,
            on_update=lambda i, it, *r, seen=seen: seen[i].append(it), **kwargs,
        )  # fmt: skip
        runs[limit] = (stacked, mu.detach(), outcomes, seen)
    stacked, mu, outcomes, seen = runs[40]
    for i, (m, layer, out, single_seen) in enumerate(singles):
        assert seen[i] == single_seen
        assert outcomes[i].iterations == out.iterations
        assert outcomes[i].stopped_by_tolerance == out.stopped_by_tolerance
        np.testing.assert_array_equal(outcomes[i].labels, out.labels)
        _assert_same_weights(stacked[i], m, atol=1e-5)
        torch.testing.assert_close(mu[i], layer.centres.detach(), rtol=0, atol=1e-5)
    # seed 0 stopped at iteration 5: nothing of it moved afterwards (momentum included), while
    # seed 1 went on training
    _assert_same_weights(stacked[0], runs[6][0][0])
    assert torch.equal(mu[0], runs[6][1][0])
    assert not torch.equal(stacked[1].latent.weight, runs[6][0][1].latent.weight)
    for model, original in zip(stacked, models, strict=True):  # the decoder is never trained
        assert torch.equal(model.deconv3.weight, original.deconv3.weight)


def test_fit_predict_seeds_agrees_with_one_at_a_time_and_shares_the_cache(digits, registry, tmp_path):
    x, labels = digits
    params = registry.method("dlfc").defaults() | dict(
        ae_iterations=6, cluster_iterations=140, interval_updation=70, stack_seeds="always"
    )

    def single(seed, cache):
        np.random.seed(seed)
        ctx = FakeContext(cache, labels)
        ctx.seed = seed
        return fit_predict(x, n_clusters=10, seed=seed, params=params, context=ctx), ctx

    def batched(seeds, cache):
        ctxs = [FakeContext(cache, labels) for _ in seeds]
        for c, s in zip(ctxs, seeds, strict=True):
            c.seed = s
        return fit_predict_seeds(x, n_clusters=10, seeds=list(seeds), params=params, contexts=ctxs), ctxs

    ones = [single(s, tmp_path / "a") for s in (0, 1)]
    both, ctxs = batched((0, 1), tmp_path / "b")
    for (one, one_ctx), res, ctx in zip(ones, both, ctxs, strict=True):
        assert one.tags["dlfc.ae_cache"] == res.tags["dlfc.ae_cache"] == "miss"
        assert res.tags["dlfc.batched_seeds"] == "2" and res.tags["dlfc.batched_with"] == "0,1"
        assert set(one.tags) <= set(res.tags)
        assert one.tags["dlfc.pretrain_collapsed"] == res.tags["dlfc.pretrain_collapsed"] == "False"
        # the same run, up to summation order: curves, labels, embedding
        np.testing.assert_allclose(
            # on a GPU, cuDNN picks other kernels for the grouped (stacked) convolutions: 2.5e-4 seen
            [v for _, v in ctx.curves["pretrain_loss"]],
            [v for _, v in one_ctx.curves["pretrain_loss"]],
            rtol=1e-3,
        )
        assert [s for s, _ in ctx.curves["acc"]] == [s for s, _ in one_ctx.curves["acc"]] == [0, 70]
        acc_one, acc_batched = (
            metrics.score(labels, one.labels)["acc"],
            metrics.score(labels, res.labels)["acc"],
        )
        # k-means (20 restarts, best inertia kept) can amplify rounding differences of ~1e-6 in the
        # features into a different local optimum: same partition mostly, ACC within the seed spread
        agreement = metrics.score(one.labels, res.labels)["nmi_arithmetic"]
        print(
            f"seed {one_ctx.seed}: ACC single {acc_one:.4f} batched {acc_batched:.4f}, NMI between {agreement:.3f}"
        )
        assert abs(acc_one - acc_batched) < 0.05
        assert agreement > 0.9
        assert res.embedding.shape == one.embedding.shape == (1797, 10)
        # the file name is the single-seed cache key
        assert Path(res.tags["dlfc.ae_cache_file"]).name == Path(one.tags["dlfc.ae_cache_file"]).name

    # Cache interplay: seed 0 cached by a single run loads; seed 1 pretrains in the batch and its
    # file is then a hit for a single run.
    mixed = tmp_path / "c" / "dlfc"
    mixed.mkdir(parents=True)
    shutil.copy(ones[0][0].tags["dlfc.ae_cache_file"], mixed)
    again, ctxs = batched((0, 1), tmp_path / "c")
    assert [r.tags["dlfc.ae_cache"] for r in again] == ["hit", "miss"]
    np.testing.assert_array_equal(again[0].labels, both[0].labels)  # a hit reruns the same clustering
    assert len(ctxs[0].curves["pretrain_loss"]) == 6  # the cached run's curve is logged
    later, _ = single(1, tmp_path / "c")
    assert later.tags["dlfc.ae_cache"] == "hit"
    assert (
        abs(metrics.score(labels, later.labels)["acc"] - metrics.score(labels, ones[1][0].labels)["acc"])
        < 0.05
    )


def test_a_collapse_in_a_stacked_pretraining_is_flagged_per_seed(digits, registry, tmp_path):
    x, labels = digits
    params = registry.method("dlfc").defaults() | dict(
        ae_iterations=4, cluster_iterations=10, learning_rate=20.0, stack_seeds="always"
    )
    ctxs = [FakeContext(tmp_path, labels) for _ in range(2)]
    for c, s in zip(ctxs, (3, 4), strict=True):
        c.seed = s
    with pytest.warns(UserWarning, match="pretraining collapsed") as caught:
        results = fit_predict_seeds(x, n_clusters=10, seeds=[3, 4], params=params, contexts=ctxs)
    assert sorted(str(w.message).split(":")[0] for w in caught) == ["dlfc seed 3", "dlfc seed 4"]
    assert [r.tags["dlfc.pretrain_collapsed"] for r in results] == ["True", "True"]


def test_dry_run_of_batched_seeds(digits, registry, tmp_path):
    x, labels = digits
    params = registry.method("dlfc").defaults() | {"stack_seeds": "always"}
    ctxs = [FakeContext(tmp_path, labels, dry_run=True) for _ in range(2)]
    results = fit_predict_seeds(x, n_clusters=10, seeds=[0, 1], params=params, contexts=ctxs)
    assert [r.labels.shape for r in results] == [(1797,), (1797,)]
    assert not list(tmp_path.rglob("*.h5"))  # a dry run never caches


def test_the_method_spec_registers_seed_batching(registry):
    assert registry.method("dlfc").fit_predict_seeds is not None


def test_on_a_cpu_auto_runs_the_seeds_one_after_another(digits, registry, tmp_path):
    x, labels = digits
    params = registry.method("dlfc").defaults() | dict(
        ae_iterations=2, cluster_iterations=70, interval_updation=70
    )
    ctxs = [FakeContext(tmp_path, labels) for _ in range(2)]
    for c, s in zip(ctxs, (0, 1), strict=True):
        c.seed = s
    results = fit_predict_seeds(x, n_clusters=10, seeds=[0, 1], params=params, contexts=ctxs)
    assert all("dlfc.batched_seeds" not in r.tags for r in results)  # the single-seed path ran
    alone = fit_predict(
        x, n_clusters=10, seed=1, params=params, context=FakeContext(tmp_path / "alone", labels)
    )
    assert np.array_equal(alone.labels, results[1].labels)


# --- the CUDA-graph step (only where CUDA is available) --------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_steps_match_eager_steps(monkeypatch):
    """The self-check of the CUDA path: every loop, graphed against eager, on the same start."""
    from harness_dlfc.method import seed_torch
    from harness_dlfc.steps import GraphedStep, compile_step

    device = torch.device("cuda")
    x = torch.rand(1000, 1, 28, 28, device=device)

    def trained(graphs: bool):
        monkeypatch.setenv("HARNESS_DLFC_GRAPHS", "1" if graphs else "0")
        seed_torch(0)  # deterministic cuDNN: graph and eager then run the same kernels
        model = ConvAutoencoder((28, 28, 1), 10, attention=True).to(device)
        curve = pretrain(
            model, x, epochs=2, batch_size=256, learning_rate=1.0, generator=torch.Generator().manual_seed(0)
        )
        layer = ClusteringLayer(10, 10).to(device)
        init = np.zeros(len(x), dtype=int)
        out = cluster(model, layer, x, init, batch_size=256, max_iterations=20, interval=7, tolerance=0.0)
        stack = StackedModels([model, ConvAutoencoder((28, 28, 1), 10, attention=True).to(device)])
        curves = pretrain_stacked(
            stack, x, epochs=1, batch_size=256, learning_rate=1.0, generators=[torch.Generator().manual_seed(s) for s in (0, 1)]
        )  # fmt: skip
        mu = torch.randn(2, 10, 10, generator=torch.Generator().manual_seed(1)).to(device)
        outs = cluster_stacked(
            stack, mu, x, [init, init], batch_size=256, max_iterations=20, interval=7, tolerance=0.0
        )
        return model, curve, out, curves, outs, stack.models[1]

    eager = trained(False)
    graphed = trained(True)
    _assert_same_weights(graphed[0], eager[0], atol=1e-5)
    np.testing.assert_allclose(graphed[1], eager[1], rtol=1e-5)
    assert (graphed[2].labels == eager[2].labels).mean() > 0.99
    np.testing.assert_allclose(graphed[3], eager[3], rtol=1e-5)
    for a, b in zip(graphed[4], eager[4], strict=True):
        assert (a.labels == b.labels).mean() > 0.99
    _assert_same_weights(graphed[5], eager[5], atol=1e-5)
    monkeypatch.setenv("HARNESS_DLFC_GRAPHS", "1")
    assert isinstance(compile_step(lambda t: t * 2, [x[:4]], []), GraphedStep)
