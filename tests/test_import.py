"""`harness import` of a real offline sweep that was interrupted: recorded times, killed jobs, re-import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient
from stamped_runs import identity_tags

from harness.cli import main
from harness.errors import ExitCode
from harness.journal import Journal
from harness_reports import load_runs
from harness_reports.runs import IDENTITY_COLUMNS

HELPERS = Path(__file__).parent / "helpers"


def _interrupted_offline_sweep(offline: Path) -> list[str]:
    """kmeans finishes, flaky fails, then Ctrl-C while `slow` runs: one job of each outcome."""
    argv = [
        sys.executable, "-m", "harness.cli", "run", "--plugin", "harness_test_plugins", "--methods",
        "kmeans,flaky,slow", "--param", "flaky.fail_seeds=0", "--datasets", "digits", "--seeds", "0",
        "--jobs", "1", "--offline", str(offline),
    ]  # fmt: skip
    env = {
        **os.environ,
        # the tests' harness (a worktree on PYTHONPATH, say) and the test plugins
        "PYTHONPATH": os.pathsep.join(p for p in (str(HELPERS), os.environ.get("PYTHONPATH")) if p),
        "HARNESS_TEST_SLOW_SECONDS": "600",
    }
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if len(list((offline / "runs").glob("*/record.json"))) == 2:
                break
            time.sleep(0.2)
        time.sleep(3)  # the slow job has started now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    return argv[3:]


def test_import_of_an_interrupted_sweep_keeps_times_and_killed_jobs(tmp_path: Path, capsys, monkeypatch):
    offline = tmp_path / "offline"
    run_argv = _interrupted_offline_sweep(offline)
    journal = Journal(offline)
    records = {r["run_key"]: r for r in journal.records()}
    assert sorted((r["job"]["method"], r["status"]) for r in records.values()) == [
        ("flaky", "FAILED"), ("kmeans", "FINISHED"), ("slow", "KILLED"),
    ]  # fmt: skip
    sweep = journal.sweep_record()
    assert sweep["status"] == "KILLED" and sweep["start_time"] < sweep["end_time"]
    time.sleep(1)  # an import-time clock would show now

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    imp = ["import", str(offline), "--tracking-uri", uri, "--experiment", "t"]
    assert main(imp) == ExitCode.OK
    err = " ".join(capsys.readouterr().err.split())
    assert "imported 1 finished, 1 failed and 1 killed job(s)" in err

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    jobs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'")
    assert len(jobs) == 3
    for run in jobs:  # the job's real times, not the import's
        record = records[run.data.tags["harness.run_key"]]
        assert (run.info.status, run.info.start_time, run.info.end_time) == (
            record["status"], record["start_time"], record["end_time"],
        )  # fmt: skip
    (parent,) = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'sweep'")
    assert parent.info.status == "KILLED"  # interrupted, as the sweep itself ended
    metrics = parent.data.metrics
    assert (metrics["jobs_finished"], metrics["jobs_failed"], metrics["jobs_killed"]) == (1, 1, 1)
    assert (parent.info.start_time, parent.info.end_time) == (sweep["start_time"], sweep["end_time"])

    # importing again: nothing new, and no empty sweep run
    assert main(imp) == ExitCode.OK
    assert "nothing new to import" in " ".join(capsys.readouterr().err.split())
    assert len(client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'sweep'")) == 1
    assert len(client.search_runs([exp.experiment_id])) == 4

    # the killed job is not finished in the store: resuming there runs it again (and flaky)
    monkeypatch.setenv("HARNESS_TEST_SLOW_SECONDS", "0")
    online = [a for a in run_argv if a not in ("--offline", str(offline))]
    assert main([*online, "--tracking-uri", uri, "--experiment", "t"]) == ExitCode.JOBS_FAILED
    err = " ".join(capsys.readouterr().err.split())
    assert "1 of 3 jobs already finished" in err and "1 finished, 1 failed, 1 skipped" in err
    slow = client.search_runs([exp.experiment_id], "params.method = 'slow'")
    assert sorted(r.info.status for r in slow) == ["FINISHED", "KILLED"]


def test_import_dates_the_sweep_run_by_its_jobs_without_sweep_times(tmp_path: Path, capsys):
    """A journal without sweep.json (written before it existed) still keeps the real times."""
    offline = tmp_path / "offline"
    run = ["run", "--methods", "kmeans", "--datasets", "digits", "--seeds", "0-1", "--offline", str(offline)]
    assert main(run) == ExitCode.OK
    (offline / "sweep.json").unlink()
    records = list(Journal(offline).records())
    time.sleep(1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["import", str(offline), "--tracking-uri", uri, "--experiment", "t"]) == ExitCode.OK
    assert "imported 2 finished, 0 failed and 0 killed" in " ".join(capsys.readouterr().err.split())
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'sweep'")
    assert parent.info.status == "FINISHED"
    assert parent.info.start_time == min(r["start_time"] for r in records)
    assert parent.info.end_time == max(r["end_time"] for r in records)
    assert parent.data.metrics["jobs_killed"] == 0


def test_the_journal_reads_identities_and_defaults_as_the_store_does(tmp_path: Path):
    offline = tmp_path / "offline"
    run = ["run", "--methods", "kmeans", "--datasets", "digits", "--seeds", "0-1", "--param", "kmeans.n_init=2",
           "--offline", str(offline)]  # fmt: skip
    assert main(run) == ExitCode.OK
    for path in (offline / "runs").glob("*/record.json"):  # the tags a job's run carries
        record = json.loads(path.read_text())
        record["tags"] |= identity_tags("kmeans", "a")
        path.write_text(json.dumps(record))
    frame = Journal(offline).runs_frame()
    assert set(frame["method"]) == {"kmeans (n_init=2)"} and set(frame["base_method"]) == {"kmeans"}
    assert set(frame["non_defaults"]) == {"n_init 2 (default 20)"}
    assert set(frame["method_identity"]) == {"a" * 16} and set(frame["data_digest"]) == {"d" * 16}

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["import", str(offline), "--tracking-uri", uri, "--experiment", "t"]) == ExitCode.OK
    client = MlflowClient(tracking_uri=uri)
    stored = load_runs(client, client.get_experiment_by_name("t").experiment_id)
    columns = ["method", "base_method", "dataset", "input_size", "seed", "status", "run_key", "start_time",
               "config", "param_defaults", "non_defaults", *IDENTITY_COLUMNS, "acc", "nmi_geometric"]  # fmt: skip
    assert frame[columns].equals(stored[columns])
