"""Benchmark integrity on the run side: what produced a run is recorded and keys it, methods never
see a score, and plugins' outputs are checked where they pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import record
from harness.cli import main
from harness.errors import ExitCode

METHOD_PLUGIN = """
from harness import MethodResult, MethodSpec, Param, hookimpl


def fit_predict(x, *, n_clusters, seed, params, context):
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=n_clusters, n_init=1, random_state=seed).fit_predict(x)
    return MethodResult(labels=labels % {modulo})


@hookimpl
def harness_methods():
    return [MethodSpec("mine", fit_predict, params=(Param("n", int, {default}, "a number", low=1),))]
"""


def _store(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, lambda: MlflowClient(uri)


def _job_runs(client, experiment="t"):
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'", order_by=["start_time ASC"])


def _write_plugin(tmp_path, monkeypatch, name="my_method_plugin", **fmt):
    path = tmp_path / "plugins" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(METHOD_PLUGIN.format(**({"modulo": 10, "default": 1} | fmt)))
    monkeypatch.syspath_prepend(str(path.parent))
    return path


def test_an_edited_method_runs_again_and_both_runs_say_what_produced_them(tmp_path, monkeypatch, capsys):
    uri, client = _store(tmp_path)
    path = _write_plugin(tmp_path, monkeypatch)
    argv = ["run", "--plugin", "my_method_plugin", "--methods", "mine", "--seeds", "0"]
    argv += ["--tracking-uri", uri, "--experiment", "t"]
    assert main(argv) == ExitCode.OK
    assert main(argv) == ExitCode.OK  # unchanged code: skipped
    assert "1 of 1 jobs already finished" in capsys.readouterr().err

    path.write_text(path.read_text().replace("labels % 10", "labels % 3"))  # an edit of fit_predict
    assert main(argv) == ExitCode.OK
    err = capsys.readouterr().err
    assert "1 finished, 0 failed, 0 skipped" in err

    old, new = _job_runs(client())
    assert old.data.tags[record.RUN_KEY] != new.data.tags[record.RUN_KEY]
    assert old.data.tags[record.METHOD_SOURCE] != new.data.tags[record.METHOD_SOURCE]
    assert old.data.tags[record.METHOD_IDENTITY] != new.data.tags[record.METHOD_IDENTITY]
    # the new code ran (three clusters), and everything else about the runs is the same
    assert (old.data.metrics["n_clusters_found"], new.data.metrics["n_clusters_found"]) == (10.0, 3.0)
    for tag in (record.DATASET_IDENTITY, record.CORE_IDENTITY, record.DATA_DIGEST, record.PARAM_DEFAULTS):
        assert old.data.tags[tag] == new.data.tags[tag]
    assert json.loads(new.data.tags[record.PARAM_DEFAULTS]) == {"n": "1"}


def test_a_run_records_the_data_the_method_received_as_an_mlflow_dataset_input(tmp_path):
    uri, client = _store(tmp_path)
    argv = ["run", "--methods", "kmeans", "--seeds", "0-1", "--sizes", "native,6"]
    argv += ["--param", "kmeans.n_init=1", "--tracking-uri", uri, "--experiment", "t"]
    assert main(argv) == ExitCode.OK
    runs = _job_runs(client())
    by_size: dict[str, set[str]] = {}
    for run in runs:
        digest = run.data.tags[record.DATA_DIGEST]
        (dataset_input,) = run.inputs.dataset_inputs
        assert dataset_input.dataset.digest == digest
        assert dataset_input.dataset.name == f"digits@{run.data.params['input_size']}px"
        assert json.loads(dataset_input.dataset.schema)["shape"][0] == 1797
        by_size.setdefault(run.data.params["input_size"], set()).add(digest)
        for tag in (
            record.METHOD_IDENTITY,
            record.DATASET_IDENTITY,
            record.CORE_IDENTITY,
            record.METHOD_PLUGIN,
        ):
            assert run.data.tags[tag]
    # the same array for both seeds of a size; another array at another size
    assert {k: len(v) for k, v in by_size.items()} == {"8": 1, "6": 1}
    assert by_size["8"] != by_size["6"]


def test_the_data_digest_is_of_the_array_and_labels_themselves():
    from harness.identity import data_digest

    x = np.random.default_rng(0).random((20, 4), dtype=np.float32)
    y = np.arange(20) % 3
    assert data_digest(x, y) == data_digest(x.copy(), y.copy())
    changed = x.copy()
    changed[3, 1] += 1e-6
    assert data_digest(changed, y) != data_digest(x, y)
    assert data_digest(x, (y + 1) % 3) != data_digest(x, y)
    assert data_digest(x.reshape(20, 2, 2), y) != data_digest(x, y)  # same bytes, another shape


def test_git_state_is_recorded_where_there_is_a_checkout_and_never_fails_without(tmp_path):
    import subprocess

    from harness.identity import git_state

    assert git_state(tmp_path) == {}  # no checkout: nothing, no error
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.txt").write_text("1")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.txt"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env={**env, "PATH": "/usr/bin:/bin"}
    )
    state = git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] == "false"
    (tmp_path / "a.txt").write_text("2")
    assert git_state(tmp_path)["dirty"] == "true"


def test_methods_never_get_a_score_back_from_evaluate():
    from harness.sweep import Job
    from harness.worker import WorkerContext, WorkerSettings

    sent = []

    class Pipe:
        def send(self, message):
            sent.append(message)

        def close(self):
            pass

    job = Job("kmeans", "digits", "all", 8, 8, 0, {}, "none")
    truth = np.array([0, 0, 1, 1])
    context = WorkerContext(Pipe(), job, WorkerSettings(), truth)
    assert context.evaluate(np.array([1, 1, 0, 0]), step=2, loss=0.5) is None
    logged = {m.key: (m.value, m.step) for m in sent}
    assert logged["curve/acc"] == (1.0, 2) and logged["curve/loss"] == (0.5, 2)  # still logged


@pytest.fixture
def contract_run(tmp_path):
    uri, client = _store(tmp_path)
    base = [
        "run",
        "--plugin",
        "harness_test_plugins",
        "--seeds",
        "0",
        "--tracking-uri",
        uri,
        "--experiment",
        "t",
    ]
    return base, client


def test_more_clusters_than_asked_is_a_warning_on_the_run_and_in_the_summary(contract_run, capsys):
    base, client = contract_run
    assert main([*base, "--methods", "breach", "--param", "breach.output=one_per_sample"]) == ExitCode.OK
    err = capsys.readouterr().err
    assert "found 1,797 clusters for k = 10, more than asked" in err
    assert "1 run(s) raised warnings" in err
    (run,) = _job_runs(client())
    assert run.info.status == "FINISHED" and run.data.metrics["n_clusters_found"] == 1797
    assert "more than asked" in run.data.tags[record.WARNINGS]


def test_minus_one_labels_are_refused_unless_the_method_declares_noise(contract_run, capsys):
    base, client = contract_run
    assert main([*base, "--methods", "breach", "--param", "breach.output=minus_one"]) == ExitCode.JOBS_FAILED
    err = capsys.readouterr().err
    assert "method 'breach' returned label -1: labels must be 0 or more" in err
    assert "declares noise_labels=True" in err
    assert main([*base, "--methods", "noisy"]) == ExitCode.OK
    failed, noisy = _job_runs(client())
    assert failed.info.status == "FAILED" and "returned label -1" in failed.data.tags[record.ERROR]
    assert noisy.info.status == "FINISHED"
    assert noisy.data.metrics["n_noise"] == 10.0 and noisy.data.metrics["n_clusters_found"] == 10.0
    assert noisy.data.tags[record.NOISE_LABELS] == "true"


def test_a_method_that_returns_a_bare_list_is_told_what_to_return(contract_run, capsys):
    base, client = contract_run
    assert main([*base, "--methods", "breach"]) == ExitCode.JOBS_FAILED
    err = capsys.readouterr().err
    assert "fit_predict returned list, expected a harness.MethodResult" in err
    assert "AttributeError" not in err


DATASET_PLUGIN = """
import numpy as np
from harness import Dataset, DatasetSpec, hookimpl


def load(root):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 4, 4, 1)).astype(np.float32)  # raw 8-bit values
    return Dataset("raw", images / {divisor}, np.arange(40) % 2, 2, "all", "none")


@hookimpl
def harness_datasets():
    return [DatasetSpec("raw", 2, (4, 4, 1), 40, fetch=lambda root, download: None, load=load, variant="all")]
"""


def test_a_dataset_whose_images_are_not_in_0_1_fails_its_jobs_with_the_reason(tmp_path, monkeypatch, capsys):
    uri, client = _store(tmp_path)
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "raw_dataset_plugin.py").write_text(DATASET_PLUGIN.format(divisor=1))
    (folder / "scaled_dataset_plugin.py").write_text(DATASET_PLUGIN.format(divisor=255))
    monkeypatch.syspath_prepend(str(folder))
    argv = ["run", "--methods", "kmeans", "--datasets", "raw", "--seeds", "0", "--param", "kmeans.n_init=1"]
    argv += ["--tracking-uri", uri, "--experiment", "t"]
    assert main([*argv, "--plugin", "raw_dataset_plugin"]) == ExitCode.JOBS_FAILED
    err = capsys.readouterr().err
    assert "dataset 'raw' (plugin 'raw_dataset_plugin'): image values span [0, 255], expected [0, 1]" in err
    assert main([*argv, "--plugin", "scaled_dataset_plugin"]) == ExitCode.OK


def test_a_default_outside_its_own_rules_makes_its_plugin_broken(tmp_path, monkeypatch, capsys):
    _write_plugin(tmp_path, monkeypatch, name="bad_default_plugin", default=0)
    rule = "the default of parameter 'n' is 0, which its own rule refuses: it must be an integer >= 1"
    assert main(["list", "--json", "--plugin", "bad_default_plugin"]) == ExitCode.OK  # the others still list
    listing = json.loads(capsys.readouterr().out)
    assert "kmeans" in {m["name"] for m in listing["methods"]}
    assert rule in json.dumps(listing["broken"])
    uri, _ = _store(tmp_path)
    argv = ["run", "--plugin", "bad_default_plugin", "--methods", "mine", "--tracking-uri", uri]
    assert main(argv) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert "bad_default_plugin" in err and rule in err
    assert not (tmp_path / "mlflow.db").exists()


def test_a_choice_default_outside_its_choices_is_refused():
    from harness import MethodSpec, Param
    from harness.contract import ContractError, check_param_defaults

    spec = MethodSpec("m", lambda: None, params=(Param("algo", str, "fast", "", choices=("lloyd", "elkan")),))
    with pytest.raises(ContractError, match="default of parameter 'algo' is 'fast'.*one of 'lloyd', 'elkan'"):
        check_param_defaults(spec)
    check_param_defaults(
        MethodSpec("m", lambda: None, params=(Param("lr", float, 1, "", low=0),))
    )  # int for float


def test_every_param_is_validated_even_for_methods_outside_the_sweep(tmp_path, capsys):
    uri, _ = _store(tmp_path)
    argv = ["run", "--methods", "kmeans", "--param", "dec.nope=1", "--tracking-uri", uri]
    assert main(argv) == ExitCode.USAGE_ERROR
    assert "method 'dec' has no parameter 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()  # nothing recorded


def test_source_files_cover_the_whole_package_of_a_lazy_wrapper():
    import harness_kmeans
    from harness.identity import source_files
    from harness.plugins import load_registry

    spec = load_registry().method("kmeans")
    root, files = source_files(spec.fit_predict)
    assert {f.name for f in files} >= {"__init__.py"}
    assert all("__pycache__" not in f.parts for f in files)
    assert root == Path(harness_kmeans.__file__).parent.parent


def test_a_reused_worker_with_older_code_refuses_a_job_keyed_to_newer_code(tmp_path, monkeypatch):
    """As a Ray worker process kept between two sweeps would: it imported the plugin before the edit."""
    from harness import worker, worker_cache
    from harness.config import build_sweep
    from harness.messages import Failure, Result
    from harness.plugins import load_registry
    from harness.sweep import expand
    from harness.worker import WorkerSettings

    path = _write_plugin(tmp_path, monkeypatch, name="reused_plugin")
    settings = WorkerSettings(extra_plugins=("reused_plugin",))

    def run_in_this_process():
        registry = load_registry(extra_modules=["reused_plugin"])
        (job,) = expand(build_sweep(registry, {}, {"methods": "mine", "seeds": "0"}), registry)
        sent = []
        sink = type("Sink", (), {"send": lambda self, m: sent.append(m), "close": lambda self: None})()
        worker.run([job.to_dict()], settings, sink)
        return sent[-1]

    worker_cache.clear()
    try:
        assert isinstance(run_in_this_process(), Result)
        path.write_text(path.read_text().replace("labels % 10", "labels % 3"))
        failure = run_in_this_process()
        assert isinstance(failure, Failure)
        assert "the method code loaded in this worker" in failure.error and "restart" in failure.error
    finally:
        worker_cache.clear()


def test_after_an_edit_the_report_shows_the_new_code_and_says_what_it_left_out(tmp_path, monkeypatch, capsys):
    """End to end: two runs of one job, the method edited between them, then the paper table."""
    uri, _ = _store(tmp_path)
    path = _write_plugin(tmp_path, monkeypatch, name="edited_plugin")
    run = ["run", "--plugin", "edited_plugin", "--methods", "mine,kmeans", "--seeds", "0"]
    run += ["--param", "kmeans.n_init=2", "--tracking-uri", uri, "--experiment", "t"]
    assert main(run) == ExitCode.OK
    path.write_text(path.read_text().replace("labels % 10", "labels % 3"))
    assert main(run) == ExitCode.OK
    capsys.readouterr()

    report = ["report", "--tracking-uri", uri, "--experiment", "t", "--metrics", "acc"]
    assert main(report) == ExitCode.OK
    captured = capsys.readouterr()
    assert "left out 1 run(s) of older identities" in captured.err and "mine on digits 8px" in captured.err
    # the new code's column only; k-means named by its departure from its defaults (n_init 20)
    assert _columns(captured.out) == ["dataset", "ACC kmeans (n_init=2)", "ACC mine"]
    assert "n_init 2 (default 20)" in captured.out

    assert main([*report, "--all-identities"]) == ExitCode.OK
    columns = _columns(capsys.readouterr().out)
    assert columns[:3] == ["dataset", "ACC kmeans (n_init=2)", "ACC mine"]  # both identities, side by side
    assert len(columns) == 4 and columns[3].startswith("ACC mine [method ")


def _columns(markdown: str) -> list[str]:
    return [cell.strip() for cell in markdown.splitlines()[0].strip("|").split("|")]


def test_an_offline_run_records_identity_and_data_and_its_import_keeps_them(tmp_path, capsys):
    from harness.journal import Journal

    folder = tmp_path / "offline"
    argv = [
        "run",
        "--methods",
        "kmeans",
        "--seeds",
        "0",
        "--param",
        "kmeans.n_init=1",
        "--offline",
        str(folder),
    ]
    assert main(argv) == ExitCode.OK
    (record_,) = Journal(folder).records()
    for tag in (record.METHOD_IDENTITY, record.DATASET_IDENTITY, record.CORE_IDENTITY, record.DATA_DIGEST):
        assert record_["tags"][tag]
    assert record_["data"]["digest"] == record_["tags"][record.DATA_DIGEST]
    uri, client = _store(tmp_path)
    assert main(["import", str(folder), "--tracking-uri", uri, "--experiment", "t"]) == ExitCode.OK
    (run,) = _job_runs(client())
    assert run.data.tags[record.RUN_KEY] == record_["run_key"]
    assert run.data.tags[record.METHOD_IDENTITY] == record_["tags"][record.METHOD_IDENTITY]
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == record_["tags"][record.DATA_DIGEST]
