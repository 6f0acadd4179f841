"""DEC's clustering arithmetic against values computed by hand (specs/dec.md §2.4, §5)."""

from __future__ import annotations

import numpy as np
import pytest

from harness_dec.clustering import batch_at, changed_fraction, should_stop, target_distribution


@pytest.fixture(scope="module")
def clustering_layer():
    from harness_dec.model import ClusteringLayer

    return ClusteringLayer


def _soft_assign(layer_cls, z, centres, alpha=1.0):
    z = np.asarray(z, dtype=np.float32)
    layer = layer_cls(len(centres), alpha=alpha)
    layer.build((None, z.shape[1]))
    layer.set_weights([np.asarray(centres, dtype=np.float32)])
    return np.asarray(layer(z))


def test_student_t_soft_assignment_alpha_1(clustering_layer):
    # z0 = (0,0) is at centre 0 (kernel 1) and 4 away from centre 1 (kernel 1/(1+4) = 1/5):
    # q0 = (1, 1/5) / (6/5) = (5/6, 1/6). z1 = (1,1) is 2 away from both: q1 = (1/2, 1/2).
    q = _soft_assign(clustering_layer, [[0, 0], [1, 1]], [[0, 0], [2, 0]])
    np.testing.assert_allclose(q, [[5 / 6, 1 / 6], [1 / 2, 1 / 2]], rtol=1e-6)


def test_student_t_soft_assignment_other_alpha(clustering_layer):
    # alpha = 2: kernel (1 + d²/2)^(-3/2); for d² = 4 that is 3^(-3/2).
    k = 3**-1.5
    q = _soft_assign(clustering_layer, [[0, 0]], [[0, 0], [2, 0]], alpha=2.0)
    np.testing.assert_allclose(q, [[1 / (1 + k), k / (1 + k)]], rtol=1e-6)


def test_clustering_layer_builds_its_centres_in_build(clustering_layer):
    layer = clustering_layer(3)
    assert not layer.weights
    layer.build((None, 10))
    assert [tuple(w.shape) for w in layer.weights] == [(3, 10)]
    assert layer.get_config()["n_clusters"] == 3 and layer.get_config()["alpha"] == 1.0


def test_target_distribution_by_hand():
    # q from the test above; f = column sums = (4/3, 2/3).
    # row 0: (25/36)/(4/3) = 25/48, (1/36)/(2/3) = 2/48  -> (25/27, 2/27)
    # row 1: (1/4)/(4/3) = 3/16,   (1/4)/(2/3) = 6/16    -> (1/3, 2/3)
    p = target_distribution(np.array([[5 / 6, 1 / 6], [1 / 2, 1 / 2]]))
    np.testing.assert_allclose(p, [[25 / 27, 2 / 27], [1 / 3, 2 / 3]], rtol=1e-12)


def test_target_distribution_sharpens_and_normalises():
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(4), size=50)
    p = target_distribution(q)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # a uniform cluster frequency leaves the argmax alone and makes the winner more confident
    q_balanced = np.array([[0.7, 0.3], [0.3, 0.7]])
    p_balanced = target_distribution(q_balanced)
    assert (p_balanced.argmax(1) == q_balanced.argmax(1)).all() and (p_balanced.max(1) > 0.7).all()


def test_changed_fraction():
    assert changed_fraction(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0])) == 0.25
    assert changed_fraction(np.array([1, 1]), np.array([1, 1])) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        changed_fraction(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize(
    ("iteration", "changed", "tol", "stop"),
    [
        (0, 0.0, 0.001, False),  # never at the first update: the labels are k-means' own
        (30, 0.0, 0.001, True),
        (30, 0.0009, 0.001, True),
        (30, 0.001, 0.001, False),  # strictly below tol, as DEC-keras' `delta_label < tol`
        (140, 0.5, 0.001, False),
        (140, 0.0, 0.0, False),  # tol 0 never stops: runs to maxiter
    ],
    ids=["first-update", "nothing-changed", "below-tol", "equal-tol", "many-changed", "tol-zero"],
)
def test_stop_rule(iteration, changed, tol, stop):
    assert should_stop(iteration, changed, tol) is stop


def _dec_keras_batches(n, batch_size, steps):
    """DEC-keras' own index rule, written out: index = index + 1 if (index + 1) * b <= n else 0."""
    index, out = 0, []
    for _ in range(steps):
        out.append((index * batch_size, min((index + 1) * batch_size, n)))
        index = index + 1 if (index + 1) * batch_size <= n else 0
    return out


def test_batches_are_sequential_and_wrap_after_the_partial_batch():
    got = [(s.start, s.stop) for s in (batch_at(i, 4, 10) for i in range(7))]
    assert got == [(0, 4), (4, 8), (8, 10), (0, 4), (4, 8), (8, 10), (0, 4)]


@pytest.mark.parametrize("n", [1797, 9298, 1440, 70000, 5])
def test_batches_match_dec_keras_when_n_is_not_a_multiple(n):
    ours = [(s.start, s.stop) for s in (batch_at(i, 256, n) for i in range(700))]
    assert ours == _dec_keras_batches(n, 256, 700)


def test_no_empty_batch_when_n_is_a_multiple_of_the_batch_size():
    # DEC-keras would train on x[512:512] (empty) every third step here; we wrap straight to 0.
    assert _dec_keras_batches(512, 256, 3)[2] == (512, 512)
    assert [(batch_at(i, 256, 512).start, batch_at(i, 256, 512).stop) for i in range(3)] == [
        (0, 256),
        (256, 512),
        (0, 256),
    ]


def test_batch_at_rejects_nonsense():
    with pytest.raises(ValueError, match="batch_size=0"):
        batch_at(0, 0, 10)
