"""``harness.data.FileDataset``, the base class of the built-in datasets, as a third party uses it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from harness import Dataset
from harness.data import DataError, FileDataset, Resource
from harness.identity import dataset_identity, source_files


class Pairs(FileDataset):
    name = "pairs"
    description = "two classes of 2x2 images"
    n_classes = 2
    image_shape = (2, 2, 1)
    n_samples = 4
    variant = "all"
    sha256 = ""

    def resources(self) -> list[Resource]:
        return [Resource("pairs/pairs.npy", (self.sha256,))]

    def read(self, paths: list[Path]) -> Dataset:
        images = np.load(paths[0])
        return Dataset(
            name=self.name,
            images=images,
            labels=np.array([0, 0, 1, 1][: len(images)]),
            n_classes=self.n_classes,
            variant=self.variant,
            scaling="as stored",
        )


def _write(root: Path, n: int) -> str:
    path = root / "pairs" / "pairs.npy"
    path.parent.mkdir(parents=True)
    np.save(path, np.linspace(0, 1, n * 4, dtype=np.float32).reshape(n, 2, 2, 1))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_subclass_gets_fetch_load_and_its_spec_from_the_core(tmp_path):
    dataset = Pairs()
    dataset.sha256 = _write(tmp_path, 4)
    spec = dataset.spec()
    assert (spec.name, spec.n_classes, spec.image_shape, spec.n_samples, spec.variant) == (
        "pairs", 2, (2, 2, 1), 4, "all"
    )  # fmt: skip
    assert spec.checksums == (dataset.sha256,)
    loaded = spec.load(tmp_path)
    assert loaded.images.shape == (4, 2, 2, 1) and loaded.labels.tolist() == [0, 0, 1, 1]


def test_load_verifies_the_files_and_the_sample_count(tmp_path):
    dataset = Pairs()
    dataset.sha256 = "0" * 64
    _write(tmp_path, 3)
    with pytest.raises(DataError, match="pairs: file .*pairs.npy is corrupt"):
        dataset.load(tmp_path)
    dataset.sha256 = hashlib.sha256((tmp_path / "pairs" / "pairs.npy").read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="pairs: read 3 samples, expected 4"):
        dataset.load(tmp_path)


def test_a_datasets_identity_is_its_own_packages_code_not_the_cores():
    """``load`` is inherited from harness.data, but what it reads is the subclass's business."""
    from harness_datasets import Digits

    root, files = source_files(Digits().spec().load)
    assert {f.name for f in files} >= {"digits.py", "mnist.py"}
    assert "data.py" not in {f.name for f in files}
    assert (
        dataset_identity(Digits().spec(), "harness-datasets").source
        != dataset_identity(Pairs().spec(), "harness-datasets").source
    )
