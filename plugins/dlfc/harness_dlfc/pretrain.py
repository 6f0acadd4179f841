"""Autoencoder pretraining as in the seed (specs/dlfc.md §1.6): MSE, SGD with momentum 0.9.

Keras ``fit(..., shuffle=True)``: a fresh permutation every epoch, the last partial batch included,
and the epoch loss reported as the sample-weighted mean of the batch losses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from harness_dlfc.steps import MomentumSGD, compile_step


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
    ``max_batches`` stops each epoch early (the dry run). Batches are gathered on the device by
    index, the epoch loss is summed on the device and read once per epoch: one host
    synchronisation per epoch. On CUDA the full-batch step is a replayed CUDA graph
    (:func:`~harness_dlfc.steps.compile_step`); the numbers are those of ``torch.optim.SGD``.
    """
    params = list(model.parameters())
    optimizer = MomentumSGD(params, learning_rate, momentum)

    def step(batch: torch.Tensor) -> torch.Tensor:
        loss = F.mse_loss(model(batch), batch)
        optimizer.step(torch.autograd.grad(loss, params))
        return loss.detach()

    run = None
    n = len(x)
    history: list[float] = []
    for epoch in range(epochs):
        model.train()
        order = device_order(torch.randperm(n, generator=generator), x.device)
        total = torch.zeros((), device=x.device)
        seen = 0
        for b, start in enumerate(range(0, n, batch_size)):
            if max_batches is not None and b >= max_batches:
                break
            batch = x[order[start : start + batch_size]]
            if run is None:
                run = compile_step(step, [batch], optimizer.state)
            loss = run(batch)
            total += loss * len(batch)
            seen += len(batch)
        history.append(total.item() / seen)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history


def device_order(order: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU permutation on ``device``, copied without making the host wait for the GPU."""
    if device.type == "cuda":
        return order.pin_memory().to(device, non_blocking=True)
    return order.to(device)


@torch.no_grad()
def reconstruction_stats(model: nn.Module, x: torch.Tensor, chunk: int = 4096) -> tuple[float, float]:
    """The mean squared reconstruction error over the data set, and how much the reconstructions vary.

    The second number is the reconstructions' standard deviation across images (per pixel,
    averaged over pixels) relative to the data's. Near zero, the decoder outputs the same image
    whatever its input: at the seed's learning rate 1 some seeds' sigmoid outputs saturate in the
    first epoch (MNIST seed 2: 2e-9 of the data's spread, from epoch 0 to 300) and never recover,
    while an autoencoder stopped after a few epochs still keeps about 1e-3 of it.
    """
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    s1 = s2 = d1 = d2 = torch.zeros(x.shape[1:], dtype=torch.float64, device=x.device)
    for i in range(0, len(x), chunk):
        batch = x[i : i + chunk]
        out = model(batch).double()
        total += ((out - batch) ** 2).sum()
        s1, s2 = s1 + out.sum(0), s2 + (out**2).sum(0)
        d1, d2 = d1 + batch.double().sum(0), d2 + (batch.double() ** 2).sum(0)
    n = len(x)

    def mean_std(sums: torch.Tensor, squares: torch.Tensor) -> torch.Tensor:
        return (squares / n - (sums / n) ** 2).clamp(min=0).sqrt().mean()

    return float(total) / x.numel(), float(mean_std(s1, s2) / mean_std(d1, d2))
