"""TensorFlow "SAME" padding for strided convolutions and transposed convolutions.

The authors' weights were trained in Keras/TensorFlow, where "same" padding is asymmetric when the
total padding is odd: the extra row/column goes *after* the data. A 3×3 stride-2 convolution of an
even-sized input therefore pads 0 before / 1 after, while PyTorch's ``padding=1`` pads 1 on both
sides. A stride-2 "same" transposed convolution keeps the *first* ``n·stride`` outputs of the full
transposed convolution, while PyTorch's ``padding=1, output_padding=1`` drops the first one.
With PyTorch's symmetric semantics the published weights reconstruct 5× worse and k-means ACC on
their latent space drops from 0.595 to 0.50 (specs/dlfc.md §1.9), so both layers below implement
TensorFlow's rule explicitly.

Both layers can also compute as *unfold + matmul* (:func:`convolution_form`).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

CONV_FORM_ENV = "HARNESS_DLFC_CONV"


def convolution_form() -> str:
    """How new layers compute: ``native`` (default; cuDNN / oneDNN convolutions) or ``matmul``.

    ``matmul`` is unfold + one matmul per layer (transposed: matmul + fold). On one seed it trades
    the convolution kernels for large matrix products and memory traffic. Under ``torch.vmap``
    with per-seed weights (the seed-stacked model of :mod:`harness_dlfc.batched`) it matters
    more: a native convolution becomes a *grouped* one, and cuDNN's grouped kernels made 10
    stacked seeds cost 9.1x one seed per epoch on an H100, while the matmul becomes one batched
    matmul over the seed axis. On the CPU (1 thread) matmul is slower, 20x against 15x for 10
    stacked seeds. It has not run on a GPU yet, so ``native`` stays the default until it has
    been measured there (``benchmarks/profile_dlfc.py`` times both forms). ``$HARNESS_DLFC_CONV``
    picks the form when a layer is built; both forms give the same numbers up to summation order
    (not a parameter, so not in the run key).
    """
    form = os.environ.get(CONV_FORM_ENV, "native")
    if form not in ("native", "matmul"):
        raise ValueError(f"${CONV_FORM_ENV} must be 'native' or 'matmul', got {form!r}")
    return form


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding that TensorFlow's "SAME" uses along one axis of length ``size``.

    The output length is ``ceil(size / stride)``; the total padding needed for it is split with
    the smaller half before the data.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding (computed per input size, so any H, W work)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        self.as_matmul = convolution_form() == "matmul"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        if not self.as_matmul:
            return super().forward(x)
        out_h, out_w = (x.shape[-2] - kh) // sh + 1, (x.shape[-1] - kw) // sw + 1
        columns = F.unfold(x, (kh, kw), stride=(sh, sw))  # (N, C·kh·kw, out_h·out_w)
        # einsum lays this out as one matmul over all N·L positions (per seed, under vmap)
        y = torch.einsum("ok,nkl->nol", self.weight.flatten(1), columns) + self.bias[:, None]
        return y.unflatten(-1, (out_h, out_w))


class SameConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with TensorFlow "SAME" semantics: output size = input size × stride.

    TensorFlow defines it as the gradient of a "SAME" convolution that maps ``n·stride`` to ``n``:
    the full transposed convolution (``(n-1)·stride + kernel`` outputs) is cropped by that
    convolution's (before, after) padding, i.e. it keeps outputs ``[before, before + n·stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        self.as_matmul = convolution_form() == "matmul"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = x.shape[-2] * sh, x.shape[-1] * sw
        top, _ = same_padding(h, kh, sh)
        left, _ = same_padding(w, kw, sw)
        if not self.as_matmul:
            full = super().forward(x)
        else:
            # each input pixel's contribution, (N, C_out·kh·kw, H·W), summed into place by fold
            full_size = ((x.shape[-2] - 1) * sh + kh, (x.shape[-1] - 1) * sw + kw)
            columns = torch.einsum("ck,ncl->nkl", self.weight.flatten(1), x.flatten(-2))
            full = F.fold(columns, full_size, (kh, kw), stride=(sh, sw)) + self.bias[:, None, None]
        return full[..., top : top + h, left : left + w]
