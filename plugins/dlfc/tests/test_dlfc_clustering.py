"""DLFC's clustering phase: Student-t assignment, target distribution, Keras' KL, the loop's order."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness_dlfc.clustering import ClusteringLayer, cluster, keras_kld, target_distribution  # noqa: E402


def test_student_t_soft_assignment_hand_computed():
    layer = ClusteringLayer(2, 2, alpha=1.0)
    with torch.no_grad():
        layer.centres.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    q = layer(torch.tensor([[0.0, 0.0], [3.0, 0.0]]))
    # point 0: distances² 0 and 1 → (1+0)^-1 = 1, (1+1)^-1 = 1/2 → [2/3, 1/3]
    # point 1: distances² 9 and 4 → 1/10, 1/5 → [1/3, 2/3]
    torch.testing.assert_close(q, torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]))


def test_target_distribution_hand_computed():
    q = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    # f = column sums = [1.4, 0.6]; q²/f = [[0.25/1.4, 0.25/0.6], [0.81/1.4, 0.01/0.6]], row-normalised
    w = np.array([[0.25 / 1.4, 0.25 / 0.6], [0.81 / 1.4, 0.01 / 0.6]])
    expected = w / w.sum(1, keepdims=True)
    np.testing.assert_allclose(target_distribution(q).numpy(), expected, rtol=1e-6)


def test_keras_kld_clips_and_averages_over_the_batch():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    eps = 1e-7
    row0 = 1.0 * np.log(1.0 / 0.5) + eps * np.log(eps / 0.5)  # the zero is clipped to 1e-7
    assert keras_kld(p, q).item() == pytest.approx((row0 + 0.0) / 2, rel=1e-6)


class _Recorder(torch.nn.Module):
    """A linear encoder over the second feature that records which rows each training batch held."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 2)
        self.batches: list[list[int]] = []

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches.append(x[:, 0, 0, 0].long().tolist())
        return self.linear(x[:, 0, 0, 1:])


def _toy(n: int):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(-3, 0.3, n // 2), rng.normal(3, 0.3, n - n // 2)])
    x = torch.tensor(np.stack([np.arange(n), values], 1), dtype=torch.float32).view(n, 1, 1, 2)
    torch.manual_seed(0)
    model = _Recorder()
    layer = ClusteringLayer(2, 2)
    with torch.no_grad():
        z = model.linear(x[:, 0, 0, 1:])
        layer.centres.copy_(torch.stack([z[: n // 2].mean(0), z[n // 2 :].mean(0)]))
    return x, model, layer, (np.arange(n) >= n // 2).astype(int)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (10, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0, 1, 2, 3], [4, 5, 6, 7]]),
        (8, [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3]]),  # never an empty batch
    ],
    ids=["partial-last-batch", "exact-multiple"],
)
def test_batches_are_sequential_and_wrap_after_the_partial_batch(n, expected):
    x, model, layer, init = _toy(n)
    cluster(model, layer, x, init, batch_size=4, max_iterations=5, interval=100, tolerance=0.0)
    assert model.batches == expected


def test_updates_every_interval_and_stops_on_tolerance_with_the_last_update_labels():
    x, model, layer, init = _toy(40)
    seen = []
    outcome = cluster(
        model,
        layer,
        x,
        init,
        batch_size=8,
        max_iterations=100,
        interval=7,
        tolerance=0.5,
        on_update=lambda it, labels, delta, loss: seen.append((it, labels.copy(), delta, loss)),
    )
    # Well separated: no label changes, so the first check after iteration 0 (at 7) stops the loop.
    assert [s[0] for s in seen] == [0, 7]
    assert np.isnan(seen[0][3]) and seen[1][3] > 0  # the loss of the last mini-batch
    assert outcome.stopped_by_tolerance and outcome.iterations == 7 and outcome.last_delta == 0.0
    assert len(model.batches) == 7
    np.testing.assert_array_equal(outcome.labels, seen[-1][1])
    assert (outcome.labels == init).all() or (outcome.labels == 1 - init).all()


def test_runs_to_max_iterations_when_tolerance_is_zero():
    x, model, layer, init = _toy(40)
    seen = []
    outcome = cluster(
        model,
        layer,
        x,
        init,
        batch_size=8,
        max_iterations=30,
        interval=10,
        tolerance=0.0,
        on_update=lambda it, *rest: seen.append(it),
    )
    assert seen == [0, 10, 20] and outcome.iterations == 30 and not outcome.stopped_by_tolerance


def test_the_decoder_is_not_trained_and_the_centres_are():
    from harness_dlfc.autoencoders import ConvAutoencoder

    torch.manual_seed(0)
    model = ConvAutoencoder((8, 8, 1), 3)
    x = torch.rand(50, 1, 8, 8)
    layer = ClusteringLayer(3, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    centres = layer.centres.detach().clone()
    cluster(model, layer, x, np.zeros(50, int), batch_size=16, max_iterations=5, interval=100, tolerance=0.0)
    after = model.state_dict()
    for key in before:
        changed = not torch.equal(before[key], after[key])
        assert changed == (not key.startswith(("expand", "deconv"))), key
    assert not torch.equal(centres, layer.centres.detach())
