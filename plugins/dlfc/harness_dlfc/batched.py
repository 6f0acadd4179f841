"""Seed-batched DLFC: S seeds of one configuration trained as one stacked model.

The S autoencoders (each built after seeding, exactly as ``fit_predict(seed)`` builds it) are
stacked into tensors with a leading seed axis (``torch.func.stack_module_state``) and run with
``torch.vmap`` over ``functional_call``: one forward/backward for all seeds, where a one-seed step
leaves a GPU almost idle. Under vmap the convolutions become grouped ones, or batched matmuls
with ``$HARNESS_DLFC_CONV=matmul`` (see :func:`harness_dlfc.padding.convolution_form`).

Each seed keeps its own shuffle (its own generator, the stream of the single-seed code), its own
k-means centres and target distribution, and its own stop rule: a seed whose labels converged is
masked out of every later update (parameters and momentum). The summed loss has, per seed,
exactly that seed's gradient; only floating-point summation order differs from one-at-a-time
training.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from harness_dlfc.clustering import (
    ClusteringOutcome,
    _is_decoder,
    keras_kld,
    soft_assign,
    target_distribution,
)
from harness_dlfc.pretrain import device_order
from harness_dlfc.steps import MomentumSGD, compile_step


class _Call(nn.Module):
    """Calls one method (``forward`` or ``encode``) of the wrapped module, for functional_call."""

    def __init__(self, inner: nn.Module, method: str) -> None:
        super().__init__()
        self.inner, self.method = inner, method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.inner, self.method)(x)


class StackedModels:
    """S modules of one architecture as stacked parameters ``{name: (S, ...)}`` on their device.

    The original modules stay the home of each seed's weights: :meth:`write_back` copies the
    trained stack into them (for the cache, the embedding and the tags).
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        self.models = list(models)
        params, buffers = stack_module_state(self.models)
        if buffers:
            raise ValueError("dlfc: seed batching supports modules without buffers")
        self.params: dict[str, torch.Tensor] = params
        base = copy.deepcopy(self.models[0]).to("meta")
        self._calls = {m: _Call(base, m) for m in ("forward", "encode")}

    def __len__(self) -> int:
        return len(self.models)

    def call(self, method: str, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """One seed's ``model.<method>(x)`` with that seed's (unstacked, under vmap) ``params``."""
        return functional_call(self._calls[method], {f"inner.{k}": v for k, v in params.items()}, (x,))

    def encoder_params(self) -> dict[str, torch.Tensor]:
        """The parameters the clustering phase trains (the decoder is not part of its model)."""
        return {k: v for k, v in self.params.items() if not _is_decoder(k)}

    @torch.no_grad()
    def encode_all(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(S, N, K) latent vectors of the whole data set for every seed."""
        chunk = max(256, chunk // len(self))
        encode = torch.vmap(lambda p, xb: self.call("encode", p, xb), in_dims=(0, None))
        params = self.encoder_params()
        return torch.cat([encode(params, x[i : i + chunk]) for i in range(0, len(x), chunk)], dim=1)

    @torch.no_grad()
    def write_back(self) -> None:
        for i, model in enumerate(self.models):
            for name, p in model.named_parameters():
                p.copy_(self.params[name][i])


def pretrain_stacked(
    stack: StackedModels,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    generators: Sequence[torch.Generator],
    momentum: float = 0.9,
    max_batches: int | None = None,
    on_epoch: Callable[[int, list[float]], None] | None = None,
) -> list[list[float]]:
    """:func:`~harness_dlfc.pretrain.pretrain` for S seeds at once; returns each seed's loss curve.

    Seed i's batches are ``x[order_i[...]]`` with ``order_i`` drawn from ``generators[i]``, as in
    the single-seed code. One host synchronisation per epoch (the S epoch losses).
    """
    tensors = list(stack.params.values())
    optimizer = MomentumSGD(tensors, learning_rate, momentum)
    losses_of = torch.vmap(lambda p, xb: F.mse_loss(stack.call("forward", p, xb), xb))

    def step(xb: torch.Tensor) -> torch.Tensor:  # xb: (S, B, C, H, W)
        losses = losses_of(stack.params, xb)
        optimizer.step(torch.autograd.grad(losses.sum(), tensors))
        return losses.detach()

    run = None
    n = len(x)
    history: list[list[float]] = [[] for _ in generators]
    for epoch in range(epochs):
        orders = device_order(torch.stack([torch.randperm(n, generator=g) for g in generators]), x.device)
        total = torch.zeros(len(generators), device=x.device)
        seen = 0
        for b, start in enumerate(range(0, n, batch_size)):
            if max_batches is not None and b >= max_batches:
                break
            batch = x[orders[:, start : start + batch_size]]
            if run is None:
                run = compile_step(step, [batch], optimizer.state)
            losses = run(batch)
            total += losses * batch.shape[1]
            seen += batch.shape[1]
        epoch_losses = (total / seen).tolist()
        for curve, loss in zip(history, epoch_losses, strict=True):
            curve.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, epoch_losses)
    stack.write_back()
    return history


def cluster_stacked(
    stack: StackedModels,
    centres: torch.Tensor,
    x: torch.Tensor,
    initial_labels: Sequence[np.ndarray],
    *,
    batch_size: int,
    max_iterations: int,
    interval: int,
    tolerance: float,
    alpha: float = 1.0,
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    on_update: Callable[[int, int, np.ndarray, float, float], None] | None = None,
) -> list[ClusteringOutcome]:
    """:func:`~harness_dlfc.clustering.cluster` for S seeds; ``centres`` is (S, K, d), trained in place.

    All seeds see the same sequential batches (the single-seed order has no randomness) against
    their own target distribution. ``on_update(seed_index, iteration, labels, delta, loss)`` is
    called per seed at its target updates, until that seed stops by tolerance; from then on the
    seed is masked out of every update, so its weights stay those of its stop. The loop ends when
    every seed has stopped or at ``max_iterations``. Writes the trained encoders back.
    """
    s = len(stack)
    centres.requires_grad_(True)
    encoder = stack.encoder_params()
    trained = [*encoder.values(), centres]
    optimizer = MomentumSGD(trained, learning_rate, momentum)
    active = torch.ones(s, dtype=torch.bool, device=x.device)  # changed in place only: graphs read it

    def seed_loss(
        p: dict[str, torch.Tensor], mu: torch.Tensor, pb: torch.Tensor, xb: torch.Tensor
    ) -> torch.Tensor:
        return keras_kld(pb, soft_assign(stack.call("encode", p, xb), mu, alpha))

    losses_of = torch.vmap(seed_loss, in_dims=(0, 0, 0, None))

    def step(xb: torch.Tensor, pb: torch.Tensor) -> torch.Tensor:  # xb (B, C, H, W) shared, pb (S, B, K)
        losses = losses_of(encoder, centres, pb, xb)
        optimizer.step(torch.autograd.grad(losses.sum(), trained), active)
        return losses.detach()

    run = None
    n = len(x)
    previous = [np.asarray(labels) for labels in initial_labels]
    deltas = [float("nan")] * s
    outcomes: list[ClusteringOutcome | None] = [None] * s
    p = losses = None
    index = 0
    for it in range(max_iterations):
        if it % interval == 0:
            with torch.no_grad():
                q = torch.vmap(soft_assign, in_dims=(0, 0, None))(
                    stack.encode_all(x), centres.detach(), alpha
                )
                p = torch.vmap(target_distribution)(q)
            labels = q.argmax(dim=2).cpu().numpy()
            last = np.full(s, np.nan) if losses is None else losses.cpu().numpy()
            for i in range(s):
                if outcomes[i] is not None:
                    continue
                deltas[i] = float(np.mean(labels[i] != previous[i]))
                previous[i] = labels[i]
                if on_update is not None:
                    on_update(i, it, labels[i], deltas[i], float(last[i]))
                if it > 0 and deltas[i] < tolerance:
                    outcomes[i] = ClusteringOutcome(labels[i], it, True, deltas[i])
                    active[i] = False
            if all(o is not None for o in outcomes):
                break
        # the single-seed loop's batch arithmetic (see clustering.cluster)
        if index * batch_size >= n:
            index = 0
        start, stop = index * batch_size, min((index + 1) * batch_size, n)
        if run is None:
            run = compile_step(step, (x[start:stop], p[:, start:stop]), optimizer.state)
        losses = run(x[start:stop], p[:, start:stop])
        index = index + 1 if (index + 1) * batch_size <= n else 0
    stack.write_back()
    return [
        o if o is not None else ClusteringOutcome(previous[i], max_iterations, False, deltas[i])
        for i, o in enumerate(outcomes)
    ]
