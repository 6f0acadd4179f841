"""A third party's metric plugin, for the tests (``--plugin harness_test_metrics``).

``raw_agreement`` is external: the share of points whose cluster number equals their class
number, which (unlike ACC) depends on the numbering, so hand-worked values tell it from any
built-in. ``davies_bouldin_input`` is internal: scikit-learn's Davies-Bouldin index of the labels
on the images the method received (lower is better).
"""

from __future__ import annotations

import numpy as np

from harness import MetricSpec, hookimpl


def raw_agreement(labels_true: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(labels_true) == np.asarray(labels)))


def davies_bouldin_input(x: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import davies_bouldin_score

    return float(davies_bouldin_score(x, labels))


@hookimpl
def harness_metrics():
    return [
        MetricSpec("raw_agreement", "external", raw_agreement, "share of labels equal to the class number"),
        MetricSpec(
            "davies_bouldin_input",
            "internal",
            davies_bouldin_input,
            "Davies-Bouldin index of the clusters on the input",
            higher_is_better=False,
            on="input",
        ),
    ]
