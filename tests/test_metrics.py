"""Scores on hand-worked clusterings, under any numbering of the clusters."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness.metrics import BUILTIN, METRICS, RunArrays, cluster_accuracy, score, score_run


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


# -- the metrics beside ACC, NMI and ARI, on hand-worked clusterings ---------------------------------

EXTERNAL = {spec.name: spec.score for spec in BUILTIN if spec.kind == "external"}


def _mutual_information(y, p) -> float:
    """MI in nats from the counts, by hand: sum of n_ij/n * ln(n * n_ij / (n_i * n_j))."""
    n = len(y)
    total = 0.0
    for a in set(y):
        for b in set(p):
            n_ij = sum(1 for u, v in zip(y, p, strict=True) if u == a and v == b)
            if n_ij:
                total += n_ij / n * math.log(n * n_ij / (y.count(a) * p.count(b)))
    return total


def _entropy(labels) -> float:
    n = len(labels)
    return -sum(labels.count(v) / n * math.log(labels.count(v) / n) for v in set(labels))


def test_every_metric_is_perfect_on_a_renumbered_partition():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([7, 7, 3, 3, 5, 5])
    assert {name: score(y, p) for name, score in EXTERNAL.items()} == pytest.approx(
        dict.fromkeys(EXTERNAL, 1.0)
    )


def test_more_clusters_than_classes():
    # each class split into two pure clusters of two
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    s = {name: score(y, p) for name, score in EXTERNAL.items()}
    assert s["homogeneity"] == pytest.approx(1.0)  # every cluster is pure
    assert s["purity"] == pytest.approx(1.0)  # ... which purity rewards
    # I(Y;C) = H(C) - H(C|Y) = ln 4 - ln 2 = ln 2; completeness = I / H(C) = 1/2
    assert s["completeness"] == pytest.approx(0.5)
    assert s["v_measure"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    # pairs: same cluster 4, same class 2 * C(4,2) = 12, both 4: FMI = 4 / sqrt(4 * 12)
    assert s["fmi"] == pytest.approx(4 / math.sqrt(48))
    # one cluster per class is matched: per class precision 1, recall 1/2, F1 2/3
    assert s["f1_macro"] == pytest.approx(2 / 3)
    assert s["acc"] == pytest.approx(0.5)
    # AMI = (MI - E[MI]) / (mean(H(Y), H(C)) - E[MI]), E over every arrangement of the clusters
    yl, pl = y.tolist(), p.tolist()
    arrangements = set(itertools.permutations(pl))
    expected = sum(_mutual_information(yl, list(a)) for a in arrangements) / len(arrangements)
    mi = _mutual_information(yl, pl)
    assert mi == pytest.approx(math.log(2))
    ami = (mi - expected) / ((_entropy(yl) + _entropy(pl)) / 2 - expected)
    assert s["ami"] == pytest.approx(ami)


def test_one_cluster():
    y = np.array([0, 0, 1, 1])
    p = np.zeros(4, dtype=int)
    s = {name: score(y, p) for name, score in EXTERNAL.items()}
    assert s["acc"] == s["purity"] == pytest.approx(0.5)
    assert s["homogeneity"] == pytest.approx(0.0) and s["v_measure"] == pytest.approx(0.0)
    assert s["completeness"] == pytest.approx(1.0)  # each class is all in one cluster
    assert s["ami"] == pytest.approx(0.0) and s["ari"] == pytest.approx(0.0)
    # pairs: same cluster C(4,2) = 6, same class 2, both 2: FMI = 2 / sqrt(6 * 2)
    assert s["fmi"] == pytest.approx(2 / math.sqrt(12))
    # the cluster is matched to one class: F1 = 2 * (1/2 * 1) / (1/2 + 1) = 2/3 there, 0 for the other
    assert s["f1_macro"] == pytest.approx(1 / 3)


def test_macro_f1_weighs_classes_alike():
    # cluster 0 -> class 0 (precision 2/3, recall 1: F1 0.8), cluster 1 -> class 1 (1, 1/2: F1 2/3)
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 0, 0, 1])
    assert EXTERNAL["f1_macro"](y, p) == pytest.approx((0.8 + 2 / 3) / 2)
    assert EXTERNAL["acc"](y, p) == pytest.approx(0.75)
    # AMI is 0 here: wherever the lone point's cluster goes, the mutual information is the same
    assert EXTERNAL["ami"](y, p) == pytest.approx(0.0, abs=1e-12)


def test_silhouette_on_the_embedding_is_label_free_and_hand_worked():
    (spec,) = [s for s in BUILTIN if s.name == "silhouette_embedding"]
    assert spec.kind == "internal" and spec.needs == "embedding"
    embedding = np.array([[0.0], [1.0], [10.0], [11.0]])
    # a = 1 everywhere; b = 10.5 for the outer points, 9.5 for the inner ones
    expected = (9.5 / 10.5 + 8.5 / 9.5) / 2
    assert spec.score(embedding, np.array([0, 0, 1, 1])) == pytest.approx(expected)


def test_score_run_keeps_the_other_scores_when_a_metric_fails_and_skips_what_a_run_lacks():
    from harness.types import MetricSpec

    def broken(y, p):
        raise ZeroDivisionError("as asked")

    specs = [
        *BUILTIN,
        MetricSpec("broken", "external", broken, "raises"),
        MetricSpec("nan", "external", lambda y, p: float("nan"), "not a number"),
    ]
    y = np.array([0, 0, 1, 1])
    scores, problems = score_run(specs, RunArrays(labels=np.array([1, 1, 0, 0]), labels_true=y))
    assert scores["acc"] == 1.0 and "broken" not in scores and "nan" not in scores
    assert "silhouette_embedding" not in scores  # no embedding: no value, and no complaint
    assert problems == [
        "harness: metric 'broken' failed: ZeroDivisionError: as asked",
        "harness: metric 'nan' failed: ValueError: returned nan, expected a finite number",
    ]


def test_a_metric_spec_names_a_bad_kind():
    from harness.types import MetricSpec

    with pytest.raises(ValueError, match="metric 'x': kind must be 'external' or 'internal', got 'outer'"):
        MetricSpec("x", "outer", EXTERNAL["acc"], "")  # type: ignore[arg-type]
