"""DLFC's two autoencoders (specs/dlfc.md §1.5): the convolutional one and the MLP one.

Both map an image to a latent vector of size K (the number of clusters, unlike DEC's fixed 10),
optionally gated by the "softmax attention" z ⊙ softmax(W z + b), which sits inside the encoder so
that k-means and the clustering layer see the gated vector. Layers start like Keras' defaults
(glorot_uniform kernels, zero biases), not like PyTorch's kaiming-uniform defaults.

Tensors are channels-first inside (PyTorch), but the flatten/reshape between convolutions and dense
layers uses Keras' channels-last (H, W, C) order, so the authors' Dense kernels load unchanged.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from harness_dlfc.padding import SameConv2d, SameConvTranspose2d

CONV_FILTERS = (32, 64)
"""Hard-coded in the seed's conv autoencoder; kernel 3, stride 2."""
MLP_WIDTHS = (500, 500, 2000)
"""The DEC widths of the seed's MLP autoencoder, before the optional ``include_layer``."""


def _halve(size: int) -> int:
    """Output length of a stride-2 "same" convolution: ceil(size / 2)."""
    return -(-size // 2)


def keras_init(module: nn.Module) -> None:
    """Keras defaults: glorot_uniform kernels, zero biases (PyTorch's own init differs)."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            # xavier_uniform_ uses fan_in + fan_out, which is the same sum for Keras' and
            # PyTorch's kernel layouts (conv and transposed conv alike).
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class Attention(nn.Module):
    """The seed's "attention": z' = z ⊙ softmax(W z + b), W ∈ R^{K×K} (Keras layer attention_vec)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(size, size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.softmax(self.dense(z), dim=-1)


class ConvAutoencoder(nn.Module):
    """Conv(32, s2) → Conv(64, s2) → Dense(K) [→ attention] → Dense → ConvT(64, s2) → ConvT(32, s2) → ConvT(C) → sigmoid.

    For 28×28×1 and K = 10 this has 140,363 parameters (140,473 with attention), as the Keras
    model. Sizes that are not multiples of 4 give a decoder output of 4·ceil(H/4), cropped back
    to H×W (the seed only ran sizes divisible by 4).
    """

    def __init__(self, input_shape: tuple[int, int, int], n_clusters: int, attention: bool = False) -> None:
        super().__init__()
        h, w, c = input_shape
        self.input_shape = (h, w, c)
        f1, f2 = CONV_FILTERS
        self.description = f"conv autoencoder, input {h}x{w}x{c}, K={n_clusters}, attention={attention}"
        self.code_hw = (_halve(_halve(h)), _halve(_halve(w)))  # two stride-2 "same" convolutions
        flat = self.code_hw[0] * self.code_hw[1] * f2
        self.conv1 = SameConv2d(c, f1, 3, stride=2)
        self.conv2 = SameConv2d(f1, f2, 3, stride=2)
        self.latent = nn.Linear(flat, n_clusters)
        self.attention = Attention(n_clusters) if attention else None
        self.expand = nn.Linear(n_clusters, flat)
        self.deconv1 = SameConvTranspose2d(f2, f2, 3, stride=2)
        self.deconv2 = SameConvTranspose2d(f2, f1, 3, stride=2)
        self.deconv3 = SameConvTranspose2d(f1, c, 3, stride=1)
        keras_init(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images → (N, K) latent vectors (after the attention gate, if any)."""
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        z = self.latent(x.permute(0, 2, 3, 1).flatten(1))  # Keras Flatten: (H, W, C) order
        return self.attention(z) if self.attention is not None else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, K) latent vectors → (N, C, H, W) reconstructions in (0, 1)."""
        h, w = self.code_hw
        x = self.expand(z).view(-1, h, w, CONV_FILTERS[1]).permute(0, 3, 1, 2)  # linear, no ReLU
        x = torch.relu(self.deconv1(x))
        x = torch.relu(self.deconv2(x))
        x = torch.sigmoid(self.deconv3(x))
        return x[..., : self.input_shape[0], : self.input_shape[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class MLPAutoencoder(nn.Module):
    """DEC's MLP [D, 500, 500, 2000, (include_layer), K] with a linear embedding and a linear output.

    Takes the same (N, C, H, W) images as the conv autoencoder and flattens them in (H, W, C)
    order, as the seed's ``reshape(N, -1)`` of channels-last arrays did.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_clusters: int,
        attention: bool = False,
        include_layer: int | None = None,
    ) -> None:
        super().__init__()
        h, w, c = input_shape
        self.input_shape = (h, w, c)
        self.description = (
            f"MLP autoencoder, input {h}x{w}x{c}, K={n_clusters}, "
            f"attention={attention}, include_layer={include_layer}"
        )
        widths = [h * w * c, *MLP_WIDTHS, *([include_layer] if include_layer else []), n_clusters]
        enc: list[nn.Module] = []
        for i, (a, b) in enumerate(pairwise(widths)):
            enc.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                enc.append(nn.ReLU())
        dec: list[nn.Module] = []
        back = widths[::-1]
        for i, (a, b) in enumerate(pairwise(back)):
            dec.append(nn.Linear(a, b))
            if i < len(back) - 2:
                dec.append(nn.ReLU())
        self.encoder = nn.Sequential(*enc)
        self.attention = Attention(n_clusters) if attention else None
        self.decoder = nn.Sequential(*dec)
        keras_init(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x.permute(0, 2, 3, 1).flatten(1))
        return self.attention(z) if self.attention is not None else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h, w, c = self.input_shape
        return self.decoder(z).view(-1, h, w, c).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def build_autoencoder(
    mode: str,
    input_shape: tuple[int, int, int],
    n_clusters: int,
    attention: bool = False,
    include_layer: int | None = None,
) -> ConvAutoencoder | MLPAutoencoder:
    """The autoencoder the seed builds for ``-m mode``: ``ae`` is the MLP, ``cae``/``dae`` the conv one.

    ``dae`` is the seed's first name for the conv autoencoder; its noise was commented out in every
    version that ran, so it is the same network (specs/dlfc.md §1.4). ``include_layer`` only
    affects the MLP, as in the seed.
    """
    if mode == "ae":
        return MLPAutoencoder(input_shape, n_clusters, attention, include_layer)
    if mode in ("cae", "dae"):
        return ConvAutoencoder(input_shape, n_clusters, attention)
    raise ValueError(f"dlfc: mode must be one of 'ae', 'cae', 'dae', got {mode!r}")
