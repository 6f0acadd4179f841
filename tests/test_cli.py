"""End to end: real sweeps into a temporary MLflow store, read back from MLflow."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.errors import ExitCode


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


def _children(uri: str, experiment: str = "t"):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'", max_results=1000)
    return client, exp, runs


def test_sweep_records_one_child_run_per_job(tiny_sweep, tiny_methods):
    uri, _, code = tiny_sweep
    assert code == ExitCode.JOBS_FAILED  # flaky failed on seed 1; everything else ran
    client, exp, runs = _children(uri)
    n = 3 * len(tiny_methods)
    assert len(runs) == n
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.data.tags["harness.kind"] == "sweep" and parent.info.status == "FAILED"
    assert parent.data.metrics["jobs_failed"] == 1 and parent.data.metrics["jobs_finished"] == n - 1

    kmeans = [r for r in runs if r.data.params["method"] == "kmeans"]
    assert sorted(int(r.data.params["seed"]) for r in kmeans) == [0, 1, 2]
    for run in kmeans:
        assert run.info.status == "FINISHED"
        assert run.data.params["kmeans.n_init"] == "2"
        assert run.data.params["input_size"] == "8" and run.data.params["resize_filter"] == "none"
        assert run.data.params["scaling"] == "counts/16" and run.data.params["dataset_variant"] == "all"
        assert 0.6 < run.data.metrics["acc"] <= 1.0
        assert {"nmi_geometric", "nmi_arithmetic", "ari", "runtime_s"} <= set(run.data.metrics)
        assert run.data.tags["harness.method_plugin"].startswith("harness-kmeans-")
        assert "version.scikit-learn" in run.data.tags and len(run.data.tags["harness.run_key"]) == 16
        labels = np.load(client.download_artifacts(run.info.run_id, "labels.npy"))
        assert labels.shape == (1797,)


def test_failed_job_is_a_failed_run_with_its_traceback(tiny_sweep):
    uri, _, _ = tiny_sweep
    client, _, runs = _children(uri)
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert [(r.data.params["method"], r.data.params["seed"]) for r in failed] == [("flaky", "1")]
    assert "acc" not in failed[0].data.metrics  # no stand-in score
    text = Path(client.download_artifacts(failed[0].info.run_id, "traceback.txt")).read_text()
    assert "RuntimeError: flaky fails on seed 1 as asked" in text and "Traceback" in text
    assert failed[0].data.tags["harness.error"].startswith("RuntimeError")


def test_curves_and_embedding_are_tracked(tiny_sweep):
    uri, _, _ = tiny_sweep
    client, _, runs = _children(uri)
    run = next(r for r in runs if r.data.params["method"] == "curves")
    loss = client.get_metric_history(run.info.run_id, "curve/loss")
    assert [(m.step, m.value) for m in sorted(loss, key=lambda m: m.step)] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    acc = client.get_metric_history(run.info.run_id, "curve/acc")
    assert [m.step for m in acc] == [3]
    assert acc[0].value == pytest.approx(run.data.metrics["acc"])
    assert np.load(client.download_artifacts(run.info.run_id, "embedding.npy")).shape == (1797, 10)
    truth = np.load(client.download_artifacts(run.info.run_id, "labels_true.npy"))
    assert np.bincount(truth).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert run.data.tags["note"] == "curves"


def test_method_warnings_are_tagged_once_and_shown_under_the_job(tiny_sweep, tmp_path, capsys):
    uri, _, _ = tiny_sweep
    _, _, runs = _children(uri)
    tagged = {
        r.data.params["method"]: r.data.tags.get("harness.warnings")
        for r in runs
        if r.info.status == "FINISHED"
    }
    assert {m for m, t in tagged.items() if t and "curves:" in t} == {"curves"}
    curves = [r for r in runs if r.data.params["method"] == "curves"]
    for run in curves:  # the repeated warning once, the DeprecationWarning not at all
        seed = run.data.params["seed"]
        assert run.data.tags["harness.warnings"] == f"UserWarning: curves: [seed {seed}] looks suspicious"

    capsys.readouterr()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["run", "--plugin", "harness_test_plugins", "--methods", "curves", "--datasets", "digits",
            "--seeds", "4", "--tracking-uri", store]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().err.splitlines()
    done = next(i for i, line in enumerate(lines) if "✓" in line and "curves" in line)
    assert lines[done + 1].strip() == "! UserWarning: curves: [seed 4] looks suspicious"  # markup-free
    assert any(line.startswith("1 run(s) raised warnings (curves · digits@8 · seed 4)") for line in lines)


def test_odd_method_outputs_are_refused_or_flagged(tmp_path, capsys):
    uri = _uri(tmp_path)
    base = [
        "run",
        "--plugin",
        "harness_test_plugins",
        "--tracking-uri",
        uri,
        "--experiment",
        "t",
        "--seeds",
        "0",
    ]
    # integral float labels are fine; a non-finite embedding is dropped with a warning on the run
    assert main([*base, "--methods", "odd", "--param", "odd.embedding=nan"]) == ExitCode.OK
    assert "the embedding has 12 non-finite value(s): not saved" in capsys.readouterr().err
    client, _, (run,) = _children(uri)
    assert "non-finite" in run.data.tags["harness.warnings"] and run.data.metrics["acc"] > 0.5
    assert "embedding.npy" not in {a.path for a in client.list_artifacts(run.info.run_id)}
    # fractional labels would be scored as given but stored truncated: refused
    assert main([*base, "--methods", "odd", "--param", "odd.labels=fractional"]) == ExitCode.JOBS_FAILED
    assert "returned non-integer labels (float64" in capsys.readouterr().err


def test_rerun_skips_finished_jobs_and_duplicates_nothing(tiny_sweep, tiny_methods, capsys):
    uri, argv, _ = tiny_sweep
    capsys.readouterr()
    assert main(argv) == ExitCode.JOBS_FAILED  # only the failed job ran again, and failed again
    err = capsys.readouterr().err
    n = 3 * len(tiny_methods)
    assert f"{n - 1} of {n} jobs already finished" in err
    _, _, runs = _children(uri)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == n - 1
    assert len({r.data.tags["harness.run_key"] for r in finished}) == n - 1
    assert sum(r.info.status == "FAILED" for r in runs) == 2


def test_summary_counts_failures_and_excludes_them(tiny_sweep, capsys):
    _, argv, _ = tiny_sweep
    main(argv)
    out = capsys.readouterr().out
    flaky_row = next(line for line in out.splitlines() if "flaky" in line)
    assert "2/3" in flaky_row
    kmeans_row = next(line for line in out.splitlines() if "kmeans" in line)
    assert "±" in kmeans_row


def test_worker_that_dies_is_a_failed_run_and_the_sweep_goes_on(tmp_path):
    uri = _uri(tmp_path)
    code = main(
        [
            "run",
            "--plugin",
            "harness_test_plugins",
            "--methods",
            "crash,kmeans",
            "--datasets",
            "digits",
            "--seeds",
            "0",
            "--tracking-uri",
            uri,
            "--experiment",
            "t",
            "--param",
            "kmeans.n_init=1",
        ]
    )
    assert code == ExitCode.JOBS_FAILED
    client, _, runs = _children(uri)
    status = {r.data.params["method"]: r for r in runs}
    assert status["kmeans"].info.status == "FINISHED"
    assert status["crash"].info.status == "FAILED"
    assert "killed by signal 9" in status["crash"].data.tags["harness.error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "kmean"], "unknown method 'kmean' (did you mean 'kmeans'?)"),
        (["--datasets", "mnist", "--data-dir", "{tmp}/nodata"], "mnist: missing file"),
        (["--seeds", "5-1"], "seeds: expected a range low-high"),
        (["--sizes", "0"], "sizes: expected positive integers"),
        (
            ["--sizes", "100000"],
            "sizes: 100000 px would make dataset 'digits' 66,943 GiB as float32, more than",
        ),
        (["--param", "kmeans.n_init=zero"], "parameter 'n_init' must be an integer >= 1, got 'zero'"),
        (["--config", "{tmp}/missing.yaml"], "cannot read config file"),
        (
            ["--config", "/dev/null"],
            "config file '/dev/null' is empty; it should set some of: experiment, methods",
        ),
        (["--jobs", "0"], "--jobs: expected an integer >= 1"),
        (["--no-plugin", "kmean"], "--no-plugin 'kmean': no plugin of that name (did you mean 'kmeans'?)"),
        (
            ["--batch-seeds", "-2"],
            "--batch-seeds: expected a number of seeds >= 1 (0 or no value: all seeds), got -2",
        ),
        (
            ["--plugin", "harness_test_plugins", "--methods", "stacked", "--sizes", "2"],
            "method 'stacked' needs input images of at least 4 px",
        ),
        (
            ["--tracking-uri", "http://127.0.0.1:9"],
            "cannot use tracking store 'http://127.0.0.1:9': nothing answers",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_store(tmp_path, capsys, args, message):
    uri = _uri(tmp_path)
    argv = ["run", "--tracking-uri", uri, "--methods", "kmeans", *[a.format(tmp=tmp_path) for a in args]]
    assert main(argv) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "store").exists()


def test_cuda_without_a_visible_gpu_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert main(["run", "--tracking-uri", _uri(tmp_path), "--methods", "kmeans", "--device", "cuda"]) == 2
    assert "device 'cuda': no GPU is visible here (CUDA_VISIBLE_DEVICES is '')" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_dry_run_never_stands_in_for_the_real_run(tmp_path, capsys):
    uri = _uri(tmp_path)
    argv = ["run", "--tracking-uri", uri, "--experiment", "t", "--methods", "kmeans", "--seeds", "0"]
    assert main([*argv, "--dry-run"]) == ExitCode.OK
    assert "dry run (a smoke test): scores mean nothing" in " ".join(capsys.readouterr().out.split())
    assert main(argv) == ExitCode.OK  # runs: the smoke test's scores are not the job's
    assert "1 finished, 0 failed, 0 skipped" in capsys.readouterr().err
    _, _, runs = _children(uri)
    dry = [r for r in runs if r.data.tags.get("harness.dry_run") == "true"]
    real = [r for r in runs if "harness.dry_run" not in r.data.tags]
    assert len(dry) == len(real) == 1
    assert dry[0].data.tags["harness.run_key"] != real[0].data.tags["harness.run_key"]
    assert main(argv) == ExitCode.OK and "0 finished, 0 failed, 1 skipped" in capsys.readouterr().err
    report = ["report", "--tracking-uri", uri, "--experiment", "t", "--format", "csv"]
    assert main(report) == ExitCode.OK
    rows = [line for line in capsys.readouterr().out.splitlines()[1:] if line.strip()]
    assert len(rows) == 1 and real[0].info.run_id in rows[0]  # the smoke test is left out
    # a smoke test checks the code as it is now: repeated, it runs again
    assert main([*argv, "--dry-run"]) == ExitCode.OK
    assert "1 finished, 0 failed, 0 skipped" in capsys.readouterr().err


def test_a_dry_run_recorded_offline_stays_out_of_reports(tmp_path, capsys):
    from harness.journal import Journal

    argv = ["run", "--offline", str(tmp_path / "j"), "--methods", "kmeans", "--seeds", "0"]
    assert main([*argv, "--dry-run"]) == ExitCode.OK and main(argv) == ExitCode.OK
    journal = Journal(tmp_path / "j")
    assert len(list(journal.records())) == 2 and len(journal.runs_frame()) == 1


def test_mlflow_tracking_uri_is_where_run_import_and_report_meet(tmp_path, capsys, monkeypatch):
    """MLflow's own variable, and no --tracking-uri anywhere: every command uses the same store."""
    import csv
    import io

    uri = _uri(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # where the default store would go
    run = ["run", "--experiment", "t", "--methods", "kmeans", "--param", "kmeans.n_init=1"]
    assert main([*run, "--seeds", "0"]) == ExitCode.OK
    assert main([*run, "--seeds", "1", "--offline", str(tmp_path / "j")]) == ExitCode.OK
    assert main(["import", str(tmp_path / "j")]) == ExitCode.OK
    capsys.readouterr()
    assert main(["report", "--experiment", "t", "--format", "csv"]) == ExitCode.OK
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted((r["method"], r["seed"], r["status"]) for r in rows) == [
        ("kmeans (n_init=1)", "0", "FINISHED"),
        ("kmeans (n_init=1)", "1", "FINISHED"),
    ]
    assert {r.info.run_id for r in _children(uri)[2]} == {r["run_id"] for r in rows}
    assert not (tmp_path / "mlflow.db").exists()


def test_list_json_names_providers_and_parameters(capsys):
    assert main(["list", "--json"]) == ExitCode.OK
    listing = json.loads(capsys.readouterr().out)
    kmeans = next(m for m in listing["methods"] if m["name"] == "kmeans")
    assert kmeans["distribution"] == "harness-kmeans" and kmeans["version"]
    n_init = next(p for p in kmeans["params"] if p["name"] == "n_init")
    assert n_init["default"] == 20 and n_init["type"] == "int" and n_init["help"]
    assert {d["name"] for d in listing["datasets"]} >= {"digits", "mnist", "fmnist", "usps", "coil20"}


BROKEN_PLUGINS = {
    "bp_noimport": (
        "import no_such_dependency_xyz\n",
        "failed to load: ModuleNotFoundError: No module named",
    ),
    "bp_raising": (
        "from harness import hookimpl\n\n@hookimpl\ndef harness_methods():\n    raise RuntimeError('down')\n",
        "raised in harness_methods(): RuntimeError: down",
    ),
    "bp_typo": (
        "from harness import hookimpl\n\n@hookimpl\ndef harness_method():\n    return []\n",
        "implements unknown hook 'harness_method' (did you mean 'harness_methods'?)",
    ),
}


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    """Plugin modules broken in three ways, importable here and in spawned workers: (--plugin args, problems)."""
    (tmp_path / "plugins").mkdir()
    for name, (source, _) in BROKEN_PLUGINS.items():
        (tmp_path / "plugins" / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    return [arg for name in BROKEN_PLUGINS for arg in ("--plugin", name)], {
        name: problem for name, (_, problem) in BROKEN_PLUGINS.items()
    }


def test_list_shows_broken_plugins_as_broken_and_lists_the_rest(broken_plugins, capsys):
    args, problems = broken_plugins
    assert main(["list", "--json", *args]) == ExitCode.OK
    listing = json.loads(capsys.readouterr().out)
    assert "kmeans" in {m["name"] for m in listing["methods"]} and listing["datasets"]
    broken = {b["plugin"]: b["problem"] for b in listing["broken"]}
    assert broken.keys() == problems.keys()
    assert all(broken[name].startswith(problem) for name, problem in problems.items())
    assert main(["list", *args]) == ExitCode.OK
    out = " ".join(capsys.readouterr().out.split())
    assert "kmeans" in out and "bp_raising" in out and out.count("broken:") == len(problems)  # rows wrap


def test_a_run_that_needs_no_broken_plugin_warns_once_each_and_runs(broken_plugins, tmp_path, capsys):
    from harness.journal import Journal

    args, problems = broken_plugins
    offline = tmp_path / "j"
    argv = ["run", *args, "--methods", "kmeans", "--seeds", "0", "--param", "kmeans.n_init=1"]
    assert main([*argv, "--offline", str(offline)]) == ExitCode.OK  # the workers load the same plugins
    assert [r["status"] for r in Journal(offline).records()] == ["FINISHED"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness: warning")]
    assert len(warnings) == len(problems)
    for name, problem in problems.items():
        line = next(w for w in warnings if f"plugin {name!r}" in w)
        assert problem in line and line.endswith(f"; skip it with --no-plugin {name}")
    # --no-plugin takes a comma list, like --methods
    skip = ["--no-plugin", "bp_noimport,bp_raising", "--no-plugin", "bp_typo"]
    assert main([*argv, *skip, "--offline", str(tmp_path / "k")]) == ExitCode.OK
    assert "warning" not in capsys.readouterr().err


def test_a_run_that_needs_a_broken_plugin_is_one_line_exit_2(broken_plugins, tmp_path, capsys):
    args, _ = broken_plugins
    argv = ["run", *args, "--methods", "mine", "--offline", str(tmp_path / "j")]
    assert main(argv) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: unknown method 'mine'; installed methods: ") and "\n" not in err
    assert (
        "plugin 'bp_raising' raised in harness_methods(): RuntimeError: down; skip it with --no-plugin bp_raising"
        in err
    )
    assert not (tmp_path / "j").exists()


def test_a_name_two_plugins_offer_is_refused_where_asked_for(tmp_path, monkeypatch, capsys):
    (tmp_path / "bp_clash.py").write_text(
        "from harness import MethodResult, MethodSpec, hookimpl\n\n@hookimpl\ndef harness_methods():\n"
        "    return [MethodSpec('flaky', lambda *a, **k: MethodResult(labels=None))]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = [
        "run",
        "--plugin",
        "harness_test_plugins",
        "--plugin",
        "bp_clash",
        "--offline",
        str(tmp_path / "j"),
    ]
    clash = (
        "method 'flaky' is provided twice: by plugin 'harness_test_plugins' and by plugin 'bp_clash'; "
        "skip one with --no-plugin harness_test_plugins or --no-plugin bp_clash"
    )
    assert main([*argv, "--methods", "flaky"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err.strip() == f"harness: error: {clash}"
    assert main([*argv, "--methods", "kmeans", "--seeds", "0", "--param", "kmeans.n_init=1"]) == ExitCode.OK
    assert f"harness: warning: {clash}\n" in capsys.readouterr().err


def test_data_command_reports_missing_files(tmp_path, capsys):
    assert main(["data", "usps", "coil20", "--data-dir", str(tmp_path)]) == ExitCode.USAGE_ERROR
    out = " ".join(capsys.readouterr().out.split())  # the table wraps lines
    assert "usps: missing file" in out and "coil20: missing file" in out
    # both download from their canonical source (COIL-20's PNGs come out of one zip)
    assert "harness data --download usps" in out and "harness data --download coil20" in out


@pytest.mark.data
def test_data_command_verifies_real_files(shared_data, capsys):
    assert main(["data", "usps", "coil20", "--data-dir", str(shared_data)]) == ExitCode.OK
    assert capsys.readouterr().out.count("checksums verified") == 2


def test_ui_serves_the_store_on_localhost(ui_server):
    import shutil
    import subprocess
    import urllib.request

    base, port = ui_server
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=t"
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert body["experiment"]["name"] == "t"
    if shutil.which("ss"):  # bound to loopback only, as the default promises
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        assert f"127.0.0.1:{port}" in listening and f"0.0.0.0:{port}" not in listening


def test_ui_on_a_port_in_use_says_so_before_starting(tmp_path, capsys):
    import socket

    (tmp_path / "mlflow.db").touch()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code = main(["ui", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--port", str(port)])
    assert code == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err and "starting" not in err


def test_ui_without_a_store_says_so(tmp_path, capsys):
    assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path}/none.db"]) == ExitCode.USAGE_ERROR
    assert "no tracking store at" in capsys.readouterr().err


def _session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (Linux /proc), zombies left out."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@contextlib.contextmanager
def _slow_sweep(tmp_path):
    """``harness run`` of one 10-minute job in a session of its own: (process, store URI, stderr log).
    Whatever is left of the session is killed on the way out."""
    import os
    import signal
    import subprocess
    import sys

    uri, log = _uri(tmp_path), tmp_path / "stderr.log"
    argv = [
        sys.executable, "-m", "harness", "run", "--plugin", "harness_test_plugins", "--methods", "slow",
        "--datasets", "digits", "--seeds", "0", "--tracking-uri", uri, "--experiment", "t",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parent / "helpers"),
        "HARNESS_TEST_SLOW_SECONDS": "600",
    }
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield proc, uri, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_worker_stops_when_harness_is_killed(tmp_path):
    import os
    import signal
    import time

    with _slow_sweep(tmp_path) as (proc, _, log):
        deadline = time.time() + 180
        while len(_session_members(proc.pid)) < 2 and time.time() < deadline:
            time.sleep(0.5)  # the worker has started (the sleeping job)
        assert len(_session_members(proc.pid)) >= 2
        os.kill(proc.pid, signal.SIGKILL)  # the harness process alone, not its worker
        proc.wait()
        deadline = time.time() + 30
        while _session_members(proc.pid) and time.time() < deadline:
            time.sleep(0.5)
        assert _session_members(proc.pid) == []  # the orphaned worker noticed and stopped
        assert "Traceback" not in log.read_text()


def test_ctrl_c_marks_the_running_job_killed_and_says_why(tmp_path):
    import os
    import signal
    import time

    with _slow_sweep(tmp_path) as (proc, uri, log):
        deadline = time.time() + 180
        while "jobs →" not in log.read_text() and time.time() < deadline:
            time.sleep(0.5)  # the store exists: reading it now does not race its creation
        while time.time() < deadline and not _children(uri)[2]:
            time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        assert proc.wait(timeout=120) == ExitCode.INTERRUPTED
    _, _, (run,) = _children(uri)
    assert run.info.status == "KILLED" and run.data.tags["harness.error"].startswith("interrupted")


def test_kill_9_then_rerun_finishes_every_job_exactly_once(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from harness_reports import load_runs

    uri = _uri(tmp_path)
    argv = [
        sys.executable, "-m", "harness.cli", "run", "--plugin", "harness_test_plugins", "--methods",
        "slow,kmeans", "--datasets", "digits", "--seeds", "0-1", "--tracking-uri", uri, "--experiment", "t",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent / "helpers")}
    log = tmp_path / "first.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            argv, env={**env, "HARNESS_TEST_SLOW_SECONDS": "600"}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.time() + 180
        # Touch the store only once harness has created it (its header line says so): a second
        # process opening a fresh SQLite store would race its schema migration.
        while "jobs →" not in log.read_text() and time.time() < deadline:
            time.sleep(0.5)
        while time.time() < deadline:  # wait for the first (slow) job's run, then kill -9 the lot
            client = MlflowClient(tracking_uri=uri)
            exp = client.get_experiment_by_name("t")
            if client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'"):
                break
            time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _, exp, runs = _children(uri)
    assert [r.info.status for r in runs] == ["RUNNING"]  # left behind by the dead process

    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "1 job run(s) left RUNNING by a harness process that died: marked KILLED" in done.stderr
    client, exp, runs = _children(uri)
    statuses = sorted(r.info.status for r in runs)
    assert statuses == ["FINISHED"] * 4 + ["KILLED"]
    frame = load_runs(client, exp.experiment_id)
    assert len(frame) == 4 and (frame.status == "FINISHED").all()  # each job counted once
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "4 of 4 jobs already finished" in again.stderr
