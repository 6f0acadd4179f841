"""Scores on hand-worked clusterings, under any numbering of the clusters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import METRICS, cluster_accuracy, score


def test_acc_is_invariant_to_cluster_numbering():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert cluster_accuracy(y, np.array([7, 7, 3, 3, 9, 9])) == 1.0


def test_acc_hand_worked_case():
    # Best map: cluster 0 -> class 0 (2 right), cluster 1 -> class 1 (2 right); 4 of 6.
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0, 0, 1, 1, 1, 0])
    assert cluster_accuracy(y, p) == pytest.approx(4 / 6)


def test_acc_more_clusters_than_classes_counts_unmatched_clusters_as_wrong():
    # Four clusters for two classes: only two clusters can be matched (one per class).
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert cluster_accuracy(y, p) == pytest.approx(4 / 8)


def test_acc_labels_one_to_twenty():
    # Classes numbered 1..20 (as COIL-20's objects are) against clusters 0..19, shifted by 5.
    y = np.repeat(np.arange(1, 21), 3)
    p = (y + 5) % 20
    assert cluster_accuracy(y, p) == 1.0
    p[0] = p[3]  # one point moved into another class's cluster
    assert cluster_accuracy(y, p) == pytest.approx(59 / 60)


def test_nmi_variants_differ_and_match_hand_computation():
    # Two classes of 2, clustering puts everything in one cluster except one point.
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 0, 0, 1])
    s = score(y, p)
    # H(Y) = ln 2; H(C) = H(3/4, 1/4); I = H(C) - H(C|Y) = H(C) - 1/2 * ln 2
    h_y = math.log(2)
    h_c = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mi = h_c - 0.5 * math.log(2)
    assert s["nmi_geometric"] == pytest.approx(mi / math.sqrt(h_y * h_c))
    assert s["nmi_arithmetic"] == pytest.approx(mi / ((h_y + h_c) / 2))
    assert s["nmi_geometric"] != pytest.approx(s["nmi_arithmetic"])


def test_ari_and_all_keys():
    y = np.array([0, 0, 1, 1])
    s = score(y, np.array([1, 1, 0, 0]))
    assert tuple(s) == METRICS
    assert s["ari"] == pytest.approx(1.0)
    assert score(y, np.array([0, 1, 0, 1]))["ari"] == pytest.approx(-0.5)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="3 true labels but 2 predicted"):
        score(np.array([0, 1, 1]), np.array([0, 1]))
