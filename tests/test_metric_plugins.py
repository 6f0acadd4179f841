"""Metrics as plugins: a third party's metric is listed, scored on every run and picked by
``report --metrics``; a broken one costs only itself; scores computed after the fact on stored
arrays are the scores logged at run time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlflow import MlflowClient

from harness import MetricSpec, hookimpl
from harness.cli import main
from harness.errors import ExitCode
from harness.plugins import load_registry

PLUGINS = ["--plugin", "harness_test_plugins"]
METRIC_PLUGINS = ["--plugin", "harness_test_metrics", "--plugin", "harness_test_fragile_metrics"]
LATER = ("ami", "f1_macro", "silhouette_embedding", "raw_agreement", "davies_bouldin_input")


def _job_runs(uri: str, experiment: str = "t") -> dict[str, object]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'")  # newest first
    newest: dict[str, object] = {}
    for run in runs:
        newest.setdefault(run.data.params["method"], run)
    return newest


def test_a_third_party_metric_is_listed_with_the_built_in_ones(capsys):
    assert main(["list", "--json", "--plugin", "harness_test_metrics"]) == ExitCode.OK
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["metrics"]}
    assert {"acc", "nmi_geometric", "ami", "fmi", "purity", "f1_macro", "v_measure"} <= set(listed)
    assert listed["acc"]["plugin"] == "metrics"  # the built-ins come through the same hook
    assert listed["raw_agreement"] | {"help": ""} == {
        "name": "raw_agreement",
        "distribution": "",
        "version": "",
        "plugin": "harness_test_metrics",
        "kind": "external",
        "on": "labels_true",
        "higher_is_better": True,
        "help": "",
    }
    assert listed["davies_bouldin_input"]["on"] == "input"
    assert listed["davies_bouldin_input"]["higher_is_better"] is False
    assert main(["list", "--plugin", "harness_test_metrics"]) == ExitCode.OK
    assert "davies_bouldin_input │ internal (input)" in capsys.readouterr().out


class _RaisingMetrics:
    @hookimpl
    def harness_metrics(self):
        raise RuntimeError("no metrics today")


class _ClashingMetrics:
    @hookimpl
    def harness_metrics(self):
        return [MetricSpec("acc", "external", lambda y, p: 0.0, "another ACC")]


def test_a_broken_metric_plugin_costs_only_itself():
    registry = load_registry(extra=[_RaisingMetrics()], extra_modules=["harness_test_metrics"])
    (broken,) = registry.broken.values()
    assert "raised in harness_metrics(): RuntimeError: no metrics today" in str(broken)
    assert {"acc", "ami", "raw_agreement"} <= set(registry.metrics)
    clashing = load_registry(extra=[_ClashingMetrics()])
    assert "acc" not in clashing.metrics and "ami" in clashing.metrics
    assert "metric 'acc' is provided twice" in clashing.clashes["metric", "acc"]


def _as_an_older_harness_left_it(journal: Path, copy: Path) -> None:
    """A copy of an offline journal whose runs lack the later metrics and ``labels_true.npy``."""
    shutil.copytree(journal, copy)
    for record_path in copy.glob("runs/*/record.json"):
        record = json.loads(record_path.read_text())
        record["metrics"] = {k: v for k, v in record["metrics"].items() if k not in LATER}
        record["tags"].pop("harness.metric_identities")
        record_path.write_text(json.dumps(record))
        (record_path.parent / "labels_true.npy").unlink()


def test_metrics_at_run_time_and_after_the_fact_agree(tmp_path, capsys):
    from harness_reports import load_runs
    from harness_reports.rescore import fill_metrics, mlflow_reader

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    journal = tmp_path / "offline"
    argv = [
        "run",
        *PLUGINS,
        *METRIC_PLUGINS,
        "--methods",
        "curves",
        "--seeds",
        "0",
        "--offline",
        str(journal),
    ]
    assert main(argv) == ExitCode.OK
    # a failing metric costs only itself
    assert "metric 'fragile' failed: ZeroDivisionError: fragile fails as asked" in capsys.readouterr().err
    _as_an_older_harness_left_it(journal, tmp_path / "older")
    for folder, experiment in ((journal, "new"), (tmp_path / "older", "old")):
        assert main(["import", str(folder), "--tracking-uri", uri, "--experiment", experiment]) == ExitCode.OK

    run = _job_runs(uri, "new")["curves"]
    scored = {"acc", "nmi_geometric", "ami", "fmi", "purity", "silhouette_embedding"}
    assert scored | {"raw_agreement", "davies_bouldin_input"} <= set(run.data.metrics)
    assert "fragile" not in run.data.metrics
    assert "metric 'fragile' failed" in run.data.tags["harness.warnings"]
    identities = json.loads(run.data.tags["harness.metric_identities"])
    assert set(identities) == {"raw_agreement", "davies_bouldin_input"}  # the core's are in its identity

    capsys.readouterr()
    report = ["report", "--tracking-uri", uri, *PLUGINS, "--plugin", "harness_test_metrics"]
    report += ["--metrics", "acc," + ",".join(LATER)]
    assert main([*report, "--experiment", "new"]) == ExitCode.OK
    at_run_time, err = capsys.readouterr()
    assert "after the fact" not in err and "silhouette (emb.)" in at_run_time
    # the older runs' later metrics, computed from their stored arrays (the truth from the dataset)
    assert main([*report, "--experiment", "old"]) == ExitCode.OK
    after_the_fact, err = capsys.readouterr()
    for metric in LATER:
        assert f"{metric}: computed after the fact from the stored arrays for 1 run(s)" in err
    assert after_the_fact == at_run_time

    # to the last digit: every later metric computed again from the stored arrays is the logged number
    client = MlflowClient(uri)
    frame = load_runs(client, client.get_experiment_by_name("new").experiment_id)
    registry = load_registry(extra_modules=["harness_test_plugins", "harness_test_metrics"])
    logged = frame.set_index("method")[list(LATER)]
    assert logged.notna().all().all()
    blank = frame.assign(**dict.fromkeys(LATER, float("nan")))
    filled, _ = fill_metrics(blank, registry, LATER, mlflow_reader(client, tmp_path / "dl"))
    assert filled.set_index("method")[list(LATER)].equals(logged)

    # a plugin metric whose code changed since the run is computed again
    client.log_metric(run.info.run_id, "raw_agreement", 0.999)
    client.set_tag(run.info.run_id, "harness.metric_identities", json.dumps({"raw_agreement": "0" * 16}))
    assert main([*report, "--experiment", "new"]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "raw_agreement: computed after the fact from the stored arrays for 1 run(s)" in err
    assert out == at_run_time


def test_report_names_an_unknown_metric(tmp_path, capsys):
    argv = ["report", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--metrics", "acc,raw_agreemnt"]
    assert main([*argv, "--plugin", "harness_test_metrics"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert (
        "--metrics: unknown metric 'raw_agreemnt' (did you mean 'raw_agreement'?); installed metrics: acc,"
        in err
    )


def test_a_run_without_any_metric_plugin_is_refused(capsys):
    assert main(["run", "--no-plugin", "metrics", "--methods", "kmeans", "--dry-run"]) == ExitCode.USAGE_ERROR
    assert "no metric to score the runs with" in capsys.readouterr().err
