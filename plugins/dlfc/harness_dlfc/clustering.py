"""DLFC's clustering phase (specs/dlfc.md §1.7): DEC's self-training on the encoder + centres.

No reconstruction term (pure DEC, not IDEC), the decoder is not trained, mini-batches are taken in
dataset order without shuffling, and the target distribution P is refreshed every
``interval`` iterations from a pass over the whole data set. The labels returned are those of the
last target update (as in the seed and DEC-keras), not a fresh prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harness_dlfc.steps import MomentumSGD, compile_step

KERAS_EPSILON = 1e-7
"""Keras' ``kld`` loss clips both distributions to [1e-7, 1]."""


class ClusteringLayer(nn.Module):
    """Student-t soft assignment q_ij ∝ (1 + ||z_i − μ_j||² / α)^(−(α+1)/2), normalised over j."""

    def __init__(self, n_clusters: int, dim: int, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.centres = nn.Parameter(torch.empty(n_clusters, dim))
        nn.init.xavier_uniform_(self.centres)  # overwritten by k-means before use

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return soft_assign(z, self.centres, self.alpha)


def soft_assign(z: torch.Tensor, centres: torch.Tensor, alpha: float) -> torch.Tensor:
    """The clustering layer as a function (shared with the seed-batched loop, which vmaps it)."""
    dist2 = ((z.unsqueeze(1) - centres.unsqueeze(0)) ** 2).sum(-1)
    q = (1.0 + dist2 / alpha) ** (-(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's auxiliary target P = q² / f_j (f_j = Σ_i q_ij), normalised per row."""
    weight = q**2 / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)


def keras_kld(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Keras' ``kld`` loss: Σ_j p log(p/q) with both clipped to [1e-7, 1], mean over the batch."""
    p = p.clamp(KERAS_EPSILON, 1.0)
    q = q.clamp(KERAS_EPSILON, 1.0)
    return (p * torch.log(p / q)).sum(dim=1).mean()


@torch.no_grad()
def encode_all(
    encoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """Encode the whole (device-resident) data set in chunks, without gradients."""
    return torch.cat([encoder(x[i : i + chunk]) for i in range(0, len(x), chunk)])


@dataclass
class ClusteringOutcome:
    labels: np.ndarray
    """argmax Q at the last target update."""
    iterations: int
    """Mini-batch updates done."""
    stopped_by_tolerance: bool
    last_delta: float


def cluster(
    model: nn.Module,
    clustering: ClusteringLayer,
    x: torch.Tensor,
    initial_labels: np.ndarray,
    *,
    batch_size: int,
    max_iterations: int,
    interval: int,
    tolerance: float,
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    on_update: Callable[[int, np.ndarray, float, float], None] | None = None,
) -> ClusteringOutcome:
    """Run the self-training loop and return the labels of the last target update.

    ``model`` must have ``encode``; its encoder (with the attention gate) and the centres are
    trained with SGD(0.01, 0.9) on Keras' KL loss. ``on_update(iteration, labels, delta, loss)``
    is called at every target update (the only place that synchronises with the host); ``loss``
    is the last mini-batch's loss (NaN at iteration 0), as the seed logged it. On CUDA the
    full-batch step is a replayed CUDA graph (:func:`~harness_dlfc.steps.compile_step`).
    """
    trained = [p for name, p in model.named_parameters() if not _is_decoder(name)] + [clustering.centres]
    optimizer = MomentumSGD(trained, learning_rate, momentum)

    def step(xb: torch.Tensor, pb: torch.Tensor) -> torch.Tensor:
        loss = keras_kld(pb, clustering(model.encode(xb)))
        optimizer.step(torch.autograd.grad(loss, trained))
        return loss.detach()

    run = None
    n = len(x)
    previous = np.asarray(initial_labels)
    labels = previous
    p = None
    loss = None
    index = 0
    delta = float("nan")
    for it in range(max_iterations):
        if it % interval == 0:
            model.eval()
            with torch.no_grad():
                q = clustering(encode_all(model.encode, x))
                p = target_distribution(q)
            labels = q.argmax(dim=1).cpu().numpy()
            delta = float(np.mean(labels != previous))
            previous = labels
            if on_update is not None:
                on_update(it, labels, delta, float("nan") if loss is None else loss.item())
            if it > 0 and delta < tolerance:
                return ClusteringOutcome(labels, it, True, delta)
            model.train()
        # Sequential batches in dataset order; the last partial batch is used, then wrap around
        # (the seed's ``index`` arithmetic, bug-for-bug: no shuffling, specs/dlfc.md §1.11.6).
        # One difference: when N is a multiple of the batch size the seed's arithmetic reaches an
        # empty batch (start == N); we wrap to the first batch instead.
        if index * batch_size >= n:
            index = 0
        start, stop = index * batch_size, min((index + 1) * batch_size, n)
        if run is None:
            run = compile_step(step, (x[start:stop], p[start:stop]), optimizer.state)
        loss = run(x[start:stop], p[start:stop])
        index = index + 1 if (index + 1) * batch_size <= n else 0
    return ClusteringOutcome(labels, max_iterations, False, delta)


def _is_decoder(name: str) -> bool:
    """Parameters of the decoder half, which the clustering model of the seed does not contain."""
    return name.startswith(("expand.", "deconv", "decoder."))
