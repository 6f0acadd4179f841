"""CIFAR-10 from its canonical binary distribution, ``cifar-10-binary.tar.gz``.

Never the pickled "python version": no pickle is ever loaded. Conversions: the five training
batches then the test batch, in that order (50,000 + 10,000 images). Each 3,073-byte record is one
label byte (0..9, kept) and 3,072 pixel bytes: the red, green and blue 32×32 planes, each row-major;
they become (H, W, C) colour images, divided by 255. The members are read from the verified
archive into memory (:mod:`harness_datasets.archives`); nothing is extracted to disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from harness import Dataset
from harness.data import DataError, FileDataset, Resource
from harness_datasets.archives import read_members

SIDE = 32
RECORD = 1 + 3 * SIDE * SIDE


class CIFAR10(FileDataset):
    name = "cifar10"
    description = "CIFAR-10 colour photos, 10 classes (binary version)"
    n_classes = 10
    image_shape = (SIDE, SIDE, 3)
    n_samples = 60_000
    archive: ClassVar[str] = "cifar10/cifar-10-binary.tar.gz"
    # TensorFlow Datasets' url_checksums/cifar10.txt; the MD5 the authors publish on their page is
    # c32a1d4ab5d03f1284b67883e8d87530.
    sha256: ClassVar[str] = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    size: ClassVar[int] = 170_052_171
    urls: ClassVar[tuple[str, ...]] = ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",)
    batches: ClassVar[tuple[str, ...]] = (
        *(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
        "cifar-10-batches-bin/test_batch.bin",
    )
    records_per_batch: ClassVar[int] = 10_000

    def resources(self) -> list[Resource]:
        return [Resource(self.archive, (self.sha256,), self.size, self.urls)]

    def read(self, paths: list[Path]) -> Dataset:
        members = read_members(self.name, paths[0], self.batches)
        images, labels = zip(
            *(self._batch(paths[0], name, members[name]) for name in self.batches), strict=True
        )
        return Dataset(
            name=self.name,
            images=np.concatenate(images).astype(np.float32) / 255.0,
            labels=np.concatenate(labels).astype(np.int64),
            n_classes=self.n_classes,
            variant=self.variant,
            scaling="uint8/255",
        )

    def _batch(self, archive: Path, name: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
        expected = self.records_per_batch * RECORD
        if len(raw) != expected:
            raise DataError(
                f"{self.name}: archive {archive} member {name} has {len(raw):,} bytes, expected "
                f"{expected:,} ({self.records_per_batch:,} records of {RECORD:,}); delete it and download it again"
            )
        records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
        labels = records[:, 0]
        if labels.max(initial=0) >= self.n_classes:
            raise DataError(
                f"{self.name}: archive {archive} member {name} has label {labels.max()}, expected 0..9"
            )
        # (N, C, H, W) planes, row-major within each: to (N, H, W, C)
        images = records[:, 1:].reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
        return images, labels
