"""A metric plugin whose metric raises on every run (``--plugin harness_test_fragile_metrics``):
the run must finish with its other scores and say what failed."""

from __future__ import annotations

import numpy as np

from harness import MetricSpec, hookimpl


def fragile(labels_true: np.ndarray, labels: np.ndarray) -> float:
    raise ZeroDivisionError("fragile fails as asked")


@hookimpl
def harness_metrics():
    return [MetricSpec("fragile", "external", fragile, "always raises")]
