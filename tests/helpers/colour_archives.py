"""Small archives in the real byte layouts of CIFAR-10 and STL-10, written the way their authors
describe them (not by inverting the loaders' reshapes), so a loader test can fail on a wrong axis."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np


def tar_gz(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A gzipped tar of ``members`` (name → bytes), byte-for-byte the same on every call."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, 0
            archive.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def cifar_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records of one label byte then the red, green and blue 32x32 planes, each row by row."""
    out = bytearray()
    for image, label in zip(images, labels, strict=True):
        out.append(int(label))
        for channel in range(3):
            out += image[:, :, channel].tobytes(order="C")
    return bytes(out)


def stl_images(images: np.ndarray) -> bytes:
    """STL-10's ``*_X.bin``: per image, channel after channel, each channel column by column."""
    return b"".join(image[:, :, c].tobytes(order="F") for image in images for c in range(3))


def random_images(n: int, side: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


def tiny_cifar(per_batch: int = 10) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Two CIFAR batches (``data_batch_1.bin``, ``test_batch.bin``): archive bytes, images, labels."""
    images = random_images(2 * per_batch, 32, seed=10)
    labels = np.arange(2 * per_batch, dtype=np.uint8) % 10
    members = {
        "cifar-10-batches-bin/batches.meta.txt": b"airplane\nautomobile\n",
        "cifar-10-batches-bin/data_batch_1.bin": cifar_batch(images[:per_batch], labels[:per_batch]),
        "cifar-10-batches-bin/test_batch.bin": cifar_batch(images[per_batch:], labels[per_batch:]),
    }
    return tar_gz(members), images, labels


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
