"""S seeds of DEC as one stacked model: every weight carries a leading seed axis.

The networks are pure functions of lists of arrays (``keras.ops`` only, so every Keras backend
runs them): a dense layer is one batched matmul (``einsum``) over the seed axis, so S seeds cost
one kernel launch per layer instead of S. Training is stateless (:class:`Optimizer`, Keras' update rules
written out) and a whole run of steps (a pretraining epoch, or the iterations between two target updates) is
one compiled call (XLA ``jit_compile`` on TensorFlow, ``jax.jit`` on JAX): Python overhead is paid
once per call, not once per batch, which is what bounds these small models on a GPU.

Per-seed semantics equal the single-seed ones exactly: the loss is the **sum over seeds of each
seed's mean loss**, so seed s's gradient is that of its own loss, and SGD/Adam are elementwise.
A single seed is S = 1 of the same code (``method.fit_predict``).

Parameter layout (that of ``model.autoencoder``'s ``get_weights()``): ``[W_enc0, b_enc0, ...,
W_enc3, b_enc3, W_dec3, b_dec3, ..., W_dec0, b_dec0]``, W of shape (S, in, out), b (S, out).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from keras import ops

from harness_dec import runtime

EPSILON = 1e-7
"""Keras' ``backend.epsilon()``, the clipping of its ``kld`` loss (DEC-keras' loss)."""


def stack(per_seed: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Per-seed weight lists (each ``model.get_weights()``) as one list of (S, ...) arrays."""
    return [np.stack(ws).astype(np.float32) for ws in zip(*per_seed, strict=True)]


def unstack(stacked: Sequence[Any], s: int) -> list[np.ndarray]:
    """Seed ``s``'s weights, in ``model.get_weights()`` order, as NumPy arrays."""
    return [np.asarray(ops.convert_to_numpy(w[s])) for w in stacked]


def _dense(h: Any, w: Any, b: Any, relu: bool) -> Any:
    # (N, D) data shared by every seed, or (S, B, D) per-seed batches
    y = ops.einsum("nd,sdo->sno", h, w) if len(h.shape) == 2 else ops.einsum("snd,sdo->sno", h, w)
    y = y + ops.expand_dims(b, 1)
    return ops.relu(y) if relu else y


def encode(enc: Sequence[Any], x: Any) -> Any:
    """The encoders' outputs (S, N, E); ReLU inside, linear embedding (``encoder_3``)."""
    layers = len(enc) // 2
    for i in range(layers):
        x = _dense(x, enc[2 * i], enc[2 * i + 1], relu=i < layers - 1)
    return x


def decode(dec: Sequence[Any], z: Any) -> Any:
    """The decoders' reconstructions (S, N, D); ReLU inside, linear output (``decoder_0``)."""
    layers = len(dec) // 2
    for i in range(layers):
        z = _dense(z, dec[2 * i], dec[2 * i + 1], relu=i < layers - 1)
    return z


def soft_assign(z: Any, centres: Any, alpha: float = 1.0) -> Any:
    """Student-t soft assignment (DEC eq. 1) per seed: z (S, N, E), centres (S, K, E) → (S, N, K).

    The same arithmetic as :class:`harness_dec.model.ClusteringLayer`, with a seed axis.
    """
    squared = ops.sum(ops.square(ops.expand_dims(z, 2) - ops.expand_dims(centres, 1)), axis=3)
    q = ops.power(1.0 + squared / alpha, -(alpha + 1.0) / 2.0)
    return q / ops.sum(q, axis=2, keepdims=True)


def target_distribution(q: Any) -> Any:
    """DEC's target P per seed, on the device (see ``clustering.target_distribution``): q (S, N, K)."""
    weight = ops.square(q) / ops.sum(q, axis=1, keepdims=True)
    return weight / ops.sum(weight, axis=2, keepdims=True)


def _masked_mean(per_row: Any, w: Any) -> Any:
    """Each seed's mean over its real rows (w = 1; padding rows of a partial batch have w = 0)."""
    return ops.sum(per_row * w, axis=1) / ops.sum(w, axis=1)


def mse_loss(params: Sequence[Any], x: Any, idx: Any, w: Any) -> Any:
    """Per-seed MSE of the autoencoder on rows ``idx`` (S, B) of ``x`` (N, D): Keras' ``mse``."""
    half = len(params) // 2
    xb = ops.take(x, idx, axis=0)
    rec = decode(params[half:], encode(params[:half], xb))
    return _masked_mean(ops.mean(ops.square(rec - xb), axis=2), w)


def kld_loss(params: Sequence[Any], x: Any, p_flat: Any, idx: Any, w: Any) -> Any:
    """Per-seed KL(P‖Q) on rows ``idx`` (S, B): Keras' ``kld`` (both clipped to [1e-7, 1]).

    ``params`` is the encoder's list plus the centres (S, K, E) last; ``p_flat`` is the targets
    (S, N, K) reshaped to (S·N, K), so one gather takes every seed's own rows.
    """
    s, n = idx.shape[0], x.shape[0]
    q = soft_assign(encode(params[:-1], ops.take(x, idx, axis=0)), params[-1])
    offsets = ops.expand_dims(ops.arange(s, dtype="int32") * n, 1)
    p = ops.clip(ops.take(p_flat, idx + offsets, axis=0), EPSILON, 1.0)
    q = ops.clip(q, EPSILON, 1.0)
    return _masked_mean(ops.sum(p * ops.log(p / q), axis=2), w)


class Optimizer:
    """Keras' SGD(momentum) and Adam update rules on stacked arrays, as pure functions.

    Written out because Keras' ``stateless_apply`` does not exist on the TensorFlow backend; the
    formulas are those of ``keras.optimizers.SGD``/``Adam`` 3.x (a test checks them step by step
    against Keras): SGD ``m = momentum·m − lr·g; p += m``; Adam with ``alpha = lr·sqrt(1−β2^t)/(1−β1^t)``,
    ``m += (g−m)(1−β1)``, ``v += (g²−v)(1−β2)``, ``p −= alpha·m/(sqrt(v)+ε)``, ε = 1e-7.
    State: SGD ``[m...]``; Adam ``[t, m..., v...]`` (t, the step count, is shared by all seeds, which
    always take their pretraining steps together).
    """

    def __init__(
        self,
        kind: str,
        lr: float,
        momentum: float = 0.9,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        if kind not in ("sgd", "adam"):
            raise ValueError(f"dec: unknown optimizer {kind!r}")
        self.kind, self.lr, self.momentum = kind, lr, momentum
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def init(self, params: Sequence[Any]) -> list:
        zeros = [ops.zeros_like(p) for p in params]
        if self.kind == "sgd":
            return zeros
        return [ops.zeros((), dtype="float32"), *zeros, *[ops.zeros_like(p) for p in params]]

    def apply(self, state: Sequence[Any], grads: Sequence[Any], params: Sequence[Any]) -> tuple[list, list]:
        if self.kind == "sgd":
            moms = [self.momentum * m - self.lr * g for m, g in zip(state, grads, strict=True)]
            return [p + m for p, m in zip(params, moms, strict=True)], moms
        k = len(params)
        step = state[0] + 1.0
        alpha = self.lr * ops.sqrt(1.0 - ops.power(self.beta_2, step)) / (1.0 - ops.power(self.beta_1, step))
        ms = [m + (g - m) * (1.0 - self.beta_1) for m, g in zip(state[1 : k + 1], grads, strict=True)]
        vs = [
            v + (ops.square(g) - v) * (1.0 - self.beta_2) for v, g in zip(state[k + 1 :], grads, strict=True)
        ]
        new = [p - alpha * m / (ops.sqrt(v) + self.epsilon) for p, m, v in zip(params, ms, vs, strict=True)]
        return new, [step, *ms, *vs]


def _masked(active: Any, new: Any, old: Any) -> Any:
    """``new`` for active seeds, ``old`` for stopped ones; scalars (the step counter) pass."""
    if len(new.shape) < 2:
        return new
    mask = ops.reshape(active, (active.shape[0],) + (1,) * (len(new.shape) - 1))
    return ops.where(mask, new, old)


def make_runner(
    backend: str, loss: Callable[..., Any], optimizer: Optimizer, masked: bool
) -> Callable[..., Any]:
    """A compiled ``run(params, opt_vars, active, data, idx, w)`` that takes ``len(idx)`` steps.

    ``idx`` (T, S, B) int32 and ``w`` (T, S, B) float32 give each step's rows per seed; ``data``
    is the tuple of device arrays ``loss`` reads before its ``idx, w``. Returns the new params
    and optimizer state, the per-seed row-weighted loss sum over the T steps (Keras' epoch loss
    times N) and the per-seed loss of the last step. With ``masked``, seeds whose ``active`` is
    false keep their parameters *and* optimizer state: momentum would otherwise go on moving a
    converged seed after its gradient is zero.
    """
    grad_fn = runtime.value_and_grad(backend, lambda params, *args: _summed(loss(params, *args)))

    def step(carry: tuple, data: tuple, idx_t: Any, w_t: Any, active: Any) -> tuple:
        params, opt_vars, loss_sum, _ = carry
        (_, per_seed), grads = grad_fn(list(params), *data, idx_t, w_t)
        new_params, new_opt = optimizer.apply(list(opt_vars), grads, list(params))
        if masked:
            new_params = [_masked(active, a, b) for a, b in zip(new_params, params, strict=True)]
            new_opt = [_masked(active, a, b) for a, b in zip(new_opt, opt_vars, strict=True)]
        return list(new_params), list(new_opt), loss_sum + per_seed * ops.sum(w_t, axis=1), per_seed

    def run(params: list, opt_vars: list, active: Any, data: tuple, idx: Any, w: Any) -> tuple:
        zeros = ops.zeros((idx.shape[1],), dtype="float32")

        def body(t: Any, carry: tuple) -> tuple:
            return step(carry, data, ops.take(idx, t, axis=0), ops.take(w, t, axis=0), active)

        return runtime.fori_loop(backend, idx.shape[0], body, (list(params), list(opt_vars), zeros, zeros))

    return runtime.compile_fn(backend, run, donate=True)


def _summed(per_seed: Any) -> tuple[Any, Any]:
    """(the sum over seeds, to differentiate; the per-seed losses, to report)."""
    return ops.sum(per_seed), per_seed


@functools.cache
def runner(
    backend: str, loss: Callable[..., Any], kind: str, lr: float, masked: bool
) -> tuple[Optimizer, Callable[..., Any]]:
    """:func:`make_runner` with a fresh :class:`Optimizer`, compiled once per process per setting."""
    optimizer = Optimizer(kind, lr)
    return optimizer, make_runner(backend, loss, optimizer, masked)
