"""scikit-learn's 8×8 handwritten digits: bundled with scikit-learn, so it works offline.

Conversions: the 1,797 images (the whole set; it has no train/test split) keep their order;
pixel counts 0..16 are divided by 16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from harness import Dataset
from harness.data import FileDataset, Resource


class Digits(FileDataset):
    name = "digits"
    description = "scikit-learn's handwritten digits (bundled: works offline)"
    n_classes = 10
    image_shape = (8, 8, 1)
    n_samples = 1_797
    variant = "all"

    def resources(self) -> list[Resource]:
        return []  # the data ships inside scikit-learn: nothing to fetch or verify

    def read(self, paths: list[Path]) -> Dataset:
        bunch = load_digits()
        return Dataset(
            name=self.name,
            images=(bunch.images / 16.0).astype(np.float32)[..., np.newaxis],
            labels=bunch.target.astype(np.int64),
            n_classes=self.n_classes,
            variant=self.variant,
            scaling="counts/16",
        )
