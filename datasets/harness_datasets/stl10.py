"""STL-10's labelled images from its canonical binary distribution, ``stl10_binary.tar.gz``.

Conversions: the 5,000 training then the 8,000 test images (the 100,000 unlabelled ones are not
clustered and are skipped). Each image is 96×96×3 uint8 bytes, stored channel by channel, each
channel in column-major order (the files were written from MATLAB); they become (H, W, C) rows
first, divided by 255. Labels are stored 1..10 and become 0..9. The members are read from the
verified archive into memory (:mod:`harness_datasets.archives`); nothing is extracted to disk.
Reading streams the whole 2.6 GB archive, so a load takes a while.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from harness import Dataset
from harness.data import DataError, FileDataset, Resource
from harness_datasets.archives import read_members

SIDE = 96
IMAGE = 3 * SIDE * SIDE


class STL10(FileDataset):
    name = "stl10"
    description = "STL-10 labelled colour photos, 10 classes (binary version)"
    n_classes = 10
    image_shape = (SIDE, SIDE, 3)
    n_samples = 13_000
    archive: ClassVar[str] = "stl10/stl10_binary.tar.gz"
    # torchvision lists the MD5 91f7769df0f17e558f3565bffb0c7dfb; this SHA256 is the one other
    # loaders of the same archive pin (MLDatasets.jl, batchup).
    sha256: ClassVar[str] = "f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866"
    size: ClassVar[int] = 2_640_397_119
    urls: ClassVar[tuple[str, ...]] = (
        "https://cs.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
        "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
    )
    folder: ClassVar[str] = "stl10_binary"
    splits: ClassVar[dict[str, int]] = {"train": 5_000, "test": 8_000}
    """Split → number of images, in the order they are concatenated."""

    def resources(self) -> list[Resource]:
        return [Resource(self.archive, (self.sha256,), self.size, self.urls)]

    def read(self, paths: list[Path]) -> Dataset:
        names = [f"{self.folder}/{split}_{kind}.bin" for split in self.splits for kind in ("X", "y")]
        members = read_members(self.name, paths[0], names)
        images, labels = [], []
        for split, count in self.splits.items():
            x = self._member(paths[0], members, f"{split}_X.bin", count * IMAGE)
            y = self._member(paths[0], members, f"{split}_y.bin", count)
            if y.min(initial=1) < 1 or y.max(initial=1) > self.n_classes:
                raise DataError(
                    f"{self.name}: archive {paths[0]} member {split}_y.bin has labels "
                    f"{y.min()}..{y.max()}, expected 1..{self.n_classes}"
                )
            # per image: channels, each column-major, i.e. (C, W, H) in C order: to (H, W, C)
            images.append(x.reshape(count, 3, SIDE, SIDE).transpose(0, 3, 2, 1))
            labels.append(y.astype(np.int64) - 1)
        return Dataset(
            name=self.name,
            images=np.concatenate(images).astype(np.float32) / 255.0,
            labels=np.concatenate(labels),
            n_classes=self.n_classes,
            variant=self.variant,
            scaling="uint8/255",
        )

    def _member(self, archive: Path, members: dict[str, bytes], name: str, expected: int) -> np.ndarray:
        raw = members[f"{self.folder}/{name}"]
        if len(raw) != expected:
            raise DataError(
                f"{self.name}: archive {archive} member {name} has {len(raw):,} bytes, expected "
                f"{expected:,}; delete it and download it again"
            )
        return np.frombuffer(raw, dtype=np.uint8)
