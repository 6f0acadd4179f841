"""CIFAR-10, STL-10 and MNIST-test loaders on small files written here in the canonical layouts."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from colour_archives import cifar_batch, random_images, stl_images, tar_gz, tiny_cifar, write

from harness.data import DataError, ensure
from harness_datasets import CIFAR10, MNIST, STL10, MNISTTest


def _cifar(archive: bytes, n_per_batch: int = 10, **attrs) -> CIFAR10:
    """The built-in loader, pinned to a test archive of two batches."""
    cls = type(
        "TwoBatchCIFAR",
        (CIFAR10,),
        {
            "n_samples": 2 * n_per_batch,
            "sha256": hashlib.sha256(archive).hexdigest(),
            "size": len(archive),
            "batches": ("cifar-10-batches-bin/data_batch_1.bin", "cifar-10-batches-bin/test_batch.bin"),
            "records_per_batch": n_per_batch,
            **attrs,
        },
    )
    return cls()


def test_cifar_reads_both_batches_as_rgb_images(tmp_path):
    archive, images, labels = tiny_cifar()
    write(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", archive)
    ds = _cifar(archive).load(tmp_path)
    assert ds.images.shape == (20, 32, 32, 3) and ds.images.dtype == np.float32
    np.testing.assert_array_equal(ds.images, images.astype(np.float32) / 255)
    assert ds.labels.tolist() == labels.tolist() and ds.variant == "train+test"
    # a red-only pixel stays red: the first plane is R
    one = np.zeros((1, 32, 32, 3), np.uint8)
    one[0, 3, 5, 0] = 255
    small = tar_gz({"cifar-10-batches-bin/data_batch_1.bin": cifar_batch(one, [7]),
                    "cifar-10-batches-bin/test_batch.bin": cifar_batch(one, [1])})  # fmt: skip
    write(tmp_path / "one" / "cifar10" / "cifar-10-binary.tar.gz", small)
    red = _cifar(small, n_per_batch=1).load(tmp_path / "one")
    assert red.images[0, 3, 5].tolist() == [1.0, 0.0, 0.0] and red.images[0].sum() == 1.0
    assert red.labels.tolist() == [7, 1]


def test_cifar_spec_is_the_binary_archive():
    spec = CIFAR10().spec()
    assert (spec.n_samples, spec.image_shape, spec.n_classes) == (60_000, (32, 32, 3), 10)
    (resource,) = CIFAR10().resources()
    assert resource.path == "cifar10/cifar-10-binary.tar.gz" and resource.size == 170_052_171
    assert resource.urls[0].endswith("/cifar-10-binary.tar.gz")


def test_cifar_corrupt_and_truncated_archives(tmp_path):
    archive, _, _ = tiny_cifar()
    path = write(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", archive)
    dataset = _cifar(archive)
    path.write_bytes(archive[:-1] + bytes([archive[-1] ^ 0xFF]))
    with pytest.raises(DataError, match=r"cifar10: file .*cifar-10-binary\.tar\.gz is corrupt: SHA256"):
        dataset.load(tmp_path)
    path.write_bytes(archive[:100])
    with pytest.raises(DataError, match=f"truncated: 100 bytes, expected {len(archive):,}"):
        dataset.load(tmp_path)
    path.unlink()
    with pytest.raises(DataError, match="cifar10: missing file .*harness data --download cifar10"):
        dataset.load(tmp_path)


def test_cifar_bad_members_inside_a_verified_archive(tmp_path):
    _, images, labels = tiny_cifar()
    good = cifar_batch(images[:10], labels[:10])
    cases = {
        "has 30,720 bytes, expected 30,730": {"data_batch_1.bin": good[:-10], "test_batch.bin": good},
        "has no member cifar-10-batches-bin/test_batch.bin": {"data_batch_1.bin": good},
        "has label 12, expected 0..9": {"data_batch_1.bin": bytes([12]) + good[1:], "test_batch.bin": good},
    }
    for i, (message, members) in enumerate(cases.items()):
        archive = tar_gz({f"cifar-10-batches-bin/{k}": v for k, v in members.items()})
        write(tmp_path / str(i) / "cifar10" / "cifar-10-binary.tar.gz", archive)
        with pytest.raises(DataError, match=message):
            _cifar(archive).load(tmp_path / str(i))
    # a link of the right name is never followed, and a file that is no gzip is named
    linked = tar_gz({"cifar-10-batches-bin/data_batch_1.bin": good},
                    symlinks={"cifar-10-batches-bin/test_batch.bin": "/etc/passwd"})  # fmt: skip
    write(tmp_path / "l" / "cifar10" / "cifar-10-binary.tar.gz", linked)
    with pytest.raises(DataError, match="member cifar-10-batches-bin/test_batch.bin is not a regular file"):
        _cifar(linked).load(tmp_path / "l")
    junk = b"not a tar.gz" * 10
    write(tmp_path / "j" / "cifar10" / "cifar-10-binary.tar.gz", junk)
    with pytest.raises(DataError, match="cannot be read .*download it again"):
        _cifar(junk).load(tmp_path / "j")


def test_cifar_download_through_a_file_mirror(tmp_path):
    archive, images, _ = tiny_cifar()
    source = write(tmp_path / "mirror" / "cifar-10-binary.tar.gz", archive)
    dataset = _cifar(archive, urls=("file:///nonexistent/cifar-10-binary.tar.gz", source.as_uri()))
    root = tmp_path / "data"
    with pytest.raises(DataError, match="missing file"):
        dataset.fetch(root, download=False)
    assert dataset.fetch(root, download=True) == [root / "cifar10" / "cifar-10-binary.tar.gz"]
    np.testing.assert_array_equal(dataset.load(root).images, images / np.float32(255))
    bad = _cifar(archive, urls=(write(tmp_path / "bad.tar.gz", archive[:-5] + b"xxxxx").as_uri(),))
    with pytest.raises(DataError, match="could not download .*is corrupt"):
        ensure("cifar10", bad.resources(), tmp_path / "data2", download_missing=True)


def _stl_archive(train: np.ndarray, test: np.ndarray, train_y, test_y, unlabelled: int = 2) -> bytes:
    folder = "stl10_binary/"
    return tar_gz({
        folder + "class_names.txt": b"airplane\nbird\n",
        folder + "train_X.bin": stl_images(train),
        folder + "train_y.bin": bytes(train_y),
        folder + "test_X.bin": stl_images(test),
        folder + "test_y.bin": bytes(test_y),
        folder + "unlabeled_X.bin": stl_images(random_images(unlabelled, 96, seed=3)),
    })  # fmt: skip


def _stl(archive: bytes, n_train: int, n_test: int) -> STL10:
    cls = type(
        "SmallSTL",
        (STL10,),
        {
            "n_samples": n_train + n_test,
            "sha256": hashlib.sha256(archive).hexdigest(),
            "size": len(archive),
            "splits": {"train": n_train, "test": n_test},
        },
    )
    return cls()


def test_stl10_column_major_channels_and_labels(tmp_path):
    train, test = random_images(3, 96, seed=1), random_images(2, 96, seed=2)
    archive = _stl_archive(train, test, [1, 10, 4], [2, 3])
    write(tmp_path / "stl10" / "stl10_binary.tar.gz", archive)
    ds = _stl(archive, 3, 2).load(tmp_path)
    assert ds.images.shape == (5, 96, 96, 3)
    np.testing.assert_array_equal(ds.images, np.concatenate([train, test]) / np.float32(255))
    assert ds.labels.tolist() == [0, 9, 3, 1, 2]
    # one bright pixel off the diagonal lands at (row 2, column 7) in the green channel
    one = np.zeros((1, 96, 96, 3), np.uint8)
    one[0, 2, 7, 1] = 255
    raw = bytearray(stl_images(one))
    assert raw.index(255) == 96 * 96 + 7 * 96 + 2  # the green plane, column 7, row 2 (the layout)
    small = _stl_archive(one, one, [5], [6], unlabelled=0)
    write(tmp_path / "s" / "stl10" / "stl10_binary.tar.gz", small)
    loaded = _stl(small, 1, 1).load(tmp_path / "s")
    assert loaded.images[0, 2, 7].tolist() == [0.0, 1.0, 0.0] and loaded.images[0].sum() == 1.0


def test_stl10_bad_labels_and_truncated_member(tmp_path):
    train, test = random_images(2, 96, seed=1), random_images(1, 96, seed=2)
    for i, (archive, message) in enumerate([
        (_stl_archive(train, test, [0, 3], [1]), r"train_y.bin has labels 0..3, expected 1..10"),
        (_stl_archive(train, test, [1, 3], [1])[:60_000], "cannot be read"),  # cut inside test_X.bin
    ]):  # fmt: skip
        write(tmp_path / str(i) / "stl10" / "stl10_binary.tar.gz", archive)
        with pytest.raises(DataError, match=message):
            _stl(archive, 2, 1).load(tmp_path / str(i))
    short = _stl_archive(train, test, [1, 3], [1])
    write(tmp_path / "x" / "stl10" / "stl10_binary.tar.gz", short)
    with pytest.raises(DataError, match="test_X.bin has 27,648 bytes, expected 55,296"):
        _stl(short, 2, 2).load(tmp_path / "x")


def test_stl10_spec():
    spec = STL10().spec()
    assert (spec.n_samples, spec.image_shape, spec.variant) == (13_000, (96, 96, 3), "train+test")
    assert STL10().resources()[0].size == 2_640_397_119


def test_mnist_test_is_the_t10k_files_of_mnist():
    mnist = {r.path: r for r in MNIST().resources()}
    test = MNISTTest().resources()
    assert [r.path for r in test] == ["mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"]
    assert all(mnist[r.path] == r for r in test)
    spec = MNISTTest().spec()
    assert (spec.name, spec.n_samples, spec.variant) == ("mnist-test", 10_000, "test")


@pytest.mark.data
def test_mnist_test_on_the_real_files(shared_data):
    ds = MNISTTest().load(shared_data)
    assert ds.images.shape == (10_000, 28, 28, 1)
    assert np.bincount(ds.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(ds.images, MNIST().load(shared_data).images[60_000:])


def test_every_method_runs_on_colour_images_from_the_cifar_files(tmp_path):
    """A dry run of each built-in method on the test-written CIFAR archive: 3 channels all the way
    (flat methods get H*W*3 values, DLFC's conv AE 32x32x3 images); grey gives one channel."""
    import importlib.util

    from harness_test_colour import ARCHIVE

    from harness.cli import main
    from harness.journal import Journal

    write(tmp_path / "data" / "tiny-cifar10" / "cifar-10-binary.tar.gz", ARCHIVE)
    methods = [m for m in ("kmeans", "dec", "dlfc") if importlib.util.find_spec(f"harness_{m}")]
    common = ["run", "--plugin", "harness_test_colour", "--datasets", "tiny-cifar10", "--seeds", "0",
              "--data-dir", str(tmp_path / "data"), "--dry-run"]  # fmt: skip
    assert main([*common, "--methods", ",".join(methods), "--offline", str(tmp_path / "j")]) == 0
    records = {r["job"]["method"]: r for r in Journal(tmp_path / "j").records()}
    assert {m: r["status"] for m, r in records.items()} == dict.fromkeys(methods, "FINISHED")
    shapes = {m: r["data"]["shape"] for m, r in records.items()}
    assert shapes["kmeans"] == [20, 32 * 32 * 3]
    if "dec" in shapes:
        assert shapes["dec"] == [20, 32 * 32 * 3]
    if "dlfc" in shapes:
        assert shapes["dlfc"] == [20, 32, 32, 3]
        from harness_dlfc.autoencoders import build_autoencoder

        def size(channels):  # the conv AE's first layer and last decoder layer grow with the channels
            return sum(p.numel() for p in build_autoencoder("cae", (32, 32, channels), 10).parameters())

        assert records["dlfc"]["tags"]["dlfc.n_parameters"] == str(size(3)) != str(size(1))
    argv = [
        *common,
        "--methods",
        "kmeans",
        "--channels",
        "grey",
        "--sizes",
        "16",
        "--offline",
        str(tmp_path / "g"),
    ]
    assert main(argv) == 0
    (grey,) = Journal(tmp_path / "g").records()
    assert grey["data"]["shape"] == [20, 16 * 16] and grey["job"]["channels"] == "grey"
    assert grey["run_key"] != records["kmeans"]["run_key"]


def test_reports_name_grey_runs_and_never_pool_them_with_colour_ones():
    from harness_reports.runs import run_row, tidy

    def row(seed, channels):
        job = {"method": "kmeans", "dataset": "cifar10", "dataset_variant": "train+test", "input_size": 32,
               "seed": seed, "resize_filter": "none", "params": {"n_init": "20"}, "channels": channels}  # fmt: skip
        return run_row(f"r{seed}{channels}", "FINISHED", f"k{seed}{channels}", seed, job, {}, {"acc": 0.2})

    both = tidy([row(0, "native"), row(1, "native"), row(0, "grey")])
    assert sorted(set(both["method"])) == ["kmeans (channels=grey)", "kmeans (channels=native)"]
    assert both.groupby("method").size().to_dict() == {
        "kmeans (channels=grey)": 1,
        "kmeans (channels=native)": 2,
    }
    only_grey = tidy([row(0, "grey"), row(1, "grey")])
    assert set(only_grey["method"]) == {"kmeans (channels=grey)"}
    assert set(tidy([row(0, "native"), row(1, None)])["method"]) == {"kmeans"}  # older runs record none
