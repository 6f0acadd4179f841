"""What the harness costs on top of the methods: per-job overhead and sweep throughput.

Run by hand, not by tox (figures depend on the machine; see the README for the last ones):

    pytest benchmarks/test_overhead.py --benchmark-enable -s -p no:cacheprovider

Per job, the overhead is the child run's wall time (from the run's creation to its end: worker
start, data load, scoring, result and artifact logging) minus the method's own ``runtime_s``. The
goal is under 5 % of the job's compute at MNIST scale (k-means, ``n_init=20``, on all 70,000
images). Sizes are tunable, because a full run takes minutes per job on a small CPU:

    HARNESS_BENCH_SEEDS (3)  HARNESS_BENCH_N_INIT (20)  HARNESS_BENCH_JOBS (8)  HARNESS_BENCH_RAY (1)
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEEDS = int(os.environ.get("HARNESS_BENCH_SEEDS", "3"))
N_INIT = int(os.environ.get("HARNESS_BENCH_N_INIT", "20"))
THROUGHPUT_JOBS = int(os.environ.get("HARNESS_BENCH_JOBS", "8"))
EXECUTORS = ["local", "ray"] if os.environ.get("HARNESS_BENCH_RAY", "1") == "1" else ["local"]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    path = Path(os.environ.get("HARNESS_TEST_DATA") or ROOT.parent / "shared" / "data")
    if not (path / "mnist").is_dir():
        pytest.skip(f"MNIST not found under {path} (set HARNESS_TEST_DATA)")
    return path


def _executor_args(executor: str) -> list[str]:
    if executor == "ray":
        pytest.importorskip("ray")
        return ["--executor", "ray"]
    return []


def _sweep(argv: list[str]) -> tuple[float, list]:
    """Run one sweep; its wall time and its child runs."""
    start = time.perf_counter()
    code = main(argv)
    wall = time.perf_counter() - start
    assert code == 0
    uri = argv[argv.index("--tracking-uri") + 1]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("bench")
    runs = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'", max_results=1000)
    return wall, runs


@pytest.mark.parametrize("executor", EXECUTORS)
def test_overhead_per_job_at_mnist_scale(benchmark, tmp_path, data_dir, executor):
    argv = [
        "run", "--methods", "kmeans", "--datasets", "mnist", "--seeds", f"0-{SEEDS - 1}", "--jobs", "1",
        "--param", f"kmeans.n_init={N_INIT}", "--data-dir", str(data_dir), "--experiment", "bench",
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *_executor_args(executor),
    ]  # fmt: skip
    wall, runs = benchmark.pedantic(_sweep, args=(argv,), rounds=1, iterations=1)
    runs = sorted(runs, key=lambda r: r.info.start_time)
    compute = [r.data.metrics["runtime_s"] for r in runs]
    overhead = [(r.info.end_time - r.info.start_time) / 1000 - c for r, c in zip(runs, compute, strict=True)]
    ratio = sum(overhead) / sum(compute)
    info = {
        "jobs": len(runs),
        "compute_s_median": statistics.median(compute),
        "overhead_s_per_job": [round(o, 2) for o in overhead],
        "overhead_ratio": ratio,
        "sweep_fixed_s": wall - sum((r.info.end_time - r.info.start_time) / 1000 for r in runs),
    }
    benchmark.extra_info.update(info)
    print(f"\n[{executor}] MNIST k-means n_init={N_INIT}: {info}")
    assert ratio < 0.05 or N_INIT < 20, f"harness overhead {ratio:.1%} of the compute (goal < 5 %)"


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_sweep_throughput(benchmark, tmp_path, executor, workers):
    argv = [
        "run", "--methods", "kmeans", "--datasets", "digits", "--seeds", f"0-{THROUGHPUT_JOBS - 1}",
        "--jobs", str(workers), "--experiment", "bench",
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *_executor_args(executor),
    ]  # fmt: skip
    wall, runs = benchmark.pedantic(_sweep, args=(argv,), rounds=1, iterations=1)
    assert len(runs) == THROUGHPUT_JOBS and all(r.info.status == "FINISHED" for r in runs)
    first = min(r.info.start_time for r in runs)
    last = max(r.info.end_time for r in runs)
    info = {
        "jobs": len(runs),
        "wall_s": wall,
        "jobs_per_min": 60 * len(runs) / wall,
        "jobs_per_min_excluding_startup": 60 * len(runs) / ((last - first) / 1000),
        "compute_s_sum": sum(r.data.metrics["runtime_s"] for r in runs),
    }
    benchmark.extra_info.update(info)
    print(f"\n[{executor}, {workers} worker(s)] digits k-means n_init=20: {info}")
