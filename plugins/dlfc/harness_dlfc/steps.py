"""Training-step machinery shared by the single-seed and the seed-batched loops.

* :class:`MomentumSGD`: SGD with momentum written with the same ``_foreach`` operations as
  ``torch.optim.SGD`` (no dampening, no Nesterov), so the numbers match it bit for bit, plus an
  optional per-seed mask for stacked weights: a converged seed's parameters *and* momentum buffers
  stay frozen (with a zero gradient alone, momentum would keep moving them).
* :func:`compile_step`: a step (forward + backward + update) is ~100 tiny kernels, so on a GPU its
  time is launch and Python overhead. On CUDA the step is recorded once as a CUDA graph with
  static input buffers and replayed; on the CPU it runs eagerly (graphs do not exist there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Step = Callable[..., Tensor]


class MomentumSGD:
    """``torch.optim.SGD(params, lr, momentum)`` on explicit tensors, optionally masked per seed.

    The momentum buffers start at zero: ``0·m + g = g`` is exactly the clone of the first gradient
    that ``torch.optim.SGD`` makes. Buffers exist from the start, so a CUDA graph can capture them.
    """

    def __init__(self, params: Sequence[Tensor], lr: float, momentum: float) -> None:
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.buffers = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    @property
    def state(self) -> list[Tensor]:
        """Every tensor a step changes in place (what a graph's warm-up must restore)."""
        return [*self.params, *self.buffers]

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor], active: Tensor | None = None) -> None:
        """One update. ``active`` (bool, one entry per seed on the leading axis) freezes the others."""
        if active is None:
            torch._foreach_mul_(self.buffers, self.momentum)
            torch._foreach_add_(self.buffers, list(grads))
            torch._foreach_add_(self.params, self.buffers, alpha=-self.lr)
            return
        buffers = torch._foreach_mul(self.buffers, self.momentum)
        torch._foreach_add_(buffers, list(grads))
        params = torch._foreach_add(self.params, buffers, alpha=-self.lr)
        for old_b, new_b, old_p, new_p in zip(self.buffers, buffers, self.params, params, strict=True):
            keep = active.view(-1, *([1] * (old_p.dim() - 1)))
            old_b.copy_(torch.where(keep, new_b, old_b))
            old_p.copy_(torch.where(keep, new_p, old_p))


class GraphedStep:
    """``step(*inputs)`` recorded as a CUDA graph over static input buffers, then replayed.

    Recording needs a few warm-up calls (on a side stream, as PyTorch's CUDA-graph notes ask);
    they change ``state`` (parameters, momentum), so it is saved before and restored after, and
    training starts from exactly where it was. Inputs of another shape (the last, partial batch of
    an epoch) run eagerly on the same tensors. The returned output is a static tensor, overwritten
    by the next replay: read it (or queue work on it) before the next call.
    """

    def __init__(
        self, step: Step, example_inputs: Sequence[Tensor], state: Sequence[Tensor], warmup: int = 3
    ) -> None:
        self.step = step
        self.inputs = [t.detach().clone() for t in example_inputs]
        saved = [t.detach().clone() for t in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = step(*self.inputs)
        with torch.no_grad():
            for t, s in zip(state, saved, strict=True):
                t.copy_(s)

    def __call__(self, *inputs: Tensor) -> Tensor:
        if any(i.shape != s.shape for i, s in zip(inputs, self.inputs, strict=True)):
            return self.step(*inputs)
        for s, i in zip(self.inputs, inputs, strict=True):
            s.copy_(i)
        self.graph.replay()
        return self.output


def compile_step(step: Step, example_inputs: Sequence[Tensor], state: Sequence[Tensor]) -> Step:
    """``step`` as it should run where its inputs live: a replayed CUDA graph on CUDA, else eager.

    ``HARNESS_DLFC_GRAPHS=0`` turns graphs off (to compare with the eager path on a GPU).
    """
    import os

    if example_inputs[0].device.type != "cuda" or os.environ.get("HARNESS_DLFC_GRAPHS", "1") == "0":
        return step
    return GraphedStep(step, example_inputs, state)
