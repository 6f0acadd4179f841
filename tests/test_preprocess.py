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


def test_colour_keeps_three_channels_through_resizing_and_flattening():
    x = np.random.default_rng(2).random((2, 8, 8, 3), dtype=np.float32)
    image = prepare(_dataset(x), 12, "bilinear", "image")
    assert image.shape == (2, 12, 12, 3)
    # each channel is resized on its own: the green channel of the result is the green one resized
    np.testing.assert_array_equal(image[..., 1:2], resize(x[..., 1:2], 12, "bilinear"))
    flat = prepare(_dataset(x), 8, "none", "flat")
    assert flat.shape == (2, 8 * 8 * 3)
    np.testing.assert_array_equal(flat[0, :3], x[0, 0, 0])  # (H, W, C) order: a pixel's R, G, B together


def test_grey_is_pillows_luma_and_leaves_grey_images_alone():
    from PIL import Image

    rgb = np.random.default_rng(3).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    out = prepare(_dataset(rgb.astype(np.float32) / 255), 7, "none", "image", channels="grey")
    assert out.shape == (2, 5, 7, 1) and out.dtype == np.float32
    pillow = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])[..., None] / 255
    np.testing.assert_allclose(out, pillow, atol=1 / 255)  # Pillow rounds to 8 bits, we do not
    one = np.random.default_rng(4).random((2, 4, 4, 1), dtype=np.float32)
    assert prepare(_dataset(one), 4, "none", "image", channels="grey") is one


def test_native_size_never_resizes_non_square_arrays():
    vectors = np.random.default_rng(5).random((3, 1, 20, 1), dtype=np.float32)  # feature vectors
    np.testing.assert_array_equal(prepare(_dataset(vectors), 1, "none", "flat"), vectors.reshape(3, 20))
