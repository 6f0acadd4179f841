"""The output contract of plugins, checked where the data pass (the worker, the registry).

A benchmark scores whatever a method hands back; a method that returns one cluster per image, or
a dataset whose pixels are 0..255, would otherwise produce a number that looks like any other.
Each check raises :class:`ContractError` with one line naming the plugin, the value and what is
allowed. The contract kit (:mod:`harness.testing`) runs the same checks in a plugin's own tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import UsageError
from harness.types import Dataset, DatasetSpec, MethodResult, MethodSpec

NOISE = -1
"""The label of a point a method leaves unclustered (only for methods that declare noise labels)."""


class ContractError(ValueError):
    """A plugin's output or declaration breaks the contract of :mod:`harness.types`."""


@dataclass(frozen=True)
class Labels:
    """A method's labels after the checks: int64, with what a reader of the run should know."""

    labels: np.ndarray
    n_found: int
    """Distinct clusters, the noise label not counted."""
    n_noise: int
    warnings: tuple[str, ...] = ()


def check_result(method: str, result: Any) -> MethodResult:
    """What ``fit_predict`` returned must be a :class:`MethodResult`, not bare labels."""
    if not isinstance(result, MethodResult):
        raise ContractError(
            f"method {method!r}: fit_predict returned {type(result).__name__}, expected a "
            "harness.MethodResult (return MethodResult(labels=...))"
        )
    return result


def check_labels(method: str, labels: Any, n_samples: int, n_clusters: int, *, noise: bool = False) -> Labels:
    """Labels must be integers (integral floats pass), 1-D, one per sample and non-negative.

    ``noise``: the method declares that it may leave points unclustered with label -1; those are
    scored as a cluster of their own and counted. Finding more clusters than were asked for is no
    breach (some methods choose K themselves) but a warning, since it inflates NMI.
    """
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != n_samples:
        raise ContractError(
            f"method {method!r} returned labels of shape {array.shape}, expected ({n_samples},): "
            "one label per sample"
        )
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer)
        or (
            np.issubdtype(array.dtype, np.floating)
            and np.isfinite(array).all()
            and np.array_equal(array, np.round(array))
        )
    ):
        # scored as given but stored as int64, 0.1 and 0.2 would be two clusters, then one
        example = array.flat[0] if array.size else None
        raise ContractError(
            f"method {method!r} returned non-integer labels ({array.dtype}, e.g. {example!r}); "
            "labels must be integers"
        )
    array = array.astype(np.int64)
    lowest = int(array.min()) if array.size else 0
    allowed = "0 or more" + (" (or -1 for noise)" if noise else "")
    if lowest < (NOISE if noise else 0):
        hint = (
            ""
            if noise or lowest != NOISE
            else "; a method that leaves points unclustered declares noise_labels=True"
        )
        raise ContractError(f"method {method!r} returned label {lowest}: labels must be {allowed}{hint}")
    n_noise = int((array == NOISE).sum())
    n_found = len(np.unique(array[array != NOISE]))
    warnings = []
    if n_found > n_clusters:
        warnings.append(
            f"harness: method {method!r} found {n_found:,} clusters for k = {n_clusters}, more than "
            "asked: its NMI and ARI are not comparable with methods that keep to k"
        )
    return Labels(array, n_found, n_noise, tuple(warnings))


def check_dataset(plugin: str, dataset: Dataset, spec: DatasetSpec) -> None:
    """A dataset's arrays must be what its spec declares: float32 images in [0, 1] of the spec's
    shape and count, integer labels in 0..n_classes-1, the spec's variant and classes."""
    where = f"dataset {spec.name!r} (plugin {plugin!r})"
    if (dataset.variant, dataset.n_classes) != (spec.variant, spec.n_classes):
        # the spec's values are what the run key, the parameters and the tables record
        raise ContractError(
            f"{where}: load() returned variant {dataset.variant!r} with {dataset.n_classes} classes, "
            f"but its DatasetSpec says variant {spec.variant!r} with {spec.n_classes}"
        )
    images, labels = dataset.images, dataset.labels
    expected = (spec.n_samples, *spec.image_shape)
    if tuple(images.shape) != expected:
        raise ContractError(
            f"{where}: load() returned images of shape {images.shape}, its spec says {expected}"
        )
    if images.dtype != np.float32:
        raise ContractError(f"{where}: images are {images.dtype}, expected float32 scaled to [0, 1]")
    if images.size:
        low, high = float(images.min()), float(images.max())
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
            raise ContractError(
                f"{where}: image values span [{low:g}, {high:g}], expected [0, 1] "
                "(divide raw 8-bit pixels by 255 and record it as the scaling)"
            )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ContractError(
            f"{where}: labels must be 1-D integers, got {labels.dtype} of shape {labels.shape}"
        )
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= spec.n_classes):
        raise ContractError(
            f"{where}: labels span {int(labels.min())}..{int(labels.max())}, expected 0..{spec.n_classes - 1}"
        )


def check_param_defaults(spec: MethodSpec) -> None:
    """Every declared default must pass its own parameter's rules (type, bounds, choices)."""
    from harness.params import coerce, describe

    for p in spec.params:
        try:
            value = coerce(spec.name, p, p.default)
        except UsageError:
            value = _REFUSED
        if value is _REFUSED or value != p.default or isinstance(value, bool) != isinstance(p.default, bool):
            raise ContractError(
                f"method {spec.name!r}: the default of parameter {p.name!r} is {p.default!r}, which its "
                f"own rule refuses: it must be {describe(p)}"
            )


_REFUSED = object()
