"""The run path: the runner's events, the recorders behind one protocol, what a failed job says."""

from __future__ import annotations

import json

from harness.cli import main
from harness.errors import ExitCode


def test_a_listener_hears_a_sweep_in_order_and_the_journal_records_it(tmp_path):
    from harness import events
    from harness.config import build_sweep
    from harness.executor import LocalExecutor
    from harness.journal import Journal
    from harness.plugins import load_registry
    from harness.runner import run_sweep
    from harness.worker import WorkerSettings

    registry = load_registry(extra_modules=["harness_test_plugins"])
    sweep = build_sweep(
        registry, {}, {"methods": "kmeans,flaky", "seeds": "0-1", "params": {"kmeans": {"n_init": 1}}}
    )
    heard: list[events.Event] = []

    class Listener:
        def notify(self, event):
            heard.append(event)

    settings = WorkerSettings(extra_plugins=("harness_test_plugins",))
    journal = Journal(tmp_path / "offline")
    report = run_sweep(
        sweep,
        registry,
        recorder=journal,
        executor=LocalExecutor(settings),
        listeners=[Listener()],
        where="here",
    )
    kinds = [type(e).__name__ for e in heard]
    assert kinds[0] == "SweepStarted" and kinds[-1] == "SweepEnded"
    assert kinds.count("JobStarted") == kinds.count("JobEnded") == 4
    for job_started in (e for e in heard if isinstance(e, events.JobStarted)):
        later = heard[heard.index(job_started) :]
        ended = next(e for e in later if isinstance(e, events.JobEnded) and e.outcome.job == job_started.job)
        assert heard.index(ended) > heard.index(job_started)
    failed = [e for e in heard if isinstance(e, events.JobEnded) and e.outcome.status == "FAILED"]
    (fail,) = failed  # flaky fails on seed 1
    assert fail.outcome.job.seed == 1 and fail.record == str(
        tmp_path / "offline" / "runs" / fail.outcome.job.run_key
    )
    assert "RuntimeError: flaky fails on seed 1" in fail.outcome.traceback
    assert report.finished == 3 and len(report.failed) == 1 and not report.interrupted
    # the journal holds what the events said, with the identity tags of the job's start
    records = {r["run_key"]: r for r in journal.records()}
    assert {r["status"] for r in records.values()} == {"FINISHED", "FAILED"}
    assert all(r["tags"]["harness.method_identity"] for r in records.values())
    assert json.loads((tmp_path / "offline" / "sweep.json").read_text())["status"] == "FAILED"
    assert (tmp_path / "offline" / "summary.md").is_file()


def test_debug_prints_the_worker_traceback_and_the_failed_line_says_where_the_run_is(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["run", "--plugin", "harness_test_plugins", "--methods", "flaky", "--seeds", "1"]
    argv += ["--tracking-uri", uri, "--experiment", "t"]
    assert main(argv) == ExitCode.JOBS_FAILED
    err = capsys.readouterr().err
    assert "✗ flaky · digits@8 · seed 1  RuntimeError: flaky fails on seed 1 as asked" in err
    assert "Traceback (most recent call last)" not in err
    assert "--debug shows each failed job's traceback" in err
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("t").experiment_id], "tags.`harness.kind` = 'job'"
    )
    assert f"run {run.info.run_id} (artifacts: {run.info.artifact_uri})" in err

    assert main([*argv, "--debug"]) == ExitCode.JOBS_FAILED
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError(f"flaky fails on seed {seed} as asked")' in err
