"""The contract kit: checks a plugin's author runs in their own tests, as scikit-learn's estimator
checks are run, so that a plugin which passes them behaves in a sweep::

    from harness.testing import check_dataset, check_method

    def test_my_method_keeps_the_contract():
        (spec,) = my_plugin.harness_methods()
        check_method(spec, params={"epochs": 1})  # a small budget keeps the test fast

    def test_my_dataset_keeps_the_contract(tmp_path):
        (spec,) = my_plugin.harness_datasets()
        check_dataset(spec, root=where_the_files_are)

A method is run the way a worker runs it (the same input shaping, Python and NumPy seeded first,
a context that records what it reports) on a tiny input, by default the first 60 of
scikit-learn's digits. The output rules themselves are those the worker enforces
(:mod:`harness.contract`); what only a test can see (a seed run twice, a dry run, a batch of
seeds) is checked here. Each breach raises :class:`~harness.contract.ContractError` with one line
that names the plugin and what it broke.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import contract, metrics
from harness.contract import ContractError
from harness.params import resolve
from harness.preprocess import prepare
from harness.types import Dataset, DatasetSpec, MethodSpec
from harness.worker import seed_python_and_numpy

__all__ = ["ContractError", "KitContext", "check_dataset", "check_method", "tiny_digits"]

DRY_RUN_FACTOR = 2.0
DRY_RUN_SLACK_S = 5.0
"""A dry run with the method's defaults may take at most ``2 x`` the full run with the test's small
budget, plus 5 s: generous, so that a loaded machine does not fail it, yet a method that trains its
full default budget under ``dry_run`` takes far longer."""


def tiny_digits(n: int = 60) -> Dataset:
    """The first ``n`` of scikit-learn's 8x8 digits (bundled, offline), every class among them."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Dataset(
        name="digits",
        images=(bunch.images[:n] / 16.0).astype(np.float32)[..., np.newaxis],
        labels=bunch.target[:n].astype(np.int64),
        n_classes=10,
        variant="all",
        scaling="counts/16",
    )


@dataclass
class KitContext:
    """A :class:`harness.types.JobContext` that keeps what the method reports and whether it
    looked at ``dry_run``."""

    seed: int
    cache_dir: Path
    truth: np.ndarray
    dataset: str = "digits"
    input_size: int = 8
    device: str = "cpu"
    dry: bool = False
    dry_run_read: bool = False
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    progress_calls: int = 0

    @property
    def dry_run(self) -> bool:
        self.dry_run_read = True
        return self.dry

    def log_metric(self, key: str, value: float, step: int) -> None:
        self.curves.setdefault(key, {})[int(step)] = float(value)

    def evaluate(self, labels: np.ndarray, step: int, **extra: float) -> None:
        # scored as the worker scores them, and nothing returned: methods never see a score
        metrics.score(self.truth, labels)

    def progress(self, completed: float, total: float, description: str = "") -> None:
        self.progress_calls += 1


@dataclass(frozen=True)
class _Run:
    labels: np.ndarray
    contexts: tuple[KitContext, ...]
    seconds: float


class _MethodRunner:
    """Calls a method as the worker does, each call with an empty cache of its own."""

    def __init__(self, spec: MethodSpec, data: Dataset, size: int, device: str, workdir: Path) -> None:
        self.spec, self.data, self.size, self.device = spec, data, size, device
        self.x = prepare(data, size, "bilinear", spec.input)
        self._workdir = workdir
        self._calls = 0

    def _context(self, seed: int, dry: bool) -> KitContext:
        self._calls += 1
        cache = self._workdir / f"cache-{self._calls}"
        cache.mkdir()
        return KitContext(
            seed=seed, cache_dir=cache, truth=self.data.labels, dataset=self.data.name,
            input_size=self.size, device=self.device, dry=dry,
        )  # fmt: skip

    def _labels(self, result: Any) -> np.ndarray:
        result = contract.check_result(self.spec.name, result)
        checked = contract.check_labels(
            self.spec.name, result.labels, len(self.x), self.data.n_classes, noise=self.spec.noise_labels
        )
        return checked.labels

    def one(self, seed: int, params: Mapping[str, Any], dry: bool = False) -> _Run:
        context = self._context(seed, dry)
        seed_python_and_numpy(seed)
        start = time.perf_counter()
        result = self.spec.fit_predict(
            self.x.copy(), n_clusters=self.data.n_classes, seed=seed, params=dict(params), context=context
        )
        seconds = time.perf_counter() - start
        return _Run(self._labels(result), (context,), seconds)

    def batch(self, seeds: Sequence[int], params: Mapping[str, Any]) -> list[np.ndarray]:
        assert self.spec.fit_predict_seeds is not None
        contexts = [self._context(s, dry=False) for s in seeds]
        seed_python_and_numpy(seeds[0])
        results = list(
            self.spec.fit_predict_seeds(
                self.x.copy(), n_clusters=self.data.n_classes, seeds=list(seeds), params=dict(params),
                contexts=contexts,
            )
        )  # fmt: skip
        if len(results) != len(seeds):
            raise ContractError(
                f"method {self.spec.name!r}: fit_predict_seeds returned {len(results)} results for "
                f"{len(seeds)} seeds, expected one per seed in the order given"
            )
        return [self._labels(r) for r in results]


def check_method(
    spec: MethodSpec,
    *,
    params: Mapping[str, Any] | None = None,
    dry_run_params: Mapping[str, Any] | None = None,
    data: Dataset | None = None,
    size: int | None = None,
    seeds: tuple[int, int] = (0, 1),
    device: str = "cpu",
    tolerance: float = 0.02,
) -> None:
    """Check that a method keeps the contract of :class:`~harness.types.MethodSpec`.

    ``params`` override the defaults for the full runs (small budgets for deep methods, such as
    ``{"pretrain_epochs": 1}``). Checked, in this order: every default passes its own parameter's
    rules; ``fit_predict`` returns a :class:`~harness.types.MethodResult` whose labels are one
    integer per sample; the same seed gives the same labels twice; under ``dry_run`` (run with
    ``dry_run_params``, by default the method's own defaults, as ``harness run --dry-run`` would)
    the method reads ``context.dry_run`` and stops early; and, where the spec has
    ``fit_predict_seeds``, each seed of a batch gets the labels ``fit_predict`` gives it alone, up
    to ``tolerance`` (the share of samples that may differ, after matching cluster names: only
    floating-point summation order may differ between the two paths).
    """
    contract.check_param_defaults(spec)
    full = resolve(spec, params or {})
    dry_params = resolve(spec, dry_run_params or {})
    data = data if data is not None else tiny_digits()
    size = size if size is not None else data.images.shape[1]
    if size < spec.min_size:
        raise ValueError(f"method {spec.name!r} takes inputs of {spec.min_size} px or more, got size {size}")
    with tempfile.TemporaryDirectory(prefix=f"harness-check-{spec.name}-") as workdir:
        runner = _MethodRunner(spec, data, size, device, Path(workdir))
        first, again = runner.one(seeds[0], full), runner.one(seeds[0], full)
        _check_deterministic(spec.name, seeds[0], first.labels, again.labels)
        _check_dry_run(
            spec.name, runner.one(seeds[0], dry_params, dry=True), min(first.seconds, again.seconds)
        )
        if spec.fit_predict_seeds is not None:
            alone = [first.labels, *(runner.one(s, full).labels for s in seeds[1:])]
            together = runner.batch(seeds, full)
            for seed, a, b in zip(seeds, alone, together, strict=True):
                _check_same_clustering(spec.name, seed, a, b, tolerance)


def _check_deterministic(method: str, seed: int, first: np.ndarray, again: np.ndarray) -> None:
    if not np.array_equal(first, again):
        differ = int((first != again).sum())
        raise ContractError(
            f"method {method!r} is not deterministic: seed {seed} gave different labels twice "
            f"({differ} of {len(first)} differ); seed every generator it uses from `seed`"
        )


def _check_dry_run(method: str, dry: _Run, full_seconds: float) -> None:
    if not any(c.dry_run_read for c in dry.contexts):
        raise ContractError(
            f"method {method!r} ignores dry_run: fit_predict never read context.dry_run "
            "(a dry run must stop after one batch of each phase)"
        )
    limit = DRY_RUN_FACTOR * full_seconds + DRY_RUN_SLACK_S
    if dry.seconds > limit:
        raise ContractError(
            f"method {method!r} does not stop early under dry_run: a dry run with its defaults took "
            f"{dry.seconds:.1f} s, a full run with the test's parameters {full_seconds:.1f} s"
        )


def _check_same_clustering(
    method: str, seed: int, alone: np.ndarray, together: np.ndarray, tolerance: float
) -> None:
    agreement = metrics.cluster_accuracy(alone, together)
    if agreement < 1.0 - tolerance:
        raise ContractError(
            f"method {method!r}: fit_predict_seeds gave seed {seed} labels that agree with "
            f"fit_predict(seed={seed}) on {agreement:.0%} of the samples, expected at least {1 - tolerance:.0%}"
        )


def check_dataset(spec: DatasetSpec, root: Path | str, *, plugin: str | None = None) -> Dataset:
    """Check that a dataset's files under ``root`` load into what its spec declares; returns them.

    ``fetch(root, download=False)`` must pass (a missing file raises
    :class:`harness.data.DataError`, not a breach: skip the test where the files are absent);
    ``load(root)`` must return a :class:`~harness.types.Dataset` of the spec's name, variant,
    classes, image shape and sample count, with float32 images in [0, 1] and integer labels in
    ``0..n_classes-1``. ``plugin`` names the plugin in the messages (default: the dataset's name).
    """
    root = Path(root)
    plugin = plugin or spec.name
    spec.fetch(root, False)
    dataset = spec.load(root)
    if not isinstance(dataset, Dataset):
        raise ContractError(
            f"dataset {spec.name!r} (plugin {plugin!r}): load() returned {type(dataset).__name__}, "
            "expected a harness.Dataset"
        )
    if dataset.name != spec.name:
        raise ContractError(
            f"dataset {spec.name!r} (plugin {plugin!r}): load() returned a dataset named {dataset.name!r}"
        )
    contract.check_dataset(plugin, dataset, spec)
    return dataset
