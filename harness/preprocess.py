"""Turn a loaded dataset into what a method asked for: resized to the input size, then shaped."""

from __future__ import annotations

import numpy as np
from PIL import Image

from harness.types import Dataset

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize(images: np.ndarray, size: int, filter: str) -> np.ndarray:
    """Resize (N, H, W, C) float images in [0, 1] to (N, size, size, C) with a named Pillow filter.

    Each channel is resampled in Pillow's 32-bit float mode (no rounding to 8 bits); filters with
    negative lobes (bicubic, lanczos) can overshoot, so the result is clipped back to [0, 1].
    """
    if images.shape[1] == size and images.shape[2] == size:
        return images
    resample = _FILTERS[filter]
    n, _, _, channels = images.shape
    out = np.empty((n, size, size, channels), dtype=np.float32)
    for i in range(n):
        for c in range(channels):
            img = Image.fromarray(np.ascontiguousarray(images[i, :, :, c], dtype=np.float32))
            out[i, :, :, c] = np.asarray(img.resize((size, size), resample))
    np.clip(out, 0.0, 1.0, out=out)
    return out


def prepare(dataset: Dataset, size: int, filter: str, input: str) -> np.ndarray:
    """The array a method receives: ``"flat"`` (N, size*size*C) or ``"image"`` (N, size, size, C)."""
    images = resize(dataset.images, size, filter)
    if input == "flat":
        return images.reshape(len(images), -1)
    return images
