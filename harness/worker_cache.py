"""What a worker process keeps between jobs: the plugin registry and the last datasets it loaded.

A local worker runs one job and exits, so this cache only pays off where processes are reused (Ray
keeps its worker processes, and a seed-batched task runs several jobs in one): the second job on
MNIST then skips reading and checksumming 55 MB of gzip. Cached arrays are read-only, so a method
that changed its input in place would fail loudly instead of corrupting the next job's data; the
worker hands methods a copy.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.contract import check_dataset
from harness.identity import core_identity, dataset_identity, method_identity, metric_identity
from harness.plugins import Registry, load_registry
from harness.types import Dataset

MAX_DATASETS = 2
"""Datasets kept per process: MNIST as float32 is 220 MB, and a sweep visits datasets in order."""

_registries: dict[tuple[tuple[str, ...], tuple[str, ...], str], Registry] = {}
_datasets: OrderedDict[tuple[str, str], Dataset] = OrderedDict()
_identities: dict[tuple[int, str, str], tuple[str, str, str]] = {}
_metric_identities: dict[int, dict[str, str]] = {}


def registry(
    blocked: tuple[str, ...],
    extra_modules: tuple[str, ...],
    own_datasets: Mapping[str, Any] | None = None,
    own_datasets_dir: str | None = None,
) -> Registry:
    """The registry for these plugin options and declared datasets, built once per process."""
    own = dict(own_datasets or {})
    key = (
        tuple(blocked),
        tuple(extra_modules),
        json.dumps([own, own_datasets_dir], sort_keys=True, default=str),
    )
    if key not in _registries:
        loaded = load_registry(blocked=blocked, extra_modules=extra_modules)
        if own:
            loaded = loaded.declare(own, Path(own_datasets_dir or "."))
        _registries[key] = loaded
    return _registries[key]


def dataset(registry: Registry, name: str, root: Path) -> Dataset:
    """Dataset ``name`` under ``root``, loaded (and checksummed) once per process."""
    key = (name, str(Path(root).resolve()))
    if key in _datasets:
        _datasets.move_to_end(key)
        return _datasets[key]
    spec, provider = registry.datasets[name]
    loaded = spec.load(root)
    check_dataset(provider.plugin, loaded, spec)  # what the method gets is what the spec declares
    loaded.images.setflags(write=False)
    loaded.labels.setflags(write=False)
    _datasets[key] = loaded
    while len(_datasets) > MAX_DATASETS:
        _datasets.popitem(last=False)
    return loaded


def identity(registry: Registry, method: str, dataset: str) -> tuple[str, str, str]:
    """The identities of the code this process has loaded for ``method`` and ``dataset``, and of
    the core, computed when first asked: a process reused across sweeps (Ray keeps its workers)
    keeps the code it imported, even after the files on disk changed."""
    key = (id(registry), method, dataset)
    if key not in _identities:
        _identities[key] = (
            method_identity(*registry.methods[method]).digest,
            dataset_identity(*registry.datasets[dataset]).digest,
            core_identity(),
        )
    return _identities[key]


def metric_identities(registry: Registry) -> dict[str, str]:
    """Metric name → the digest of the plugin code this process scores it with (plugin metrics
    only: the core's are covered by the core identity), computed once per registry."""
    key = id(registry)
    if key not in _metric_identities:
        found = {name: metric_identity(spec, provider) for name, (spec, provider) in registry.metrics.items()}
        _metric_identities[key] = {name: digest for name, digest in found.items() if digest is not None}
    return _metric_identities[key]


def clear() -> None:
    """Forget everything (tests)."""
    _registries.clear()
    _metric_identities.clear()
    _datasets.clear()
    _identities.clear()
