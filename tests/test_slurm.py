"""The SLURM executor against a real single-node SLURM cluster started on this machine
(``helpers/slurm_cluster.sh``): the local executor's scores, a cancelled job, kill and resume,
Ctrl-C; and the bad input caught before anything is submitted.

The cluster needs root and Debian's slurm-wlm, slurmdbd, munge and mariadb-server (``.ci/run``
installs them); where it cannot start, these tests skip saying why. A cluster that is already up
(``$SLURM_CONF`` names its configuration and ``sinfo`` answers) is used as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.errors import ExitCode

HELPERS = Path(__file__).parent / "helpers"
SWEEP = [
    "run", "--plugin", "harness_test_plugins", "--datasets", "digits", "--param", "kmeans.n_init=2",
    "--experiment", "t",
]  # fmt: skip


def _answers() -> bool:
    if shutil.which("sinfo") is None or not os.environ.get("SLURM_CONF"):
        return False
    done = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A SLURM cluster to submit to; yields its partition. Started here unless one answers."""
    if _answers():
        yield "debug"
        return
    if shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed (apt-get install slurm-wlm slurmdbd munge mariadb-server)")
    folder = Path("/tmp") / f"harness-slurm-{os.getpid()}"  # short: the daemons' socket paths
    script = HELPERS / "slurm_cluster.sh"
    done = subprocess.run(["bash", str(script), "start", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True)
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        pytest.skip(f"the SLURM daemons did not start: {why}")
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    try:
        yield "debug"
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def helpers_importable(monkeypatch):
    """The test plugins importable in the SLURM jobs too (they start a fresh interpreter)."""
    paths = [str(HELPERS), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def _jobs(uri: str) -> dict[str, object]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    runs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'", max_results=100)
    return {r.data.tags["harness.run_key"]: r for r in runs}


def _open_runs(uri: str) -> dict[str, object]:
    """The job runs of a sweep still going: none while the store or its experiment is not made."""
    try:
        return _jobs(uri)
    except Exception:  # the experiment does not exist yet, or the database is being created
        return {}


def _sacct(*job_ids: str) -> dict[str, str]:
    """SLURM's accounting: job id → state, for the array tasks of the given jobs."""
    args = [a for j in job_ids for a in ("-j", j.split("_")[0])]
    out = subprocess.run(
        ["sacct", "-n", "-X", "--parsable2", "-o", "JobID,State", *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def _all_cancelled(job_ids) -> bool:
    """Whether accounting says CANCELLED for each array task, listed on its own (``16_0``) or
    under its array (``16``, ``16_[0-1]``), as sacct folds an array cancelled as a whole."""
    states = _sacct(*job_ids)

    def state(job_id: str) -> str:
        array = job_id.split("_")[0]
        folded = (v for k, v in states.items() if k == array or k.startswith(array + "_["))
        return states.get(job_id) or next(folded, "")

    return all(state(j).startswith("CANCELLED") for j in job_ids)


def _ledger(folder: Path) -> dict[str, str]:
    path = folder / "submitted.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def test_slurm_sweep_gets_the_local_executors_runs_and_scores(tmp_path, slurm_cluster, helpers_importable):
    sweep = [*SWEEP, "--methods", "kmeans,flaky,curves", "--seeds", "0-1"]
    local, remote = (f"sqlite:///{tmp_path / name / 'mlflow.db'}" for name in ("local", "slurm"))
    folder = tmp_path / "shared"
    assert main([*sweep, "--tracking-uri", local]) == ExitCode.JOBS_FAILED  # flaky fails on seed 1
    slurm = ["--executor", "slurm", "--slurm-partition", slurm_cluster, "--slurm-time", "10"]
    argv = [*sweep, "--tracking-uri", remote, *slurm, "--slurm-folder", str(folder)]
    assert main(argv) == ExitCode.JOBS_FAILED

    want, got = _jobs(local), _jobs(remote)
    assert len(got) == 6 and set(got) == set(want)
    job_ids = {r.data.tags.get("slurm.job_id") for r in got.values() if r.info.status == "FINISHED"}
    assert len(job_ids) == 5 and None not in job_ids  # each run names the SLURM job that made it
    assert set(_sacct(*job_ids).values()) == {"COMPLETED"}
    assert len({j.split("_")[0] for j in job_ids}) == 1  # one job array
    client = MlflowClient(tracking_uri=remote)
    for key, run in got.items():
        assert run.info.status == want[key].info.status
        if run.info.status == "FAILED":
            assert run.data.tags["harness.error"] == want[key].data.tags["harness.error"]
            text = Path(client.download_artifacts(run.info.run_id, "traceback.txt")).read_text()
            assert "flaky fails on seed 1 as asked" in text
            continue
        for metric in ("acc", "nmi_geometric", "nmi_arithmetic", "ari", "n_clusters_found"):
            assert run.data.metrics[metric] == want[key].data.metrics[metric], metric
        assert run.data.params == want[key].data.params
        if run.data.params["method"] == "curves":  # carried back in the job's result file
            loss = client.get_metric_history(run.info.run_id, "curve/loss")
            assert sorted((m.step, m.value) for m in loss) == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert _ledger(folder) == {}  # every job recorded: nothing left to find again


def _wait(what: str, condition, seconds: float = 120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _running(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip() == "RUNNING"


def test_a_cancelled_job_becomes_a_killed_run_and_the_sweep_goes_on(
    tmp_path, slurm_cluster, helpers_importable, monkeypatch
):
    import threading

    monkeypatch.setenv("HARNESS_TEST_SLOW_SECONDS", "600")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    folder = tmp_path / "shared"
    cancelled: list[str] = []

    def cancel_the_slow_one() -> None:  # what a user does with scancel while the sweep runs
        ledger = _wait("two submitted jobs", lambda: len(_ledger(folder)) == 2 and _ledger(folder))
        jobs = folder / "jobs"
        # k-means ends in seconds; the job still without a result file is the slow one
        slow = _wait(
            "k-means's result",
            lambda: (
                [j for j in ledger.values() if not (jobs / j / f"{j}_0_result.pkl").exists()]
                if any((jobs / j / f"{j}_0_result.pkl").exists() for j in ledger.values())
                else None
            ),
        )
        _wait("the slow job running", lambda: _running(slow[0]))
        subprocess.run(["scancel", slow[0]], check=True)
        cancelled.append(slow[0])

    canceller = threading.Thread(target=cancel_the_slow_one, daemon=True)
    canceller.start()
    argv = [*SWEEP, "--methods", "kmeans,slow", "--seeds", "0", "--tracking-uri", uri]
    argv += ["--executor", "slurm", "--slurm-folder", str(folder)]
    assert main(argv) == ExitCode.JOBS_FAILED
    canceller.join(timeout=5)
    assert cancelled, "the slow job was never cancelled"
    runs = {r.data.params["method"]: r for r in _jobs(uri).values()}
    assert runs["kmeans"].info.status == "FINISHED"
    killed = runs["slow"]
    assert killed.info.status == "KILLED"
    error = killed.data.tags["harness.error"]
    assert f"SLURM job {cancelled[0]} was cancelled (scancel)" in error and "CANCELLED" in error
    client = MlflowClient(tracking_uri=uri)
    text = Path(client.download_artifacts(killed.info.run_id, "traceback.txt")).read_text()
    assert "Its logs:" in text and str(folder) in text  # where to look
    assert _ledger(folder) == {}


def _harness(argv: list[str], log: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, **env}
    environ["PYTHONPATH"] = os.pathsep.join([str(HELPERS), *sys.path])
    with open(log, "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "harness.cli", *argv],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def test_killed_harness_run_resumes_and_finds_its_jobs_in_slurm(tmp_path, slurm_cluster):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    folder = tmp_path / "shared"
    argv = [*SWEEP, "--methods", "slow", "--seeds", "0-1", "--tracking-uri", uri]
    argv += ["--executor", "slurm", "--slurm-folder", str(folder)]
    proc = _harness(argv, tmp_path / "first.log", HARNESS_TEST_SLOW_SECONDS="8")
    try:
        submitted = _wait("two submitted jobs", lambda: len(_ledger(folder)) == 2 and _ledger(folder))
    finally:
        proc.kill()  # kill -9: no chance to cancel anything
        proc.wait()
    # still in SLURM, each array task on its own (-r)
    queued = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True).stdout
    assert set(submitted.values()) <= set(queued.split())

    # the rerun waits for those jobs instead of submitting new ones
    log = tmp_path / "second.log"
    again = _harness(argv, log, HARNESS_TEST_SLOW_SECONDS="8")
    assert again.wait(timeout=300) == ExitCode.OK, log.read_text()
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    runs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'")
    # the rerun's runs FINISHED; the killed sweep's, if it had opened any before it died, KILLED
    statuses = [r.info.status for r in runs]
    assert statuses.count("FINISHED") == 2 and set(statuses) <= {"FINISHED", "KILLED"}
    finished = {r.data.tags["harness.run_key"]: r for r in runs if r.info.status == "FINISHED"}
    assert {r.data.tags["slurm.job_id"] for r in finished.values()} == set(submitted.values())
    assert set(finished) == set(submitted)
    assert set(_sacct(*submitted.values())) == set(submitted.values())  # no job submitted twice
    assert _ledger(folder) == {}


def test_ctrl_c_cancels_the_submitted_jobs_and_marks_their_runs_killed(tmp_path, slurm_cluster):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    folder = tmp_path / "shared"
    argv = [*SWEEP, "--methods", "slow", "--seeds", "0-1", "--tracking-uri", uri]
    argv += ["--executor", "slurm", "--slurm-folder", str(folder)]
    log = tmp_path / "run.log"
    proc = _harness(argv, log, HARNESS_TEST_SLOW_SECONDS="600")
    try:
        submitted = _wait("two submitted jobs", lambda: len(_ledger(folder)) == 2 and _ledger(folder))
        _wait("the jobs running", lambda: all(_running(j) for j in submitted.values()))
        # the parent opens a job's run when its poll sees the job start: interrupt after that, or
        # there is no run yet to mark (the jobs are cancelled all the same)
        _wait("the parent to open their runs", lambda: len(_open_runs(uri)) == 2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == ExitCode.INTERRUPTED, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()
    _wait("SLURM to record the cancel of every job", lambda: _all_cancelled(submitted.values()), seconds=60)
    assert sorted(r.info.status for r in _jobs(uri).values()) == ["KILLED", "KILLED"]
    assert _ledger(folder) == {}  # cancelled: a rerun submits them anew


# -- bad input: one line, exit code 2, nothing submitted or recorded -------------------------------


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: ") and "\n" not in err, err
    return err


def _queue() -> str:
    return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout


def test_unknown_partition_is_one_line_and_nothing_is_submitted(tmp_path, capsys, slurm_cluster):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    before = _queue()
    argv = ["run", "--methods", "kmeans", "--tracking-uri", uri, "--executor", "slurm"]
    argv += ["--slurm-partition", "debgu", "--slurm-folder", str(tmp_path / "shared")]
    assert main(argv) == ExitCode.USAGE_ERROR
    err = _one_line_error(capsys)
    assert "--slurm-partition: unknown partition 'debgu' (did you mean 'debug'?)" in err
    assert "partitions: debug" in err
    assert not (tmp_path / "store").exists() and _queue() == before
    assert not list((tmp_path / "shared").iterdir())  # no job scripts either


def test_no_sbatch_on_the_path_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    argv = ["run", "--methods", "kmeans", "--tracking-uri", uri, "--executor", "slurm"]
    assert main([*argv, "--slurm-folder", str(tmp_path / "shared")]) == ExitCode.USAGE_ERROR
    err = _one_line_error(capsys)
    assert "--executor slurm: no sbatch on the PATH" in err and "login node" in err
    assert not (tmp_path / "store").exists() and not (tmp_path / "shared").exists()


def test_unreachable_shared_folder_is_one_line(tmp_path, capsys, slurm_cluster):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    argv = ["run", "--methods", "kmeans", "--tracking-uri", uri, "--executor", "slurm"]
    assert main([*argv, "--slurm-folder", str(blocker / "slurm")]) == ExitCode.USAGE_ERROR
    err = _one_line_error(capsys)
    assert f"--slurm-folder: cannot write '{blocker / 'slurm'}'" in err and "compute nodes share" in err
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--slurm-time", "4h"], "--slurm-time: expected minutes, MM:SS, HH:MM:SS"),
        (["--gpus-per-job", "0.5"], "--gpus-per-job 0.5: SLURM gives whole GPUs"),
        (
            ["--executor", "local", "--slurm-partition", "gpu"],
            "slurm_partition: only used with executor 'slurm'",
        ),
    ],
)
def test_bad_slurm_options_are_one_line(tmp_path, capsys, flags, message):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    argv = ["run", "--methods", "kmeans", "--tracking-uri", uri, "--executor", "slurm", *flags]
    assert main([*argv, "--slurm-folder", str(tmp_path / "shared")]) == ExitCode.USAGE_ERROR
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "store").exists()


def test_sbatch_lines_of_the_config_reach_the_job_script(tmp_path, slurm_cluster, helpers_importable):
    config = tmp_path / "sweep.yaml"
    config.write_text("executor: slurm\nslurm_sbatch: ['--comment=harness-test', '#SBATCH --nice=10']\n")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    folder = tmp_path / "shared"
    argv = [*SWEEP, "--config", str(config), "--methods", "kmeans", "--seeds", "0"]
    assert main([*argv, "--tracking-uri", uri, "--slurm-folder", str(folder)]) == ExitCode.OK
    [script] = (folder / "jobs").glob("*/*_submission.sh")
    text = script.read_text()
    assert "#SBATCH --comment=harness-test" in text and "#SBATCH --nice=10" in text
    assert "#SBATCH --requeue" in text  # a preempted job goes back to the queue


@pytest.mark.slow  # a minute at least: SLURM's time limits are whole minutes
def test_a_job_that_runs_out_of_time_becomes_a_failed_run(
    tmp_path, slurm_cluster, helpers_importable, monkeypatch
):
    monkeypatch.setenv("HARNESS_TEST_SLOW_SECONDS", "600")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    argv = [*SWEEP, "--methods", "slow", "--seeds", "0", "--tracking-uri", uri, "--executor", "slurm"]
    argv += ["--slurm-time", "1", "--slurm-folder", str(tmp_path / "shared")]
    assert main(argv) == ExitCode.JOBS_FAILED
    [run] = _jobs(uri).values()
    assert run.info.status == "FAILED"
    assert "ran out of time" in run.data.tags["harness.error"], run.data.tags["harness.error"]
