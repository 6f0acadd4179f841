"""Autoencoder pretraining as in the seed (specs/dlfc.md §1.6): MSE, SGD with momentum 0.9.

Keras ``fit(..., shuffle=True)``: a fresh permutation every epoch, the last partial batch included,
and the epoch loss reported as the sample-weighted mean of the batch losses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def pretrain(
    model: nn.Module,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator,
    momentum: float = 0.9,
    max_batches: int | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` to reconstruct ``x`` (N, C, H, W) on its device; return the loss per epoch.

    ``generator`` (a CPU generator) draws the shuffles, so the order depends only on the seed.
    ``max_batches`` stops each epoch early (the dry run). The epoch loss is summed on the device
    and read once per epoch, so there is one host synchronisation per epoch.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum)
    n = len(x)
    history: list[float] = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(x.device)
        total = torch.zeros((), device=x.device)
        seen = 0
        for b, start in enumerate(range(0, n, batch_size)):
            if max_batches is not None and b >= max_batches:
                break
            batch = x[order[start : start + batch_size]]
            loss = F.mse_loss(model(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
            seen += len(batch)
        history.append(total.item() / seen)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history


@torch.no_grad()
def reconstruction_mse(model: nn.Module, x: torch.Tensor, chunk: int = 4096) -> float:
    """Mean squared reconstruction error over the whole data set (a check on loaded weights)."""
    model.eval()
    total = sum(F.mse_loss(model(x[i : i + chunk]), x[i : i + chunk], reduction="sum") for i in range(0, len(x), chunk))
    return float(total) / x.numel()
