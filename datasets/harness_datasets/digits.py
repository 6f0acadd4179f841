"""scikit-learn's 8×8 handwritten digits: bundled with scikit-learn, so it works offline.

Conversions: the 1,797 images (the whole set; it has no train/test split) keep their order;
pixel counts 0..16 are divided by 16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from harness import Dataset, DatasetSpec


class Digits:
    name = "digits"
    description = "scikit-learn's handwritten digits (bundled: works offline)"

    def fetch(self, root: Path, download: bool = False) -> None:
        """Nothing to fetch: the data ships inside scikit-learn."""

    def load(self, root: Path) -> Dataset:
        bunch = load_digits()
        images = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
        return Dataset(
            name=self.name,
            images=images,
            labels=bunch.target.astype(np.int64),
            n_classes=10,
            variant="all",
            scaling="counts/16",
        )

    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            name=self.name,
            n_classes=10,
            image_shape=(8, 8, 1),
            n_samples=1797,
            fetch=self.fetch,
            load=self.load,
            description=self.description,
            variant="all",
        )
