"""The built-in datasets of harness, registered through the ``harness`` entry-point group.

Every image set is the papers' clustering protocol: train and test splits concatenated, one
channel, pixels scaled to [0, 1]. Each module's docstring records its conversions.
"""

from __future__ import annotations

from harness import DatasetSpec, hookimpl
from harness_datasets.coil20 import COIL20
from harness_datasets.digits import Digits
from harness_datasets.mnist import MNIST, FashionMNIST
from harness_datasets.usps import USPS

BUILT_IN = (Digits(), MNIST(), FashionMNIST(), USPS(), COIL20())


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [dataset.spec() for dataset in BUILT_IN]
