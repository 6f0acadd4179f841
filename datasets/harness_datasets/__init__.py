"""The built-in datasets of harness, registered through the ``harness`` entry-point group.

Every image set is the papers' clustering protocol: train and test splits concatenated (MNIST-test:
the test split alone), pixels scaled to [0, 1]; CIFAR-10 and STL-10 keep their three colour
channels. Each module's docstring records its conversions. :mod:`harness_datasets.files` reads the
datasets users declare in a sweep's config (feature arrays, image folders).
"""

from __future__ import annotations

from harness import DatasetFormat, DatasetSpec, hookimpl
from harness_datasets.cifar10 import CIFAR10
from harness_datasets.coil20 import COIL20
from harness_datasets.digits import Digits
from harness_datasets.files import FORMATS
from harness_datasets.mnist import MNIST, FashionMNIST, MNISTTest
from harness_datasets.stl10 import STL10
from harness_datasets.usps import USPS

BUILT_IN = (Digits(), MNIST(), MNISTTest(), FashionMNIST(), USPS(), COIL20(), CIFAR10(), STL10())


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [dataset.spec() for dataset in BUILT_IN]


@hookimpl
def harness_dataset_formats() -> list[DatasetFormat]:
    return list(FORMATS)
