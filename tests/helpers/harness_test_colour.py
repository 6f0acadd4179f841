"""A plugin with a tiny CIFAR-10 (``--plugin harness_test_colour``): the built-in loader's code on a
test-written archive of two batches, 20 colour images, whose checksum is computed here (the bytes
are the same in every process, so spawned workers verify the same file)."""

from __future__ import annotations

import hashlib

from colour_archives import tiny_cifar

from harness import DatasetSpec, hookimpl
from harness_datasets.cifar10 import CIFAR10

ARCHIVE, IMAGES, LABELS = tiny_cifar()


class TinyCIFAR10(CIFAR10):
    name = "tiny-cifar10"
    description = "two CIFAR-10 batches of 10 test-written images"
    n_samples = 20
    archive = "tiny-cifar10/cifar-10-binary.tar.gz"
    sha256 = hashlib.sha256(ARCHIVE).hexdigest()
    size = len(ARCHIVE)
    urls = ()
    batches = ("cifar-10-batches-bin/data_batch_1.bin", "cifar-10-batches-bin/test_batch.bin")
    records_per_batch = 10


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [TinyCIFAR10().spec()]
