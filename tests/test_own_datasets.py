"""Datasets declared in a config file (``own_datasets:``): feature arrays and image folders, their
checks, their identity, and a k-means run on them that equals the run on the built-in loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from harness.cli import main
from harness.data import DataError
from harness.errors import ExitCode, UsageError
from harness.identity import dataset_identity
from harness.journal import Journal


def _declare(registry, tmp_path, **declarations):
    return registry.declare(declarations, tmp_path)


def _load(registry, tmp_path, name, **declaration):
    spec = _declare(registry, tmp_path, **{name: declaration}).dataset(name)
    spec.fetch(tmp_path, False)
    return spec, spec.load(tmp_path)


def test_npy_pairs_in_every_shape(registry, tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([3, 1, 3, 7, 1, 7])  # three classes, not 0-based
    shapes = {"vectors": (6, 5), "grey": (6, 4, 3), "images": (6, 4, 3, 3)}
    for name, shape in shapes.items():
        x = rng.random(shape, dtype=np.float32)
        np.save(tmp_path / f"{name}.npy", x)
        for form, y in (("flat", labels), ("column", labels[:, None])):
            np.save(tmp_path / f"{name}-{form}.npy", y)
            spec, ds = _load(
                registry,
                tmp_path,
                f"{name}-{form}",
                format="arrays",
                features=f"{name}.npy",
                labels=f"{name}-{form}.npy",
            )
            assert ds.labels.tolist() == [1, 0, 1, 2, 0, 2] and spec.n_classes == 3
            expected = {"vectors": (1, 5, 1), "grey": (4, 3, 1), "images": (4, 3, 3)}[name]
            assert spec.image_shape == expected and ds.images.shape == (6, *expected)
            np.testing.assert_array_equal(ds.images.reshape(6, -1), x.reshape(6, -1))


def test_npz_and_the_dec_forks_feature_files(registry, tmp_path):
    x = np.random.default_rng(1).random((4, 16), dtype=np.float32)
    np.savez(tmp_path / "both.npz", features=x, labels=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "keyed.npz", x=x, y=np.array([0, 1, 0, 1]))
    _, ds = _load(registry, tmp_path, "both", format="arrays", features="both.npz")
    np.testing.assert_array_equal(ds.images[:, 0, :, 0], x)
    _, keyed = _load(
        registry, tmp_path, "keyed", format="arrays", features="keyed.npz", features_key="x", labels_key="y"
    )
    np.testing.assert_array_equal(keyed.images, ds.images)
    with pytest.raises(DataError, match="keyed.npz has no array 'features' \\(it has: x, y\\)"):
        _load(registry, tmp_path, "keyed2", format="arrays", features="keyed.npz")
    # the DEC COIL-20 fork: coil20_features_<dim>.npy (N x dim^2) and coil20_labels_<dim>.npy, 1-based
    np.save(tmp_path / "coil20_features_4.npy", x)
    np.save(tmp_path / "coil20_labels_4.npy", np.array([1, 2, 1, 2]))
    spec, coil = _load(
        registry, tmp_path, "coil", format="arrays", features="coil20_features_4.npy",
        labels="coil20_labels_4.npy", shape=[4, 4, 1],
    )  # fmt: skip
    assert spec.image_shape == (4, 4, 1) and coil.labels.tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(coil.images[2, :, :, 0], x[2].reshape(4, 4))
    assert spec.variant == "all, shape=[4, 4, 1]"


def test_scaling_must_be_declared(registry, tmp_path):
    raw = np.array([[0, 128], [255, 64]], dtype=np.uint8)
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    with pytest.raises(
        DataError, match=r"'raw': features span \[0, 255\], outside \[0, 1\]; .*scale: 255 .*minmax"
    ):
        _load(registry, tmp_path, "raw", format="arrays", features="raw.npy", labels="y.npy")
    _, ds = _load(registry, tmp_path, "by255", format="arrays", features="raw.npy", labels="y.npy", scale=255)
    np.testing.assert_allclose(ds.images.ravel(), raw.ravel() / 255)
    assert ds.scaling == "/255"
    _, mm = _load(
        registry, tmp_path, "mm", format="arrays", features="raw.npy", labels="y.npy", scale="minmax"
    )
    assert (mm.images.min(), mm.images.max()) == (0.0, 1.0) and mm.scaling == "minmax [0, 255]"


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.zeros((3, 2)), np.array([0, 1]), "3 feature rows in .*x.npy but 2 labels in .*y.npy"),
        (np.zeros((2, 2)), np.array([0.0, 1.5]), r"labels in .*y.npy must be integers, got 1.5 in row 1"),
        (np.zeros((2, 2)), np.array([0, -1]), r"labels in .*y.npy must be >= 0, got -1 in row 1"),
        (np.zeros((2, 2)), np.array(["a", "b"]), "labels in .*y.npy are <U1, expected integers"),
        (
            np.array([[0.1, np.nan], [0.2, 0.3]]),
            np.array([0, 1]),
            r"1 NaN or infinite value\(s\), the first in row 0",
        ),
        (
            np.array([[0.1, 0.2], [np.inf, 0.3]]),
            np.array([0, 1]),
            r"NaN or infinite value\(s\), the first in row 1",
        ),
        (np.zeros((2, 2)), np.array([[0, 1], [1, 0]]), r"labels in .*y.npy have shape \(2, 2\)"),
    ],
)
def test_one_clear_error_for_each_bad_file(registry, tmp_path, features, labels, message):
    np.save(tmp_path / "x.npy", features)
    np.save(tmp_path / "y.npy", labels)
    with pytest.raises(DataError, match=message):
        _load(registry, tmp_path, "bad", format="arrays", features="x.npy", labels="y.npy")


def test_declaration_mistakes(registry, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    with pytest.raises(DataError, match=r"dataset 'm': missing file .*nope.npy \(own_datasets.m.labels\)"):
        _declare(registry, tmp_path, m={"format": "arrays", "features": "x.npy", "labels": "nope.npy"})
    with pytest.raises(
        UsageError,
        match=r"format 'array' is not known \(did you mean 'arrays'\?\); formats: arrays, image-folder",
    ):
        _declare(registry, tmp_path, m={"format": "array", "features": "x.npy"})
    with pytest.raises(
        UsageError, match=r"unknown key 'scaling' \(did you mean 'scale'\?\) for format 'arrays'"
    ):
        _declare(registry, tmp_path, m={"format": "arrays", "features": "x.npy", "scaling": 255})
    with pytest.raises(UsageError, match="'mnist': a dataset of that name is installed"):
        _declare(registry, tmp_path, mnist={"format": "arrays", "features": "x.npy"})
    with pytest.raises(DataError, match="labels: \\(a .npy\\) is needed"):
        _declare(registry, tmp_path, m={"format": "arrays", "features": "x.npy"})


def _folder(root, mode, sizes=((6, 5),)):
    rng = np.random.default_rng(2)
    written = {}
    for cls, count in (("cat", 2), ("ant", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            h, w = sizes[i % len(sizes)]
            shape = (h, w) if mode == "L" else (h, w, 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / cls / f"{i}.png")
            written[(cls, i)] = pixels
    (root / "ant" / "notes.txt").write_text("not an image")
    return written


def test_image_folder_grey_and_colour(registry, tmp_path):
    grey = _folder(tmp_path / "grey", "L")
    spec, ds = _load(registry, tmp_path, "g", format="image-folder", folder="grey")
    assert (spec.n_samples, spec.n_classes, spec.image_shape) == (5, 2, (6, 5, 1))
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]  # ant (sorted first) then cat
    np.testing.assert_array_equal(ds.images[3, :, :, 0], grey[("cat", 0)] / np.float32(255))
    colour = _folder(tmp_path / "rgb", "RGB")
    spec, ds = _load(registry, tmp_path, "c", format="image-folder", folder="rgb")
    assert spec.image_shape == (6, 5, 3) and spec.variant == "all, mode=rgb"
    np.testing.assert_array_equal(ds.images[0], colour[("ant", 0)] / np.float32(255))
    spec, as_grey = _load(registry, tmp_path, "c2", format="image-folder", folder="rgb", mode="grey")
    assert spec.image_shape == (6, 5, 1) and as_grey.images.shape == (5, 6, 5, 1)


def test_image_folder_sizes_and_bad_images(registry, tmp_path):
    _folder(tmp_path / "mixed", "L", sizes=((6, 5), (8, 8)))
    with pytest.raises(DataError, match=r"have 2 sizes \(such as 5x6, 8x8\); declare size: \[H, W\]"):
        _declare(registry, tmp_path, m={"format": "image-folder", "folder": "mixed"})
    spec, ds = _load(registry, tmp_path, "m", format="image-folder", folder="mixed", size=7)
    assert spec.image_shape == (7, 7, 1) and ds.images.shape == (5, 7, 7, 1)
    (tmp_path / "mixed" / "ant" / "broken.png").write_bytes(b"\x89PNG nothing")
    with pytest.raises(DataError, match="broken.png is not an image Pillow can read"):
        _declare(registry, tmp_path, m={"format": "image-folder", "folder": "mixed", "size": 7})
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="class folder .*empty/a has no images"):
        _declare(registry, tmp_path, m={"format": "image-folder", "folder": "empty"})


def test_file_digests_are_the_datasets_identity(registry, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    declaration = {"format": "arrays", "features": "x.npy", "labels": "y.npy"}
    first = _declare(registry, tmp_path, m=declaration)
    spec, provider = first.datasets["m"]
    assert len(spec.checksums) == 2 and provider.plugin == "datasets"
    before = dataset_identity(spec, provider)
    np.save(tmp_path / "x.npy", np.ones((2, 2)))
    after = dataset_identity(*_declare(registry, tmp_path, m=declaration).datasets["m"])
    assert before.source == after.source and before.digest != after.digest
    from harness.config import build_sweep

    with pytest.raises(
        UsageError, match="'m' holds feature vectors \\(2 values each\\), which cannot be resized to 28"
    ):
        build_sweep(first, {"datasets": ["m"], "methods": ["kmeans"], "sizes": "native,28"})
    scaled = _declare(registry, tmp_path, m={**declaration, "scale": 2}).dataset("m")
    assert scaled.variant == "all, scale=2"  # the variant enters the run key


def _digits_files(tmp_path):
    from harness_datasets import Digits

    ds = Digits().load(tmp_path)
    np.save(tmp_path / "digits_x.npy", ds.images)
    np.save(tmp_path / "digits_y.npy", ds.labels)
    config = {
        "methods": ["kmeans"], "datasets": ["digits", "my-digits"], "seeds": 0,
        "own_datasets": {"my-digits": {"format": "arrays", "features": "digits_x.npy", "labels": "digits_y.npy"}},
    }  # fmt: skip
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "sweep.yaml"


def test_kmeans_on_a_feature_file_scores_as_on_the_built_in_loader(tmp_path, capsys):
    config = _digits_files(tmp_path)
    out = tmp_path / "j"
    assert main(["run", "--config", str(config), "--offline", str(out)]) == ExitCode.OK
    records = {r["job"]["dataset"]: r for r in Journal(out).records()}
    assert set(records) == {"digits", "my-digits"} and all(
        r["status"] == "FINISHED" for r in records.values()
    )
    digits, mine = records["digits"], records["my-digits"]
    assert (
        digits["metrics"]["acc"] == mine["metrics"]["acc"]
        and digits["metrics"]["ari"] == mine["metrics"]["ari"]
    )
    assert digits["data"]["digest"] == mine["data"]["digest"]  # the very same array reached k-means
    # usable by name from the command line once declared, and listed with its size and channels
    capsys.readouterr()
    assert main(["list", "--json", "--config", str(config)]) == ExitCode.OK
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)["datasets"]}
    assert listed["my-digits"]["declared"] and listed["my-digits"]["image_shape"] == [8, 8, 1]
    assert (listed["cifar10"]["n_samples"], listed["cifar10"]["channels"]) == (60_000, 3)
    assert main(["data", "my-digits", "--config", str(config)]) == ExitCode.OK
    np.save(tmp_path / "digits_y.npy", np.arange(5))
    assert (
        main(["run", "--config", str(config), "--datasets", "my-digits", "--offline", str(tmp_path / "k")])
        == 2
    )
    assert "1797 feature rows in" in capsys.readouterr().err


def _readme_configs() -> list[dict]:
    """The YAML blocks of the README's "Your own data" section."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("\n### Your own data\n")
    section = text[start : text.index("\n### ", start + 5)]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)]


def _files_for(root, declaration):
    """Small files of the kind a README declaration names, with values its scale asks for."""
    rng = np.random.default_rng(0)
    if declaration["format"] == "image-folder":
        for cls in ("a", "b"):
            (root / declaration["folder"] / cls).mkdir(parents=True, exist_ok=True)
            for i, side in enumerate((20, 30)):
                pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / declaration["folder"] / cls / f"{i}.png")
        return
    values = int(np.prod(declaration.get("shape", [12])))
    top = {None: 1.0, 255: 255.0}.get(declaration.get("scale"), 40.0)
    x = (rng.random((6, values)) * top - (5.0 if declaration.get("scale") == "minmax" else 0)).astype(
        np.float32
    )
    y = np.arange(6) % 2
    if declaration["features"].endswith(".npz"):
        keys = declaration.get("features_key", "features"), declaration.get("labels_key", "labels")
        np.savez(root / declaration["features"], **{keys[0]: x, keys[1]: y})
    else:
        np.save(root / declaration["features"], x)
        np.save(root / declaration["labels"], y)


def test_the_readmes_own_data_examples_declare_and_load(registry, tmp_path):
    from harness.config import build_sweep, declare_own_datasets

    configs = _readme_configs()
    assert len(configs) == 2
    for i, config in enumerate(configs):
        folder = tmp_path / str(i)
        folder.mkdir()
        for declaration in config["own_datasets"].values():
            _files_for(folder, declaration)
        (folder / "sweep.yaml").write_text(yaml.safe_dump(config))
        declared = declare_own_datasets(registry, config, folder / "sweep.yaml")
        sweep = build_sweep(declared, config)
        for name in config["own_datasets"]:
            spec = declared.dataset(name)
            spec.fetch(folder, False)
            assert spec.load(folder).images.shape == (spec.n_samples, *spec.image_shape)
        assert set(sweep.datasets) <= set(config["own_datasets"])
