"""The one place where clusterings are scored, the same way for every method.

Names say which variant they are, because papers differ: NMI in the 2016–2019 deep clustering
papers (DEC, IDEC, DCEC, DLFC) is scikit-learn's pre-0.22 default, the *geometric* mean
normalisation; modern scikit-learn defaults to the *arithmetic* mean. Both are logged.

Every final score arrives through the ``harness_metrics`` hook: this module is the built-in metric
plugin (entry point ``metrics`` of the harness distribution), registered exactly as a third
party's would be, and :func:`score_run` is what the worker and ``harness report`` call on every
metric of every plugin alike, so that a score computed after the fact on stored arrays is the
score the run would have logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    completeness_score,
    f1_score,
    fowlkes_mallows_score,
    homogeneity_score,
    normalized_mutual_info_score,
    silhouette_score,
    v_measure_score,
)
from sklearn.metrics.cluster import contingency_matrix

from harness.hookspecs import hookimpl
from harness.types import MetricSpec

METRICS = ("acc", "nmi_geometric", "nmi_arithmetic", "ari")
"""The scores :meth:`~harness.types.JobContext.evaluate` logs as curve points during training."""
DEFAULT_TABLE_METRICS = ("acc", "nmi_geometric")
"""What tables show unless ``--metrics`` picks others."""
SILHOUETTE_SAMPLE = 5000
"""Points the silhouette is estimated on (a fixed sample): the full one is quadratic in N."""


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} true labels but {y_pred.size} predicted labels")
    if y_true.size == 0:
        raise ValueError("cannot score an empty clustering")
    return y_true, y_pred


def _matching(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contingency table (classes x clusters) and the Hungarian one-to-one cluster→class map on
    it (SciPy): matched class rows and cluster columns."""
    table = contingency_matrix(y_true, y_pred)  # any label values
    rows, cols = linear_sum_assignment(table, maximize=True)
    return table, rows, cols


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unsupervised accuracy: the share of points right under the best one-to-one cluster→class map.

    The map is the Hungarian assignment on the contingency table (SciPy). Labels may be any
    integers; with more clusters than classes the unmatched clusters count as wrong, never merged.
    """
    y_true, y_pred = _check(y_true, y_pred)
    table, rows, cols = _matching(y_true, y_pred)
    return float(table[rows, cols].sum() / y_true.size)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over classes of the F1 score once clusters are mapped to classes as for ACC.

    Unlike ACC it weighs every class alike, so a method that sacrifices a small class shows it. A
    cluster left unmatched (more clusters than classes) predicts no class: its points count against
    the recall of their classes.
    """
    y_true, y_pred = _check(y_true, y_pred)
    _, rows, cols = _matching(y_true, y_pred)
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    unmatched = classes.min() - 1  # a value that is no class
    mapped = np.full(y_pred.shape, unmatched, dtype=np.int64)
    for row, col in zip(rows, cols, strict=True):
        mapped[y_pred == clusters[col]] = classes[row]
    return float(f1_score(y_true, mapped, labels=classes, average="macro", zero_division=0))


def purity(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of points in their cluster's majority class. Not matched one-to-one: more clusters
    always help (one point per cluster scores 1), so read it beside ACC or NMI."""
    y_true, y_pred = _check(y_true, y_pred)
    return float(contingency_matrix(y_true, y_pred).max(axis=0).sum() / y_true.size)


def _nmi(average: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def nmi(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(normalized_mutual_info_score(*_check(y_true, y_pred), average_method=average))

    return nmi


def _sklearn(function: Callable[..., float]) -> Callable[[np.ndarray, np.ndarray], float]:
    def scored(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(function(*_check(y_true, y_pred)))

    scored.__name__ = function.__name__
    return scored


def silhouette_on_embedding(embedding: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the labels in the method's embedding (Euclidean), on a fixed sample of
    :data:`SILHOUETTE_SAMPLE` points: the same sample for the same N, run time or after the fact."""
    embedding = np.asarray(embedding, dtype=np.float32).reshape(len(embedding), -1)
    labels = np.asarray(labels).ravel()
    sample = min(len(labels), SILHOUETTE_SAMPLE)
    return float(silhouette_score(embedding, labels, sample_size=sample, random_state=0))


BUILTIN = (
    MetricSpec("acc", "external", cluster_accuracy, "accuracy under the best one-to-one cluster→class map (Hungarian)", label="ACC"),
    MetricSpec("nmi_geometric", "external", _nmi("geometric"), "normalised mutual information, geometric mean of the entropies (the 2016-2019 papers')", label="NMI (geom.)"),
    MetricSpec("nmi_arithmetic", "external", _nmi("arithmetic"), "normalised mutual information, arithmetic mean (scikit-learn's default since 0.22)", label="NMI (arith.)"),
    MetricSpec("ari", "external", _sklearn(adjusted_rand_score), "adjusted Rand index: pair agreement corrected for chance (0 for random labels)", label="ARI"),
    MetricSpec("ami", "external", _sklearn(adjusted_mutual_info_score), "adjusted mutual information (arithmetic mean), corrected for chance", label="AMI"),
    MetricSpec("fmi", "external", _sklearn(fowlkes_mallows_score), "Fowlkes-Mallows index: geometric mean of pair precision and pair recall", label="FMI"),
    MetricSpec("homogeneity", "external", _sklearn(homogeneity_score), "each cluster holds points of one class only", label="homog."),
    MetricSpec("completeness", "external", _sklearn(completeness_score), "all points of a class fall into one cluster", label="compl."),
    MetricSpec("v_measure", "external", _sklearn(v_measure_score), "harmonic mean of homogeneity and completeness (NMI, arithmetic)", label="V-measure"),
    MetricSpec("purity", "external", purity, "share of points in their cluster's majority class (more clusters always help)", label="purity"),
    MetricSpec("f1_macro", "external", macro_f1, "F1 per class after the Hungarian map, averaged over classes", label="F1 (macro)"),
    MetricSpec("silhouette_embedding", "internal", silhouette_on_embedding, f"label-free: mean silhouette of the clusters in the method's embedding (sample of {SILHOUETTE_SAMPLE})", on="embedding", label="silhouette (emb.)"),
)  # fmt: skip
"""The built-in metrics, in the order tables and listings show them."""


@hookimpl
def harness_metrics() -> list[MetricSpec]:
    return list(BUILTIN)


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The scores of :data:`METRICS` (the training curves' points), keyed by name."""
    y_true, y_pred = _check(y_true, y_pred)
    by_name = {spec.name: spec for spec in BUILTIN}
    return {name: by_name[name].score(y_true, y_pred) for name in METRICS}


@dataclass(frozen=True)
class RunArrays:
    """What a run's scores are computed from: the labels and, where there are, the truth, the
    embedding, and a way to get the flattened input (loaded only if a metric needs it)."""

    labels: np.ndarray
    labels_true: np.ndarray | None = None
    embedding: np.ndarray | None = None
    input: Callable[[], np.ndarray | None] | None = None


def score_one(spec: MetricSpec, arrays: RunArrays) -> float | None:
    """One metric of one run; ``None`` where the run lacks what it needs (no embedding). Raises
    whatever the metric raises, and :class:`ValueError` for a value that is not a finite number."""
    if spec.kind == "external":
        other = arrays.labels_true
    elif spec.on == "embedding":
        other = arrays.embedding
    else:
        other = arrays.input() if arrays.input is not None else None
    if other is None:
        return None
    value = spec.score(other, arrays.labels)
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"returned {value!r}, expected a float")
    if not math.isfinite(float(value)):
        raise ValueError(f"returned {float(value)}, expected a finite number")
    return float(value)


def score_run(specs: Iterable[MetricSpec], arrays: RunArrays) -> tuple[dict[str, float], list[str]]:
    """Every metric of ``specs`` on one run: the scores, and one warning per metric that failed.

    A metric that raises costs only its own value: the run keeps the others, and the warning
    (``harness: metric 'NAME' failed: ...``) goes on the run.
    """
    scores: dict[str, float] = {}
    problems: list[str] = []
    for spec in specs:
        try:
            value = score_one(spec, arrays)
        except Exception as exc:  # noqa: BLE001 - a metric plugin's bug must not fail the run
            text = str(exc).strip().splitlines()
            problems.append(
                f"harness: metric {spec.name!r} failed: {type(exc).__name__}"
                + (f": {text[0]}" if text else "")
            )
            continue
        if value is not None:
            scores[spec.name] = value
    return scores, problems
