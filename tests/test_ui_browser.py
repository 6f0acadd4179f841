"""The MLflow UI in a real headless browser: the sweep's child runs and their ACC are visible.

Needs Debian's chromium (``.ci/run`` installs it) and Playwright's Python client; skips without.
MLflow 3 opens an experiment in its GenAI view: the runs table is at ``#/experiments/<id>/runs``,
and child runs sit under their sweep's parent run until it is expanded.
"""

from __future__ import annotations

import shutil

import pytest
from mlflow import MlflowClient

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_runs_page_shows_child_runs_and_their_acc(tiny_sweep, ui_server, tmp_path):
    uri = tiny_sweep[0]
    base, _ = ui_server
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("t")
    children = client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'job'")
    kmeans = next(r for r in children if r.data.params["method"] == "kmeans")

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 2400, "height": 1400})
            page.goto(
                f"{base}/#/experiments/{experiment.experiment_id}/runs", wait_until="load", timeout=90_000
            )
            page.get_by_text("Run Name").first.wait_for(timeout=90_000)
            page.get_by_role("button", name="Columns").click()  # show the final ACC column
            page.get_by_text("acc", exact=True).first.click()
            page.keyboard.press("Escape")
            # each sweep's parent run folds its children: unfold every sweep (reruns make several)
            sweeps = page.locator("[role=row]").filter(has_text="sweep")
            for i in range(sweeps.count()):
                sweeps.nth(i).locator("button").first.click()
            page.get_by_text(kmeans.info.run_name).first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "runs.png"))
            headers = [h.strip() for h in page.locator("[role=columnheader]").all_inner_texts()]
            table = page.locator("[role=grid], [role=table]").first.inner_text()
        finally:
            browser.close()

    assert "acc" in headers
    for run in children:
        assert run.info.run_name in table
    assert f"{kmeans.data.metrics['acc']:.4f}"[:5] in table
