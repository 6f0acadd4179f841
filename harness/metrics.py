"""The one place where clusterings are scored, the same way for every method.

Names say which variant they are, because papers differ: NMI in the 2016–2019 deep clustering
papers (DEC, IDEC, DCEC, DLFC) is scikit-learn's pre-0.22 default, the *geometric* mean
normalisation; modern scikit-learn defaults to the *arithmetic* mean. Both are logged.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

METRICS = ("acc", "nmi_geometric", "nmi_arithmetic", "ari")
"""The final scores logged on every run, in the order tables show them."""


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} true labels but {y_pred.size} predicted labels")
    if y_true.size == 0:
        raise ValueError("cannot score an empty clustering")
    return y_true, y_pred


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unsupervised accuracy: the share of points right under the best one-to-one cluster→class map.

    The map is the Hungarian assignment on the contingency table (SciPy). Labels may be any
    integers; with more clusters than classes the unmatched clusters count as wrong, never merged.
    """
    y_true, y_pred = _check(y_true, y_pred)
    table = contingency_matrix(y_true, y_pred)  # classes x clusters, any label values
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y_true.size)


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """All final scores of a clustering, keyed by the names in :data:`METRICS`."""
    y_true, y_pred = _check(y_true, y_pred)
    return {
        "acc": cluster_accuracy(y_true, y_pred),
        "nmi_geometric": float(normalized_mutual_info_score(y_true, y_pred, average_method="geometric")),
        "nmi_arithmetic": float(normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic")),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
    }
