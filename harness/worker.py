"""What runs inside a worker process: load data, call the method, check and score its output.

A worker runs one *task*: a single job, or (``--batch-seeds``) several seeds of one configuration
that the method trains together. It never touches the tracking store. It sends the parent the
messages of :mod:`harness.messages`, each naming the job's run key: curve points and progress while
a job runs, then exactly one :class:`~harness.messages.Result` or
:class:`~harness.messages.Failure` per job. The parent records them.
Python warnings a method raises (``warnings.warn``, or a library's, such as scikit-learn's
``ConvergenceWarning``) are collected rather than printed over the parent's progress display: they
travel with each result as the tag ``harness.warnings`` and the parent shows them under the job.
Anything with ``send`` and ``close`` can stand for the pipe (a :class:`Sink`): the Ray executor
passes one that forwards the messages to the parent through Ray.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import platform
import random
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harness import metrics, record, worker_cache
from harness.contract import ContractError, check_labels, check_result
from harness.data import default_cache_dir, resolve_data_dir
from harness.identity import data_digest
from harness.messages import CurvePoint, Failure, JobResult, Message, Progress, ReceivedData, Result
from harness.plugins import Registry
from harness.preprocess import prepare
from harness.sweep import Job
from harness.types import Dataset, MethodResult, MethodSpec

CURVE_PREFIX = record.CURVE_PREFIX
WARNINGS_TAG = record.WARNINGS
MAX_WARNINGS = 20
QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning)
"""Addressed to the developers of the libraries, not to the person reading the results."""


class Sink(Protocol):
    """Where a worker's messages go: a pipe's sending end, or the Ray executor's stand-in."""

    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of a sweep shares (picklable: it crosses into a spawned process)."""

    data_dir: str | None = None
    cache_dir: str | None = None
    device: str = "auto"
    blocked_plugins: tuple[str, ...] = ()
    extra_plugins: tuple[str, ...] = ()
    """Import paths of plugin modules to register besides the entry points (``--plugin``)."""
    dry_run: bool = False
    env: dict[str, str] = field(default_factory=dict)
    own_datasets: dict[str, Any] = field(default_factory=dict)
    """Datasets the sweep's config file declared; each worker builds them again."""
    own_datasets_dir: str | None = None
    """The config file's folder, where their relative paths start."""


def seed_python_and_numpy(seed: int) -> None:
    """Seed the global generators the core controls; methods seed their own framework."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class WorkerContext:
    """The :class:`harness.types.JobContext` a method receives."""

    def __init__(self, conn: Sink, job: Job, settings: WorkerSettings, labels: np.ndarray) -> None:
        self._conn = conn
        self._key = job.run_key
        self._labels = labels
        self.seed = job.seed
        self.device = settings.device
        cache = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
        # a stage cached by an earlier version of the method's code is not this code's result
        self.cache_dir = cache / f"code-{job.method_identity}" if job.method_identity else cache
        self.dataset = job.dataset
        self.input_size = job.input_size
        self.dry_run = settings.dry_run

    def log_metric(self, key: str, value: float, step: int) -> None:
        self._conn.send(CurvePoint(self._key, CURVE_PREFIX + key, float(value), int(step)))

    def evaluate(self, labels: np.ndarray, step: int, **extra: float) -> None:
        scores = metrics.score(self._labels, labels)
        for key, value in (scores | extra).items():
            self.log_metric(key, value, step)

    def progress(self, completed: float, total: float, description: str = "") -> None:
        self._conn.send(Progress(self._key, float(completed), float(total), description))


def run(job_dicts: list[dict[str, Any]], settings: WorkerSettings, conn: Sink) -> None:
    """Process entry point: run one task (one job, or several seeds batched) and report; never raises."""
    _exit_with_parent()
    jobs = [Job.from_dict(d) for d in job_dicts]
    reported: set[str] = set()
    try:
        for message in _run(jobs, settings, conn):
            conn.send(message)
            reported.add(message.run_key)
    except (BrokenPipeError, EOFError):
        return  # the parent is gone (killed): nobody is left to tell
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        error, tb = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        try:
            for job in jobs:
                if job.run_key not in reported:
                    conn.send(Failure(job.run_key, error, tb))
        except (BrokenPipeError, EOFError):
            return
    finally:
        with contextlib.suppress(OSError):
            conn.close()


_watching_parent = False


def _exit_with_parent(interval: float = 1.0) -> None:
    """Stop this process when the one that started it dies (``kill -9`` of ``harness run``).

    Otherwise a worker runs its job to the end for nobody, holding cores or a GPU for hours: a
    method that never reports would not even notice the closed pipe. A daemon thread polls the
    parent's pid (portable, unlike Linux's PR_SET_PDEATHSIG, which also fires when the spawning
    *thread* ends). Once per process: Ray reuses its workers for several tasks.
    """
    global _watching_parent
    if _watching_parent:
        return
    _watching_parent = True
    # the pid recorded at spawn time: the parent may already be gone by the time we get here
    spawner = multiprocessing.parent_process()
    parent = spawner.pid if spawner is not None else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


def _run(jobs: list[Job], settings: WorkerSettings, conn: Sink) -> list[Result | Failure]:
    """Run the task; return how each of its jobs ended."""
    os.environ.update(settings.env)
    job = jobs[0]
    registry = worker_cache.registry(
        settings.blocked_plugins, settings.extra_plugins, settings.own_datasets, settings.own_datasets_dir
    )
    method = registry.method(job.method)
    _check_identity(job, worker_cache.identity(registry, job.method, job.dataset))

    root = resolve_data_dir(settings.data_dir)
    dataset = worker_cache.dataset(registry, job.dataset, root)
    x = prepare(dataset, job.input_size, job.resize_filter, method.input, job.channels)
    if np.shares_memory(x, dataset.images):  # the cached dataset outlives this job: a private copy
        x = x.copy()

    received = _received(x, dataset.labels)  # before the method runs: it may change x in place

    seed_python_and_numpy(job.seed)
    contexts = [WorkerContext(conn, j, settings, dataset.labels) for j in jobs]
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # each distinct warning once per code location
        results = _call_method(method, jobs, x, dataset.n_classes, contexts)
    runtime = time.perf_counter() - start
    raised = method_warnings(caught)
    out: list[Result | Failure] = []
    for j, result in zip(jobs, results, strict=True):
        try:
            scoring = _Scoring(registry, dataset, j)
            out.append(
                Result(
                    j.run_key,
                    _job_result(j, method, result, dataset, runtime, len(jobs), raised, received, scoring),
                )
            )
        except ContractError as exc:
            out.append(Failure(j.run_key, f"ContractError: {exc}", traceback.format_exc()))
    return out


@dataclass(frozen=True)
class _Scoring:
    """What a job's labels are scored with: every metric of the registry, and the input the method
    received, flattened, rebuilt from the (read-only, cached) dataset only if a metric asks."""

    registry: Registry
    dataset: Dataset
    job: Job

    def input(self) -> np.ndarray:
        return prepare(self.dataset, self.job.input_size, self.job.resize_filter, "flat")


def _check_identity(job: Job, loaded: tuple[str, str, str]) -> None:
    """The code this worker runs must be the code the run key names: a plugin edited while the
    sweep ran, or a reused worker process (Ray) that imported an older version, would otherwise
    record the old code's results under the new code's key."""
    expected = (job.method_identity, job.dataset_identity, job.core_identity)
    if not any(expected) or expected == loaded:
        return  # jobs built by hand (tests, embedding programs) carry no identity to check
    which = [
        name for name, a, b in zip(("method", "dataset", "core"), expected, loaded, strict=True) if a != b
    ]
    raise ContractError(
        f"the {' and '.join(which)} code loaded in this worker (pid {os.getpid()}) differs from the code "
        "the sweep started with: it changed on disk during the sweep, or this process imported an older "
        "version (restart the Ray cluster's workers); run the sweep again"
    )


def _received(x: np.ndarray, labels: np.ndarray) -> ReceivedData:
    """What the method was given (after resizing and scaling), for the run record."""
    return ReceivedData(data_digest(x, labels), tuple(x.shape), str(x.dtype))


def method_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """``Category: message`` for each distinct warning worth a reader's attention, at most 20."""
    seen: dict[str, None] = {}
    for w in caught:
        if not issubclass(w.category, QUIET_WARNINGS):
            seen.setdefault(f"{w.category.__name__}: {str(w.message).strip()}", None)
    lines = list(seen)
    if len(lines) > MAX_WARNINGS:
        lines = [*lines[:MAX_WARNINGS], f"... and {len(lines) - MAX_WARNINGS} more"]
    return lines


def _call_method(
    method: Any, jobs: list[Job], x: np.ndarray, n_clusters: int, contexts: list[WorkerContext]
) -> list[Any]:
    """The method's results, one per job: ``fit_predict`` for one seed, else ``fit_predict_seeds``."""
    job = jobs[0]
    if len(jobs) == 1:
        result = method.fit_predict(
            x, n_clusters=n_clusters, seed=job.seed, params=dict(job.params), context=contexts[0]
        )
        return [check_result(job.method, result)]
    if method.fit_predict_seeds is None:
        raise TypeError(f"method {job.method!r} cannot train several seeds at once")
    results = list(
        method.fit_predict_seeds(
            x, n_clusters=n_clusters, seeds=[j.seed for j in jobs], params=dict(job.params), contexts=contexts
        )
    )
    if len(results) != len(jobs):
        raise ContractError(
            f"method {job.method!r}: fit_predict_seeds returned {len(results)} results for {len(jobs)} seeds"
        )
    return [check_result(job.method, r) for r in results]


def _job_result(
    job: Job,
    method: MethodSpec,
    result: MethodResult,
    dataset: Dataset,
    runtime: float,
    batched: int,
    raised: Sequence[str],
    received: ReceivedData,
    scoring: _Scoring,
) -> JobResult:
    """Check one job's output against the contract, score its labels, gather what the parent records."""
    checked = check_labels(
        job.method, result.labels, len(dataset.labels), dataset.n_classes, noise=method.noise_labels
    )
    labels = checked.labels
    embedding = None if result.embedding is None else np.asarray(result.embedding, dtype=np.float32)
    raised = [*raised, *checked.warnings]
    if embedding is not None and not np.isfinite(embedding).all():
        bad = int((~np.isfinite(embedding)).sum())
        raised.append(
            f"harness: the embedding has {bad} non-finite value(s): not saved, no t-SNE for this run"
        )
        embedding = None
    specs = [spec for spec, _ in scoring.registry.metrics.values()]
    truth = dataset.labels.astype(np.int64)
    scores, failed = metrics.score_run(
        specs, metrics.RunArrays(labels, truth, embedding, functools.cache(scoring.input))
    )
    raised.extend(failed)
    tags = {"device": "cpu"} | {
        f"version.{k}": v for k, v in _versions(("numpy", "scikit-learn", "scipy")).items()
    }
    timing = {"runtime_s": runtime}
    if batched > 1:
        # The seeds trained together: each run gets its share of the batch's wall time, so that
        # runtimes add up and compare with runs made one at a time; the batch's own is kept too.
        tags[record.BATCHED_SEEDS] = str(batched)
        timing = {"runtime_s": runtime / batched, "batch_runtime_s": runtime}
    if raised:
        # a batched task's warnings go to each of its seeds: the method raised them for the batch
        tags[WARNINGS_TAG] = "\n".join(raised)
    counts = {"n_clusters_found": float(checked.n_found)}
    if method.noise_labels:
        counts["n_noise"] = float(checked.n_noise)
    return JobResult(
        metrics=scores | timing | counts,
        params={"n_samples": len(labels), "n_clusters": dataset.n_classes, "scaling": dataset.scaling},
        tags=tags
        | {k: str(v) for k, v in result.tags.items()}
        | {record.DATA_DIGEST: received.digest}
        | _metric_identities(scoring.registry, scores),
        labels=labels,
        host=platform.node(),
        embedding=embedding,
        labels_true=truth,  # kept with every run: metrics added later are computed from it
        data=received,
    )


def _metric_identities(registry: Registry, scores: dict[str, float]) -> dict[str, str]:
    """The tag naming the plugin code behind each plugin metric the run was scored with."""
    identities = worker_cache.metric_identities(registry)
    scored = {name: identities[name] for name in scores if name in identities}
    return {record.METRIC_IDENTITIES: json.dumps(scored, sort_keys=True)} if scored else {}
