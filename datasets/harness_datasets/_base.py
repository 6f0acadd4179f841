"""What the file-backed datasets share: a table of canonical files and a spec built from it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from harness import Dataset, DatasetSpec
from harness.data import Resource, ensure


class FileDataset:
    """A dataset read from canonical files under ``<data dir>/<folder>/``.

    Subclasses set the class attributes and implement :meth:`read`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    n_classes: ClassVar[int]
    image_shape: ClassVar[tuple[int, int, int]]
    n_samples: ClassVar[int]
    variant: ClassVar[str] = "train+test"

    def resources(self) -> list[Resource]:
        raise NotImplementedError

    def fetch(self, root: Path, download: bool = False) -> list[Path]:
        return ensure(self.name, self.resources(), Path(root), download)

    def load(self, root: Path) -> Dataset:
        paths = self.fetch(root, download=False)
        dataset = self.read(paths)
        if len(dataset.labels) != self.n_samples:
            raise ValueError(f"{self.name}: read {len(dataset.labels)} samples, expected {self.n_samples}")
        return dataset

    def read(self, paths: list[Path]) -> Dataset:
        raise NotImplementedError

    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            name=self.name,
            n_classes=self.n_classes,
            image_shape=self.image_shape,
            n_samples=self.n_samples,
            fetch=self.fetch,
            load=self.load,
            description=self.description,
            variant=self.variant,
            checksums=tuple(r.sha256[0] for r in self.resources()),
        )
