"""Turn a loaded dataset into what a method asked for: optionally grey, resized to the input size,
then shaped."""

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

NO_RESIZE = "none"
"""The filter of a job at its dataset's native size: the images pass unchanged."""

CHANNELS = ("native", "grey")
"""``native`` keeps a dataset's channels; ``grey`` turns colour images into one luma channel."""

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""ITU-R BT.601 luma weights of R, G, B: the ones Pillow's ``convert("L")`` uses."""


def grey(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) colour in [0, 1] to (N, H, W, 1) luma in [0, 1]; other channel counts unchanged."""
    if images.shape[-1] != 3:
        return images
    out = np.tensordot(images, LUMA, axes=([3], [0]))[..., np.newaxis].astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def resize(images: np.ndarray, size: int, filter: str) -> np.ndarray:
    """Resize (N, H, W, C) float images in [0, 1] to (N, size, size, C) with a named Pillow filter.

    Each channel is resampled in Pillow's 32-bit float mode (no rounding to 8 bits); filters with
    negative lobes (bicubic, lanczos) can overshoot, so the result is clipped back to [0, 1].
    """
    if filter == NO_RESIZE or (images.shape[1] == size and images.shape[2] == size):
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


def prepare(dataset: Dataset, size: int, filter: str, input: str, channels: str = "native") -> np.ndarray:
    """The array a method receives: ``"flat"`` (N, size*size*C) or ``"image"`` (N, size, size, C).

    ``channels="grey"`` converts colour to luma first (:func:`grey`). A job at the native size has
    ``filter="none"`` and keeps its images as loaded, whatever their shape (feature vectors too).
    """
    images = grey(dataset.images) if channels == "grey" else dataset.images
    images = resize(images, size, filter)
    if input == "flat":
        return images.reshape(len(images), -1)
    return images
