"""Resizing to the input size with a named filter, and shaping for the method."""

from __future__ import annotations

import numpy as np
import pytest

from harness import Dataset
from harness.preprocess import prepare, resize


def _dataset(images):
    return Dataset("toy", images, np.zeros(len(images), dtype=np.int64), 1, "all", "none")


def test_same_size_is_untouched():
    x = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    assert resize(x, 8, "bilinear") is x


def test_constant_image_stays_constant_under_every_filter():
    x = np.full((2, 16, 16, 1), 0.25, dtype=np.float32)
    for name in ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"):
        out = resize(x, 28, name)
        assert out.shape == (2, 28, 28, 1) and out.dtype == np.float32
        np.testing.assert_allclose(out, 0.25, atol=1e-6)


def test_filters_differ_and_results_stay_in_unit_range():
    x = np.zeros((1, 8, 8, 1), dtype=np.float32)
    x[0, ::2, ::2, 0] = 1.0  # a checkerboard: worst case for overshoot
    outs = {name: resize(x, 13, name) for name in ("nearest", "bilinear", "lanczos")}
    assert not np.allclose(outs["nearest"], outs["bilinear"])
    for out in outs.values():
        assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(np.unique(outs["nearest"]), [0.0, 1.0])


@pytest.mark.parametrize(("kind", "shape"), [("flat", (4, 100)), ("image", (4, 10, 10, 1))])
def test_prepare_shapes(kind, shape):
    x = np.random.default_rng(1).random((4, 8, 8, 1), dtype=np.float32)
    assert prepare(_dataset(x), 10, "bilinear", kind).shape == shape
