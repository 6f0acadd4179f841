"""Built-in datasets on the real files: shapes, label counts, ordering, checksum failures."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from harness.data import DataError, Resource, ensure
from harness_datasets import COIL20, MNIST, USPS, Digits, FashionMNIST

pytestmark = pytest.mark.data


def test_digits_offline(tmp_path):
    ds = Digits().load(tmp_path)  # an empty data directory: nothing to fetch
    assert ds.images.shape == (1797, 8, 8, 1) and ds.images.dtype == np.float32
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0
    assert np.bincount(ds.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_mnist(shared_data):
    ds = MNIST().load(shared_data)
    assert ds.images.shape == (70000, 28, 28, 1) and ds.images.dtype == np.float32
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0
    train = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(ds.labels[:60000]).tolist() == train
    assert np.bincount(ds.labels[60000:]).tolist() == test
    assert ds.variant == "train+test"


def test_fashion_mnist(shared_data):
    ds = FashionMNIST().load(shared_data)
    assert ds.images.shape == (70000, 28, 28, 1)
    assert np.bincount(ds.labels).tolist() == [7000] * 10


def test_usps(shared_data):
    ds = USPS().load(shared_data)
    assert ds.images.shape == (9298, 16, 16, 1)
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert np.bincount(ds.labels[:7291]).tolist() == [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
    assert ds.labels[:10].tolist() == [6, 5, 4, 7, 3, 6, 3, 1, 0, 1]
    assert ds.labels[7291:7301].tolist() == [9, 6, 3, 6, 6, 0, 0, 0, 6, 9]


def test_coil20_order_and_labels(shared_data):
    ds = COIL20().load(shared_data)
    assert ds.images.shape == (1440, 128, 128, 1)
    assert ds.labels.tolist() == [obj for obj in range(20) for _ in range(72)]
    from PIL import Image

    folder = shared_data / "coil20" / "coil-20-proc"
    first_pose_of_obj2 = np.asarray(Image.open(folder / "obj2__0.png"), dtype=np.float32) / 255
    np.testing.assert_array_equal(ds.images[72, :, :, 0], first_pose_of_obj2)
    pose_10_of_obj1 = np.asarray(Image.open(folder / "obj1__10.png"), dtype=np.float32) / 255
    np.testing.assert_array_equal(ds.images[10, :, :, 0], pose_10_of_obj1)


def _copy_usps(shared_data, tmp_path):
    (tmp_path / "usps").mkdir()
    target = tmp_path / "usps" / "usps.h5"
    shutil.copy(shared_data / "usps" / "usps.h5", target)
    return target


def test_corrupt_file_is_named_with_expected_checksum_and_fix(shared_data, tmp_path):
    target = _copy_usps(shared_data, tmp_path)
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(
        DataError,
        match=r"usps: file .*usps\.h5 is corrupt: SHA256 [0-9a-f]{64}, expected 734f88c5.*harness data --download usps",
    ):
        USPS().load(tmp_path)


def test_truncated_file(shared_data, tmp_path):
    target = _copy_usps(shared_data, tmp_path)
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(DataError, match="usps.h5 truncated: 1,000 bytes, expected 2,913,522"):
        USPS().load(tmp_path)


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(
        DataError,
        match=r"mnist: missing file .*train-images-idx3-ubyte\.gz; run `harness data --download mnist`.*--data-dir",
    ):
        MNIST().load(tmp_path)


def test_corrupt_coil20_png(shared_data, tmp_path):
    shutil.copytree(shared_data / "coil20" / "coil-20-proc", tmp_path / "coil20" / "coil-20-proc")
    png = tmp_path / "coil20" / "coil-20-proc" / "obj7__33.png"
    png.write_bytes(png.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match="obj7__33.png is corrupt"):
        COIL20().load(tmp_path)


def test_download_tries_mirrors_and_verifies(shared_data, tmp_path):
    # Mirrors are file:// URLs here: the same code path as http, with no network.
    good = (shared_data / "usps" / "usps.h5").as_uri()
    bad_source = tmp_path / "bad.h5"
    bad_source.write_bytes(b"x" * 2_913_522)
    resource = USPS().resources()[0]
    dest = tmp_path / "cache"

    mirrored = Resource(resource.path, resource.sha256, resource.size, ("file:///nonexistent/usps.h5", good))
    paths = ensure("usps", [mirrored], dest, download_missing=True)
    assert paths == [dest / "usps" / "usps.h5"] and paths[0].stat().st_size == 2_913_522

    only_bad = Resource(resource.path, resource.sha256, resource.size, (bad_source.as_uri(),))
    with pytest.raises(DataError, match="could not download usps/usps.h5 from any mirror .*is corrupt"):
        ensure("usps", [only_bad], tmp_path / "cache2", download_missing=True)
    assert not (tmp_path / "cache2" / "usps" / "usps.h5").exists()
