"""Metrics as plugins: a third party's metric is listed, scored on every run and picked by
``report --metrics``; a broken one costs only itself; scores computed after the fact on stored
arrays are the scores logged at run time."""

from __future__ import annotations

import json
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


def test_metrics_at_run_time_and_after_the_fact_agree(tmp_path, capsys):
    from harness_reports import load_runs
    from harness_reports.rescore import fill_metrics, mlflow_reader

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["run", *PLUGINS, "--methods", "curves", "--seeds", "0"]
    argv += ["--tracking-uri", uri, "--experiment", "t"]

    # 1. runs scored without the third party's metrics, as runs recorded before it was installed
    assert main(argv) == ExitCode.OK
    capsys.readouterr()
    report = [
        "report",
        "--tracking-uri",
        uri,
        "--experiment",
        "t",
        *PLUGINS,
        "--plugin",
        "harness_test_metrics",
    ]
    report += ["--metrics", "acc,raw_agreement,davies_bouldin_input,silhouette_embedding"]
    assert main(report) == ExitCode.OK
    out, err = capsys.readouterr()
    for metric in ("raw_agreement", "davies_bouldin_input"):
        assert f"{metric}: computed after the fact from the stored arrays for 1 run(s)" in err
    after_the_fact = out

    # 2. the same jobs again, now scored at run time by the plugin (a failing metric costs only itself)
    assert main([*argv, "--rerun", *METRIC_PLUGINS]) == ExitCode.OK
    assert "metric 'fragile' failed: ZeroDivisionError: fragile fails as asked" in capsys.readouterr().err
    run = _job_runs(uri)["curves"]
    scored = {"acc", "nmi_geometric", "ami", "fmi", "purity", "silhouette_embedding"}
    assert scored | {"raw_agreement", "davies_bouldin_input"} <= set(run.data.metrics)
    assert "fragile" not in run.data.metrics
    assert "metric 'fragile' failed" in run.data.tags["harness.warnings"]
    identities = json.loads(run.data.tags["harness.metric_identities"])
    assert set(identities) == {"raw_agreement", "davies_bouldin_input"}  # the core's are in its identity
    assert main(report) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "after the fact" not in err
    assert out == after_the_fact  # the same table, from the logged scores

    # 3. every later metric, computed again from the stored arrays, is the logged number exactly
    client = MlflowClient(uri)
    frame = load_runs(client, client.get_experiment_by_name("t").experiment_id)
    registry = load_registry(extra_modules=["harness_test_plugins", "harness_test_metrics"])
    logged = frame.set_index("method")[list(LATER)]
    assert logged.notna().all().all()
    blank = frame.assign(**dict.fromkeys(LATER, float("nan")))
    filled, _ = fill_metrics(blank, registry, LATER, mlflow_reader(client, tmp_path / "dl"))
    assert filled.set_index("method")[list(LATER)].equals(logged)

    # 4. a plugin metric whose code changed since the run is computed again; a run older than
    #    labels_true.npy on every run takes the truth from the dataset plugin
    client.log_metric(run.info.run_id, "raw_agreement", 0.999)
    client.set_tag(run.info.run_id, "harness.metric_identities", json.dumps({"raw_agreement": "0" * 16}))
    Path(run.info.artifact_uri.removeprefix("file://"), "labels_true.npy").unlink()
    assert main(report) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "raw_agreement: computed after the fact from the stored arrays for 1 run(s)" in err
    assert out == after_the_fact


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
