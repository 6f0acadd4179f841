"""The k-means baseline against the published pixel k-means numbers (slow: run with -m slow).

Published (DEC-keras README, ../shared/specs/reference-results.md): ACC / NMI (geometric)
MNIST 0.53 / 0.50, USPS 0.67 / 0.63. One n_init=20 fit on 70,000 MNIST images takes minutes.
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness_reports import load_runs, summarize

pytestmark = [pytest.mark.slow, pytest.mark.data]


@pytest.mark.parametrize(
    ("dataset", "seeds", "acc", "nmi"),
    [("usps", "0-9", 0.67, 0.63), ("mnist", "0-2", 0.53, 0.50)],
)
def test_kmeans_reproduces_pixel_baseline(shared_data, tmp_path, dataset, seeds, acc, nmi):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(
        [
            "run",
            "--methods",
            "kmeans",
            "--datasets",
            dataset,
            "--seeds",
            seeds,
            "--data-dir",
            str(shared_data),
            "--tracking-uri",
            uri,
            "--experiment",
            "repro",
        ]
    )
    assert code == 0
    client = MlflowClient(tracking_uri=uri)
    runs = load_runs(client, client.get_experiment_by_name("repro").experiment_id)
    row = summarize(runs).iloc[0]
    assert row.n_finished == len(runs) and row.n_failed == 0
    assert row.acc_mean == pytest.approx(acc, abs=0.02)
    assert row.nmi_geometric_mean == pytest.approx(nmi, abs=0.02)
