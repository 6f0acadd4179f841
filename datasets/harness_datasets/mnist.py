"""MNIST and Fashion-MNIST from their canonical gzipped IDX files, and MNIST's test set alone.

Conversions: train (60,000) then test (10,000) images concatenated in file order; uint8 pixels
divided by 255; labels as stored (0..9). ``mnist-test`` is the 10,000 test images only (the
"MNIST-test" of the DEC papers), read from the same two ``t10k`` files as ``mnist``.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness import Dataset
from harness.data import FileDataset, Resource

_IDX_MAGIC = {1: 2049, 3: 2051}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes (big-endian header: magic, then one int per axis)."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    header = np.frombuffer(raw, dtype=">i4", count=1 + ndim)
    if header[0] != _IDX_MAGIC[ndim]:
        raise ValueError(f"{path}: IDX magic {header[0]}, expected {_IDX_MAGIC[ndim]}")
    shape = tuple(int(n) for n in header[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim))
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} values for shape {shape}")
    return data.reshape(shape)


class MNIST(FileDataset):
    name = "mnist"
    description = "MNIST handwritten digits"
    n_classes = 10
    image_shape = (28, 28, 1)
    n_samples = 70_000
    folder: ClassVar[str] = "mnist"
    mirrors: ClassVar[tuple[str, ...]] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://yann.lecun.com/exdb/mnist/",
    )
    splits: ClassVar[tuple[str, ...]] = ("train", "t10k")
    """The IDX file prefixes read, in the order they are concatenated."""
    # file name -> (accepted SHA256 digests, size in bytes)
    files: ClassVar[dict[str, tuple[tuple[str, ...], int]]] = {
        # The second digest is a re-gzipped copy (gzip mtime 0) of the identical IDX payload, the
        # form the canonical file takes where it could only be rebuilt (see ../shared/data/MANIFEST.md).
        "train-images-idx3-ubyte.gz": (
            (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "2be8c1eaa2afc259d8abd089406fc988ec94510ef77178350dc44aca12d23239",
            ),
            9_912_422,
        ),
        "train-labels-idx1-ubyte.gz": (
            ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
            28_881,
        ),
        "t10k-images-idx3-ubyte.gz": (
            ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
            1_648_877,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
            4_542,
        ),
    }

    def resources(self) -> list[Resource]:
        return [
            Resource(f"{self.folder}/{name}", digests, size, tuple(m + name for m in self.mirrors))
            for name, (digests, size) in self.files.items()
            if name.split("-")[0] in self.splits
        ]

    def read(self, paths: list[Path]) -> Dataset:
        by_name = {p.name: p for p in paths}
        images = np.concatenate(
            [read_idx(by_name[f"{split}-images-idx3-ubyte.gz"], 3) for split in self.splits]
        )
        labels = np.concatenate(
            [read_idx(by_name[f"{split}-labels-idx1-ubyte.gz"], 1) for split in self.splits]
        )
        return Dataset(
            name=self.name,
            images=(images.astype(np.float32) / 255.0)[..., np.newaxis],
            labels=labels.astype(np.int64),
            n_classes=self.n_classes,
            variant=self.variant,
            scaling="uint8/255",
        )


class MNISTTest(MNIST):
    name = "mnist-test"
    description = "MNIST's 10,000 test images alone (the DEC papers' MNIST-test)"
    n_samples = 10_000
    variant = "test"
    splits = ("t10k",)


class FashionMNIST(MNIST):
    name = "fmnist"
    description = "Fashion-MNIST clothing images (Zalando)"
    folder = "fashion-mnist"
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    files = {
        "train-images-idx3-ubyte.gz": (
            ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",),
            26_421_880,
        ),
        "train-labels-idx1-ubyte.gz": (
            ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",),
            29_515,
        ),
        "t10k-images-idx3-ubyte.gz": (
            ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",),
            4_422_102,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",),
            5_148,
        ),
    }
