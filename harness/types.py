"""The small value types that plugins and the core exchange.

A method plugin describes itself with a :class:`MethodSpec`, a dataset plugin with a
:class:`DatasetSpec`. In a worker, the core hands a method its data and a :class:`JobContext`
and gets a :class:`MethodResult` back; it scores the labels itself, the same way for every method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

__all__ = [
    "Dataset",
    "DatasetFormat",
    "DatasetSpec",
    "JobContext",
    "MethodResult",
    "MethodSpec",
    "MetricSpec",
    "Param",
]

ParamType = type[int] | type[float] | type[bool] | type[str]


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a method, validated by the core before any job runs.

    ``default=None`` with ``nullable=True`` means "unset" (say, no pretrained weights file).
    ``low``/``high`` bound numbers, inclusive unless ``low_inclusive``/``high_inclusive`` is
    False: a learning rate is ``low=0, low_inclusive=False`` (> 0, since 0 would never train),
    a share of labels ``low=0, high=1`` ([0, 1]). ``choices`` restricts strings.
    """

    name: str
    type: ParamType
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    nullable: bool = False
    in_run_key: bool = True
    """False for settings that cannot change the result (thread counts, ...): a job that differs
    only in them is the same job, so a finished run is not repeated for them."""


@dataclass(frozen=True)
class Dataset:
    """A labelled image set in memory, before any resizing.

    ``images`` is float32 of shape (N, H, W, C) scaled to [0, 1]; ``labels`` is int64 in
    ``0..n_classes-1``. ``variant`` says which split is included (``"train+test"`` for the papers'
    protocol) and ``scaling`` how raw values became [0, 1]: both are recorded on every run.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    n_classes: int
    variant: str
    scaling: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"dataset {self.name!r}: images must be (N, H, W, C), got {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"dataset {self.name!r}: {len(self.images)} images but {len(self.labels)} labels"
            )


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset plugin offers.

    ``fetch(root, download)`` makes sure the canonical files are under ``root`` with good
    checksums (downloading them first when ``download`` is true) and raises
    :class:`harness.data.DataError` naming the file and the fix when it cannot; the CLI calls it
    for every dataset of a sweep before any job runs. ``load(root)`` verifies and reads them.
    """

    name: str
    n_classes: int
    image_shape: tuple[int, int, int]
    """Native (H, W, C) of the images; the input-size axis resizes H and W."""
    n_samples: int
    fetch: Callable[[Path, bool], object]
    load: Callable[[Path], Dataset]
    description: str = ""
    variant: str = "train+test"
    checksums: tuple[str, ...] = ()
    """The SHA256 of the canonical files ``load`` verifies: recorded on every run (with a digest
    of the loader's code) as the dataset's identity. Empty where the data ship in a library."""


@dataclass(frozen=True)
class DatasetFormat:
    """A kind of file that users declare as a dataset in a sweep's config, with no plugin of their
    own (``own_datasets:`` in the YAML file; see the README's "Your own data").

    ``build(name, declaration, base_dir)`` turns one declaration (the mapping under the dataset's
    name, ``format`` key included; relative paths are relative to ``base_dir``, the config file's
    folder) into a :class:`DatasetSpec`. It is called in the parent and again in every worker, so it
    should read only what the spec needs (shapes, labels, file digests); it raises
    :class:`harness.data.DataError` (a :class:`~harness.errors.UsageError`) with one line naming the
    dataset, the key or file and the fix. The spec's ``fetch`` should check everything a job would
    find wrong (values, NaN), since it runs before any job starts.
    """

    name: str
    build: Callable[[str, Mapping[str, Any], Path], DatasetSpec]
    keys: tuple[str, ...] = ()
    """The keys a declaration of this format may have besides ``format``."""
    description: str = ""


class JobContext(Protocol):
    """What a running method may ask of the harness (implemented by the worker).

    Methods never see the true labels, nor any score computed from them, and never talk to
    MLflow: they report curves and progress here, and the parent process logs them.
    """

    seed: int
    device: str
    """``"auto"`` (use a GPU when the framework sees one), ``"cpu"`` or ``"cuda"``/``"cuda:N"``."""
    cache_dir: Path
    """A directory for expensive stages keyed by content (pretrained autoencoders, ...); one per
    identity of the method's code, so an edit of the method never reuses a stage of the old code."""
    dataset: str
    input_size: int
    dry_run: bool
    """Stop after one batch of each phase: a smoke test of the wiring, not a result."""

    def log_metric(self, key: str, value: float, step: int) -> None:
        """Record one point of a training curve (pretraining loss per epoch, ...)."""

    def evaluate(self, labels: np.ndarray, step: int, **extra: float) -> None:
        """Log the scores of intermediate labels as curve points at ``step`` (with ``extra`` values).

        Returns nothing, on purpose: a method that could read its accuracy could pick its best
        epoch or stop on the truth. Show the user what the method computes itself (the share of
        labels that changed, the loss) through :meth:`progress`.
        """

    def progress(self, completed: float, total: float, description: str = "") -> None:
        """Tell the user how far the job is (shown in the parent's progress display)."""


@dataclass
class MethodResult:
    """What a method returns: labels, optionally its embedding, and facts for the run's tags."""

    labels: np.ndarray
    embedding: np.ndarray | None = None
    tags: dict[str, str] = field(default_factory=dict)
    """Facts worth recording (device used, framework versions, cache hits, determinism flags)."""


FitPredict = Callable[..., MethodResult]
"""``fit_predict(x, *, n_clusters, seed, params, context) -> MethodResult``."""

FitPredictSeeds = Callable[..., list[MethodResult]]
"""``fit_predict_seeds(x, *, n_clusters, seeds, params, contexts) -> list[MethodResult]``.

Trains several seeds of one configuration together (``harness run --batch-seeds``). ``seeds`` and
``contexts`` are parallel sequences: ``contexts[i].seed == seeds[i]``, and what is logged on
``contexts[i]`` goes to that seed's own run. Returns one result per seed, in the same order. Each
seed must get what ``fit_predict(seed=seeds[i])`` would give it (its own initial weights, batch
order, k-means start and stop rule); only floating-point summation order may differ.
"""


@dataclass(frozen=True)
class MethodSpec:
    """What a method plugin offers.

    ``input`` says how the core shapes the data for it: ``"flat"`` gives (N, H*W*C) float32,
    ``"image"`` gives (N, H, W, C). ``fit_predict`` must seed its own framework from ``seed``
    (the core has already seeded Python's ``random`` and NumPy's global generator).
    """

    name: str
    fit_predict: FitPredict
    params: tuple[Param, ...] = ()
    input: Literal["flat", "image"] = "flat"
    framework: str = ""
    description: str = ""
    min_size: int = 1
    """The smallest input size (pixels per side) the method can take."""
    fit_predict_seeds: FitPredictSeeds | None = None
    """Optional: train several seeds at once (see :data:`FitPredictSeeds`); without it,
    ``--batch-seeds`` runs this method's seeds one at a time."""
    shares_process: bool = False
    """True where the method's jobs may run one after another in one worker process, reusing the
    datasets it loaded (Ray keeps its workers): only for methods that hold no GPU memory and leave
    no framework state behind (scikit-learn, NumPy). False, the default, gives each job a fresh
    process, as the local executor always does."""
    noise_labels: bool = False
    """The method may leave points unclustered with label -1 (DBSCAN-like); those are scored as a
    cluster of their own and counted (metric ``n_noise``). Without it, a -1 label is an error."""
    gpu_check: Callable[[dict[str, Any], str], str | None] | None = None
    """Optional: ``gpu_check(params, device)`` says in one line why the installed framework cannot
    use the GPU that is visible (``None`` where it can). ``harness run`` calls it once per method
    of a local sweep before any job starts, where a GPU is visible and the device is not ``cpu``,
    and prints what it says, so that a CPU-only build is named before hours of training on the
    CPU. It runs in the parent process: read install metadata, import no framework."""

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


@dataclass(frozen=True)
class MetricSpec:
    """What a metric plugin offers: one final score the core computes on every finished run.

    ``kind`` says what the score compares the labels with. ``"external"``: the truth, called as
    ``score(labels_true, labels)``; the method never sees it. ``"internal"``: no truth, a
    label-free criterion, called as ``score(data, labels)`` where ``data`` is the method's
    embedding (``on="embedding"``; runs without one get no value) or the images it received,
    flattened to (N, D) float32 (``on="input"``). ``score`` returns one float; it is called in the
    worker at run time and again by ``harness report`` on the stored arrays of runs that predate
    the metric, so it must depend on its arguments only.
    """

    name: str
    kind: Literal["external", "internal"]
    score: Callable[[np.ndarray, np.ndarray], float]
    help: str
    higher_is_better: bool = True
    on: Literal["embedding", "input"] = "embedding"
    """What an internal metric scores the labels against (ignored for external ones)."""
    label: str = ""
    """A short column header for tables (``"AMI"``); the name where empty."""

    def __post_init__(self) -> None:
        if self.kind not in ("external", "internal"):
            raise ValueError(
                f"metric {self.name!r}: kind must be 'external' or 'internal', got {self.kind!r}"
            )
        if self.on not in ("embedding", "input"):
            raise ValueError(f"metric {self.name!r}: on must be 'embedding' or 'input', got {self.on!r}")

    @property
    def needs(self) -> str:
        """The stored array besides the labels that the score reads: truth, embedding or input."""
        return "labels_true" if self.kind == "external" else self.on
