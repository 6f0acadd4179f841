"""The framework-free arithmetic of DEC's self-training phase (NumPy only, unit-tested by hand).

The Student-t soft assignment itself is :class:`harness_dec.model.ClusteringLayer` (it runs in
Keras); what happens between gradient steps lives here: the target distribution, the stop rule
and the order of the mini-batches.
"""

from __future__ import annotations

import numpy as np


def target_distribution(q: np.ndarray) -> np.ndarray:
    """DEC's auxiliary target P (Xie et al. 2016, eq. 3): p_ij ∝ q_ij² / f_j, rows summing to 1.

    Squaring sharpens confident assignments; dividing by the soft cluster frequency
    f_j = Σ_i q_ij keeps large clusters from swallowing the others.
    """
    q = np.asarray(q, dtype=np.float64)
    weight = q**2 / q.sum(axis=0)
    return weight / weight.sum(axis=1, keepdims=True)


def changed_fraction(labels: np.ndarray, previous: np.ndarray) -> float:
    """The share of points whose hard assignment differs from the previous target update."""
    labels, previous = np.asarray(labels), np.asarray(previous)
    if labels.shape != previous.shape:
        raise ValueError(f"label arrays differ in shape: {labels.shape} vs {previous.shape}")
    return float(np.count_nonzero(labels != previous) / labels.size)


def should_stop(iteration: int, changed: float, tol: float) -> bool:
    """DEC-keras' stop rule, evaluated at target updates only.

    Stop when fewer than ``tol`` of the labels changed since the previous update, but never at
    iteration 0: there the "previous" labels are the k-means labels the assignment was just
    initialised from, so nothing can have changed yet.
    """
    return iteration > 0 and changed < tol


def batch_at(iteration: int, batch_size: int, n: int) -> slice:
    """The rows DEC-keras trains on at ``iteration``: sequential batches, no shuffling, wrap-around.

    Batches are ``[0, b), [b, 2b), ...`` up to the partial batch that ends at ``n``, then start
    again at 0. DEC-keras computes the next index as ``index + 1 if (index + 1) * b <= n else 0``;
    when ``n`` is a multiple of ``b`` that produces one *empty* batch per pass (an empty
    ``train_on_batch``). We differ there on purpose and go straight back to 0; for every other
    ``n`` (MNIST, USPS, COIL-20, digits) the sequence is identical.
    """
    if batch_size < 1 or n < 1:
        raise ValueError(f"batch_size and n must be >= 1, got batch_size={batch_size}, n={n}")
    n_batches = -(-n // batch_size)
    start = (iteration % n_batches) * batch_size
    return slice(start, min(start + batch_size, n))


def epoch_batches(perms: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One pretraining epoch per seed as fixed-shape index and weight arrays, (T, S, B) each.

    ``perms`` (S, N) is each seed's shuffled row order for this epoch; batches are consecutive
    slices of it, the last one partial as with Keras' ``fit(shuffle=True)``. The partial batch
    is padded with row 0 at weight 0, so every step has one shape (one compiled program) while
    its loss is the mean over its real rows only.
    """
    s, n = perms.shape
    steps = -(-n // batch_size)
    idx = np.zeros((s, steps * batch_size), dtype=np.int32)
    idx[:, :n] = perms
    weights = np.zeros((s, steps * batch_size), dtype=np.float32)
    weights[:, :n] = 1.0
    shape = (s, steps, batch_size)
    return idx.reshape(shape).transpose(1, 0, 2).copy(), weights.reshape(shape).transpose(1, 0, 2).copy()


def sequential_batches(
    start: int, steps: int, batch_size: int, n: int, orders: np.ndarray | None, n_seeds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Clustering iterations ``start .. start+steps-1`` (:func:`batch_at`) as (T, S, B) index and
    weight arrays; with ``orders`` (S, N), seed s walks its own row order ``orders[s]``."""
    idx = np.zeros((steps, n_seeds, batch_size), dtype=np.int32)
    weights = np.zeros((steps, n_seeds, batch_size), dtype=np.float32)
    for t in range(steps):
        rows = batch_at(start + t, batch_size, n)
        size = rows.stop - rows.start
        idx[t, :, :size] = np.arange(rows.start, rows.stop) if orders is None else orders[:, rows]
        weights[t, :, :size] = 1.0
    return idx, weights


def batch_rng(seed: int) -> np.random.Generator:
    """The generator of seed ``seed``'s pretraining batch order (its own stream, apart from the
    one ``order=shuffled`` and k-means draw from)."""
    return np.random.default_rng([seed, 0xDEC])
