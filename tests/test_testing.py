"""The contract kit (harness.testing) on small plugins written here, good and broken: each breach is
caught, with one line naming the plugin and what it broke."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from harness import Dataset, DatasetSpec, MethodResult, MethodSpec, Param
from harness.testing import ContractError, check_dataset, check_method, tiny_digits


def _kmeans(x, n_clusters, seed, n_init=1):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(x)


def good(x, *, n_clusters, seed, params, context):
    return MethodResult(
        labels=_kmeans(x, n_clusters, seed, n_init=1 if context.dry_run else params["n_init"])
    )


def good_seeds(x, *, n_clusters, seeds, params, contexts):
    return [
        good(x, n_clusters=n_clusters, seed=s, params=params, context=c)
        for s, c in zip(seeds, contexts, strict=True)
    ]


GOOD = MethodSpec(
    "good", good, params=(Param("n_init", int, 3, "restarts", low=1),), fit_predict_seeds=good_seeds
)


def ignores_dry_run(x, *, n_clusters, seed, params, context):
    return MethodResult(labels=_kmeans(x, n_clusters, seed, n_init=params["n_init"]))


def reads_dry_run_but_trains_anyway(x, *, n_clusters, seed, params, context):
    if context.dry_run:
        pass  # forgot to shorten anything
    time.sleep(params["seconds"])  # the budget, in seconds of training
    return MethodResult(labels=_kmeans(x, n_clusters, seed))


def unseeded(x, *, n_clusters, seed, params, context):
    rng = np.random.default_rng()  # fresh entropy: a new answer every call
    return MethodResult(labels=rng.integers(0, n_clusters, len(x)))


def seeds_its_own_way(x, *, n_clusters, seeds, params, contexts):
    """A batch in which every seed gets seed 0's start: not what fit_predict gives each."""
    return [good(x, n_clusters=n_clusters, seed=seeds[0], params=params, context=c) for c in contexts]


def one_label_short(x, *, n_clusters, seed, params, context):
    return MethodResult(labels=_kmeans(x, n_clusters, seed)[1:])


def bare_labels(x, *, n_clusters, seed, params, context):
    return _kmeans(x, n_clusters, seed)


def test_a_method_that_keeps_the_contract_passes():
    check_method(GOOD)
    check_method(GOOD, params={"n_init": 1}, data=tiny_digits(40), size=6)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            dataclasses.replace(GOOD, name="lazy", fit_predict=ignores_dry_run),
            r"^method 'lazy' ignores dry_run: fit_predict never read context.dry_run",
        ),
        (
            dataclasses.replace(GOOD, name="dice", fit_predict=unseeded, fit_predict_seeds=None),
            r"^method 'dice' is not deterministic: seed 0 gave different labels twice \(\d+ of 60 differ\)",
        ),
        (
            dataclasses.replace(GOOD, name="batched", fit_predict_seeds=seeds_its_own_way),
            r"^method 'batched': fit_predict_seeds gave seed 1 labels that agree with fit_predict\(seed=1\) "
            r"on \d+% of the samples, expected at least 98%",
        ),
        (
            dataclasses.replace(GOOD, name="short", fit_predict=one_label_short),
            r"^method 'short' returned labels of shape \(59,\), expected \(60,\)",
        ),
        (
            dataclasses.replace(GOOD, name="bare", fit_predict=bare_labels),
            r"^method 'bare': fit_predict returned ndarray, expected a harness.MethodResult",
        ),
        (
            dataclasses.replace(GOOD, name="bounds", params=(Param("n_init", int, 0, "restarts", low=1),)),
            r"^method 'bounds': the default of parameter 'n_init' is 0, which its own rule refuses",
        ),
    ],
    ids=["ignores-dry-run", "not-deterministic", "batch-differs", "labels-shape", "no-result", "bad-default"],
)
def test_each_breach_of_a_method_is_one_line_naming_it(spec, message):
    with pytest.raises(ContractError, match=message) as caught:
        check_method(spec)
    assert "\n" not in str(caught.value)


def test_a_dry_run_that_reads_the_flag_but_trains_its_full_budget_is_caught():
    spec = MethodSpec(
        "stubborn",
        reads_dry_run_but_trains_anyway,
        params=(Param("seconds", float, 8.0, "training time", low=0),),
    )
    with pytest.raises(ContractError, match=r"^method 'stubborn' does not stop early under dry_run"):
        check_method(spec, params={"seconds": 0})


# -- datasets ---------------------------------------------------------------------------------------


def _pixels(root: Path) -> Dataset:
    with np.load(Path(root) / "pixels.npz") as f:
        return Dataset("pixels", f["images"], f["labels"], n_classes=3, variant="all", scaling="uint8/255")


def _fetch(root: Path, download: bool = False) -> None:
    if not (Path(root) / "pixels.npz").is_file():
        from harness.data import DataError

        raise DataError(f"pixels: missing file {Path(root) / 'pixels.npz'}")


PIXELS = DatasetSpec(
    "pixels", n_classes=3, image_shape=(4, 4, 1), n_samples=6, fetch=_fetch, load=_pixels, variant="all"
)


@pytest.fixture
def pixels_root(tmp_path) -> Path:
    images = np.linspace(0, 1, 6 * 16, dtype=np.float32).reshape(6, 4, 4, 1)
    np.savez(tmp_path / "pixels.npz", images=images, labels=np.array([0, 1, 2, 0, 1, 2]))
    return tmp_path


def test_a_dataset_that_agrees_with_its_spec_passes(pixels_root):
    loaded = check_dataset(PIXELS, pixels_root, plugin="pixels-plugin")
    assert loaded.images.shape == (6, 4, 4, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_samples": 7}, r"load\(\) returned images of shape \(6, 4, 4, 1\), its spec says \(7, 4, 4, 1\)"),
        ({"image_shape": (4, 4, 3)}, r"its spec says \(6, 4, 4, 3\)"),
        (
            {"n_classes": 2},
            r"returned variant 'all' with 3 classes, but its DatasetSpec says variant 'all' with 2",
        ),
        ({"variant": "train+test"}, r"but its DatasetSpec says variant 'train\+test'"),
        (
            {"name": "pixies"},
            r"^dataset 'pixies' \(plugin 'pixels-plugin'\): load\(\) returned a dataset named 'pixels'",
        ),
    ],
    ids=["n_samples", "image_shape", "n_classes", "variant", "name"],
)
def test_a_spec_that_disagrees_with_load_is_caught(pixels_root, change, message):
    with pytest.raises(ContractError, match=message) as caught:
        check_dataset(dataclasses.replace(PIXELS, **change), pixels_root, plugin="pixels-plugin")
    assert "(plugin 'pixels-plugin')" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (lambda im: (im * 255).astype(np.uint8), None, r"images are uint8, expected float32"),
        (lambda im: im * 255, None, r"image values span \[0, 255\], expected \[0, 1\]"),
        (None, np.array([0, 1, 2, 0, 1, 3]), r"labels span 0..3, expected 0..2"),
        (None, np.array([0.0, 1, 2, 0, 1, 2]), r"labels must be 1-D integers, got float64"),
    ],
    ids=["uint8", "0-255", "label-range", "float-labels"],
)
def test_arrays_outside_the_dataset_contract_are_caught(pixels_root, images, labels, message):
    with np.load(pixels_root / "pixels.npz") as f:
        im, lab = f["images"], f["labels"]
    np.savez(
        pixels_root / "pixels.npz",
        images=images(im) if images else im,
        labels=labels if labels is not None else lab,
    )
    with pytest.raises(ContractError, match=message):
        check_dataset(PIXELS, pixels_root)


def test_absent_files_are_a_data_error_not_a_breach(tmp_path):
    from harness.data import DataError

    with pytest.raises(DataError, match="pixels: missing file"):
        check_dataset(PIXELS, tmp_path)
