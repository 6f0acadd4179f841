"""Datasets users declare in a sweep's config (``own_datasets:``), read from their own files.

Two formats, offered through the ``harness_dataset_formats`` hook like any plugin's:

* ``arrays``: ``features`` in a ``.npy`` (N × D vectors, N × H × W × C images, or N × H × W grey
  images) with ``labels`` in another ``.npy`` (N or N × 1), or one ``.npz`` holding both (keys
  ``features`` and ``labels`` unless ``features_key``/``labels_key`` say otherwise). Vectors become
  1 × D × 1 "images", so flat methods get them as they are; ``shape: [H, W, C]`` reads each row
  as an image instead (row-major, as ``reshape`` does), e.g. the DEC fork's
  ``coil20_features_<dim>.npy``. Never unpickled (``allow_pickle=False``).
* ``image-folder``: one subfolder per class, its images inside (torchvision's ``ImageFolder``
  layout); classes in sorted name order, images by name within each; read with Pillow as ``grey``
  or ``rgb`` (``auto``, the default: grey where every image is), resized to ``size`` where given.

Values must lie in [0, 1] unless ``scale`` says how to get there: a number to divide by (``255``)
or ``minmax`` (the whole array's minimum to 0, maximum to 1). Labels are integers ≥ 0; the distinct
values, in order, become classes 0..K-1. The SHA256 of every file is the dataset's checksum list,
so a changed file is a new identity, and the declaration's settings (scale, shape, keys, size,
mode) are its ``variant``: both enter the run key. A declared dataset is checked in full by
``fetch`` (``harness data``, and before any job of ``harness run`` starts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import Dataset, DatasetFormat, DatasetSpec
from harness.data import DataError, sha256sum

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def _path(name: str, key: str, value: Any, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"own_datasets: {name!r}: {key} must be a path, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise DataError(f"dataset {name!r}: missing file {path} (own_datasets.{name}.{key})")
    return path


def _scale(name: str, value: Any) -> str | float | None:
    if value is None or value == "none":
        return None
    if value == "minmax":
        return "minmax"
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise DataError(
        f"own_datasets: {name!r}: scale must be a number > 0 (say 255), minmax or none, got {value!r}"
    )


def _scaled(name: str, x: np.ndarray, scale: str | float | None) -> tuple[np.ndarray, str]:
    """``x`` as float32 in [0, 1] and how it got there; DataError for NaN/inf or an undeclared range."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"dataset {name!r}: features are {x.dtype}, expected numbers")
    x = x.astype(np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise DataError(
            f"dataset {name!r}: features hold {int((~finite).sum())} NaN or infinite value(s), the first "
            f"in row {row}; remove or fill them"
        )
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if scale == "minmax":
        span = high - low
        out = (x - low) / span if span > 0 else np.zeros_like(x)
        return out.astype(np.float32), f"minmax [{low:g}, {high:g}]"
    if scale is not None:
        x = x / np.float32(scale)
        low, high = low / scale, high / scale
    if low < 0.0 or high > 1.0:
        declared = f" after scale {scale:g}" if scale is not None else ""
        raise DataError(
            f"dataset {name!r}: features span [{low:g}, {high:g}]{declared}, outside [0, 1]; declare how "
            "to scale them: scale: 255 (divide by a number) or scale: minmax"
        )
    return x, "as stored ([0,1])" if scale is None else f"/{scale:g}"


def _classes(name: str, labels: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    """Labels as 0..K-1 (distinct values in order); DataError for non-integers or negatives."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"dataset {name!r}: labels in {where} have shape {labels.shape}, expected (N,) or (N, 1)"
        )
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"dataset {name!r}: labels in {where} must be integers, got {labels[row].item()!r} in row {row}"
            )
    elif labels.dtype.kind not in "iu":
        raise DataError(f"dataset {name!r}: labels in {where} are {labels.dtype}, expected integers")
    if labels.size and labels.min() < 0:
        row = int(np.argmin(labels))
        raise DataError(
            f"dataset {name!r}: labels in {where} must be >= 0, got {labels[row].item()!r} in row {row}"
        )
    values, codes = np.unique(labels.astype(np.int64), return_inverse=True)
    return codes.astype(np.int64), len(values)


def _variant(declaration: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """``all``, plus the declared settings that change what is read (they enter the run key)."""
    extra = [f"{k}={declaration[k]}" for k in keys if declaration.get(k) is not None]
    return ", ".join(["all", *extra])


@dataclass
class _Declared:
    """One declared dataset: its spec's callables, bound to what the declaration says."""

    name: str
    variant: str
    description: str

    def read(self) -> Dataset:
        raise NotImplementedError

    def fetch(self, root: Path, download: bool = False) -> None:
        self.read()  # every check a job would make, before any job starts

    def load(self, root: Path) -> Dataset:
        return self.read()

    def spec(
        self, n_classes: int, image_shape: tuple[int, int, int], n_samples: int, files: list[Path]
    ) -> DatasetSpec:
        return DatasetSpec(
            name=self.name,
            n_classes=n_classes,
            image_shape=image_shape,
            n_samples=n_samples,
            fetch=self.fetch,
            load=self.load,
            description=self.description,
            variant=self.variant,
            checksums=tuple(sha256sum(f) for f in files),
        )


@dataclass
class _Arrays(_Declared):
    features: Path
    labels: Path | None
    keys: tuple[str, str]
    shape: tuple[int, int, int] | None
    scale: str | float | None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Features (not yet scaled), labels and where the labels came from."""
        try:
            if self.labels is None:
                with np.load(self.features, allow_pickle=False) as bundle:
                    missing = [k for k in self.keys if k not in bundle.files]
                    if missing:
                        raise DataError(
                            f"dataset {self.name!r}: {self.features} has no array {missing[0]!r} "
                            f"(it has: {', '.join(bundle.files)}); name them with features_key / labels_key"
                        )
                    return bundle[self.keys[0]], bundle[self.keys[1]], f"{self.features}[{self.keys[1]}]"
            return (
                np.load(self.features, mmap_mode="r", allow_pickle=False),
                np.load(self.labels, allow_pickle=False),
                str(self.labels),
            )
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(
                f"dataset {self.name!r}: cannot read {self.features} or its labels ({exc})"
            ) from None

    def images(self, features: np.ndarray) -> np.ndarray:
        n = len(features)
        if self.shape is not None:
            if int(np.prod(features.shape[1:])) != int(np.prod(self.shape)):
                raise DataError(
                    f"dataset {self.name!r}: rows of {self.features} have {int(np.prod(features.shape[1:]))} "
                    f"values, shape {list(self.shape)} needs {int(np.prod(self.shape))}"
                )
            return features.reshape(n, *self.shape)
        if features.ndim == 2:
            return features.reshape(n, 1, features.shape[1], 1)
        if features.ndim == 3:
            return features[..., np.newaxis]
        if features.ndim == 4:
            return features
        raise DataError(
            f"dataset {self.name!r}: features in {self.features} have shape {features.shape}, expected "
            "N x D or N x H x W x C"
        )

    def checked(self) -> tuple[np.ndarray, np.ndarray, int, str]:
        features, labels, where = self.arrays()
        if np.ndim(features) < 2:
            raise DataError(
                f"dataset {self.name!r}: features in {self.features} have shape {np.shape(features)}"
            )
        n_labels = len(labels) if np.ndim(labels) else 0
        if len(features) != n_labels:
            raise DataError(
                f"dataset {self.name!r}: {len(features)} feature rows in {self.features} but {n_labels} "
                f"labels in {where}; they must match one to one"
            )
        codes, n_classes = _classes(self.name, labels, where)
        return self.images(features), codes, n_classes, where

    def read(self) -> Dataset:
        images, labels, n_classes, _ = self.checked()
        x, scaling = _scaled(self.name, images, self.scale)
        return Dataset(self.name, np.ascontiguousarray(x), labels, n_classes, self.variant, scaling)


ARRAY_KEYS = ("features", "labels", "features_key", "labels_key", "shape", "scale", "description")


def build_arrays(name: str, declaration: Mapping[str, Any], base: Path) -> DatasetSpec:
    features = _path(name, "features", declaration.get("features"), base)
    npz = features.suffix == ".npz"
    if npz and declaration.get("labels") is not None:
        raise DataError(f"own_datasets: {name!r}: a .npz holds the labels too; drop labels: or use a .npy")
    if not npz and declaration.get("labels") is None:
        raise DataError(
            f"own_datasets: {name!r}: labels: (a .npy) is needed beside features: {features.name}"
        )
    labels = None if npz else _path(name, "labels", declaration.get("labels"), base)
    shape = declaration.get("shape")
    if shape is not None:
        if not (
            isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)
        ):
            raise DataError(
                f"own_datasets: {name!r}: shape must be [H, W, C] of positive integers, got {shape!r}"
            )
        shape = tuple(shape)
    dataset = _Arrays(
        name=name,
        variant=_variant(declaration, ("features_key", "labels_key", "shape", "scale")),
        description=str(declaration.get("description") or f"feature file {features.name}"),
        features=features,
        labels=labels,
        keys=(str(declaration.get("features_key", "features")), str(declaration.get("labels_key", "labels"))),
        shape=shape,
        scale=_scale(name, declaration.get("scale")),
    )
    images, _, n_classes, _ = dataset.checked()
    image_shape = tuple(int(v) for v in images.shape[1:])
    return dataset.spec(
        n_classes, image_shape, len(images), [features] if labels is None else [features, labels]
    )  # type: ignore[arg-type]


@dataclass
class _Folder(_Declared):
    folder: Path
    files: list[tuple[Path, int]]
    classes: list[str]
    mode: str
    size: tuple[int, int] | None

    def read(self) -> Dataset:
        from PIL import Image

        pixels = []
        for path, _ in self.files:
            with Image.open(path) as image:
                converted = image.convert(self.mode)
                if self.size is not None and converted.size != (self.size[1], self.size[0]):
                    converted = converted.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
                pixels.append(np.asarray(converted, dtype=np.uint8))
        shapes = {p.shape for p in pixels}
        if len(shapes) > 1:
            first = pixels[0].shape
            odd = next(i for i, p in enumerate(pixels) if p.shape != first)
            raise DataError(
                f"dataset {self.name!r}: {self.files[odd][0]} is {pixels[odd].shape[1]}x{pixels[odd].shape[0]}, "
                f"{self.files[0][0].name} is {first[1]}x{first[0]}; declare size: [H, W] to resize them all"
            )
        images = np.stack(pixels).astype(np.float32) / 255.0
        if images.ndim == 3:
            images = images[..., np.newaxis]
        labels = np.array([label for _, label in self.files], dtype=np.int64)
        return Dataset(self.name, images, labels, len(self.classes), self.variant, "uint8/255")


FOLDER_KEYS = ("folder", "mode", "size", "description")


def build_folder(name: str, declaration: Mapping[str, Any], base: Path) -> DatasetSpec:
    from PIL import Image, UnidentifiedImageError

    folder = _path(name, "folder", declaration.get("folder"), base)
    if not folder.is_dir():
        raise DataError(
            f"own_datasets: {name!r}: folder {folder} is a file, expected a folder of class folders"
        )
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"dataset {name!r}: folder {folder} has no class subfolders (one per class, images inside)"
        )
    files: list[tuple[Path, int]] = []
    for label, cls in enumerate(classes):
        images = sorted(
            p for p in (folder / cls).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            raise DataError(
                f"dataset {name!r}: class folder {folder / cls} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        files += [(p, label) for p in images]
    mode = declaration.get("mode", "auto")
    if mode not in ("auto", "grey", "rgb"):
        raise DataError(f"own_datasets: {name!r}: mode must be auto, grey or rgb, got {mode!r}")
    size = declaration.get("size")
    if size is not None:
        size = [size, size] if isinstance(size, int) and not isinstance(size, bool) else size
        if not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
        ):
            raise DataError(
                f"own_datasets: {name!r}: size must be a positive integer or [H, W], got {declaration['size']!r}"
            )
        size = (size[0], size[1])
    dims = set()
    grey = True
    for path, _ in files:
        try:
            with Image.open(path) as image:
                dims.add((image.height, image.width))
                grey = grey and image.mode in GREY_MODES
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"dataset {name!r}: {path} is not an image Pillow can read ({exc})") from None
    if size is None and len(dims) > 1:
        raise DataError(
            f"dataset {name!r}: the images of {folder} have {len(dims)} sizes (such as "
            f"{', '.join(f'{w}x{h}' for h, w in sorted(dims)[:2])}); declare size: [H, W] to resize them all"
        )
    pillow_mode = "L" if mode == "grey" or (mode == "auto" and grey) else "RGB"
    height, width = size or next(iter(dims))
    dataset = _Folder(
        name=name,
        variant=_variant({**declaration, "mode": "grey" if pillow_mode == "L" else "rgb"}, ("mode", "size")),
        description=str(declaration.get("description") or f"image folder {folder.name}"),
        folder=folder,
        files=files,
        classes=classes,
        mode=pillow_mode,
        size=size,
    )
    return dataset.spec(
        len(classes), (height, width, 1 if pillow_mode == "L" else 3), len(files), [p for p, _ in files]
    )


FORMATS = (
    DatasetFormat(
        "arrays", build_arrays, ARRAY_KEYS, "features and labels in .npy files, or both in one .npz"
    ),
    DatasetFormat("image-folder", build_folder, FOLDER_KEYS, "one subfolder of images per class"),
)
