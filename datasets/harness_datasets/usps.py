"""USPS handwritten digits from the ``usps.h5`` file in circulation as Kaggle's "USPS dataset".

Conversions: train (7,291) then test (2,007) concatenated in file order; the 256 values per row
are a 16×16 image in row-major order, already in [0, 1] (the ESL ``zip.train``/``zip.test`` data
rescaled from [-1, 1]), so they are used as stored. (DLFC divided this file by 255 a second time,
and DEC-keras halved its own [0, 2] copy; both end here in [0, 1].) Labels are 0..9 as stored.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from harness import Dataset
from harness.data import FileDataset, Resource


class USPS(FileDataset):
    name = "usps"
    description = "USPS handwritten digits (ESL zip.train + zip.test)"
    n_classes = 10
    image_shape = (16, 16, 1)
    n_samples = 9_298

    def resources(self) -> list[Resource]:
        return [
            Resource(
                "usps/usps.h5",
                ("734f88c541104a956d88be2c95d03b4a463ffd74ccc2ba9c80841fb98e3fcb36",),
                2_913_522,
                # Kaggle needs a login; this copy of the same file is pinned to a commit.
                (
                    "https://raw.githubusercontent.com/niuers/Learning-From-Data-A-Short-Course/"
                    "879a698b960e5867f7c2b11f8938fa89c3d21839/data/usps.h5",
                ),
            )
        ]

    def read(self, paths: list[Path]) -> Dataset:
        # Plain HDF5 reads: no pickle, no code from the file is executed.
        with h5py.File(paths[0], "r") as fh:
            data = np.concatenate([fh["train/data"][()], fh["test/data"][()]])
            target = np.concatenate([fh["train/target"][()], fh["test/target"][()]])
        return Dataset(
            name=self.name,
            images=data.astype(np.float32).reshape(-1, 16, 16, 1),
            labels=target.astype(np.int64),
            n_classes=self.n_classes,
            variant=self.variant,
            scaling="as stored ([0,1])",
        )
