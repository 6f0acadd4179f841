"""The MLflow UI in a real headless browser, at the address ``harness ui`` prints: the runs table
of a model-training experiment, the job runs grouped by configuration, dataset and size, with
their names, dataset inputs, ACC and NMI (geometric) visible without a click.

Needs Debian's chromium (``.ci/run`` installs it) and Playwright's Python client; skips without.
The screenshot is left at ``$HARNESS_UI_SCREENSHOT`` (default: the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil

import pytest
from mlflow import MlflowClient

from harness import record
from harness.tracking import ui_url

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_runs_page_opens_on_the_job_runs_and_their_scores(tiny_sweep, ui_server, tmp_path):
    uri = tiny_sweep[0]
    base, _ = ui_server
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("t")
    assert experiment.tags[record.EXPERIMENT_KIND] == "custom_model_development"
    children = client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'job'")
    kmeans = next(r for r in children if r.data.params["method"] == "kmeans")
    assert kmeans.info.run_name.startswith("kmeans") and " · digits@8 · seed " in kmeans.info.run_name
    shot = os.environ.get("HARNESS_UI_SCREENSHOT") or str(tmp_path / "runs.png")

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 2400, "height": 1400})
            page.goto(ui_url(base, experiment.experiment_id), wait_until="load", timeout=90_000)
            for run in children:  # no row to unfold, no column to pick
                page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=90_000)
            page.screenshot(path=shot)
            headers = [h.strip() for h in page.locator("[role=columnheader]").all_inner_texts()]
            table = page.locator("[role=grid], [role=table]").first.inner_text()
            body = page.locator("body").inner_text()
        finally:
            browser.close()

    assert {"Run Name", "Dataset", "acc", "nmi_geometric"} <= set(headers)
    assert "Model training" in body and "Group: harness.configuration: kmeans" in table
    assert "digits@8px" in table  # the Dataset column: each run's data digest as an input
    for metric in ("acc", "nmi_geometric"):
        assert f"{kmeans.data.metrics[metric]:.4f}"[:5] in table
