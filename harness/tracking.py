"""MLflow, written by the parent process only: a parent run per sweep, a child run per job.

The store is initialised and the experiment created once, before any job runs (a fresh SQLite
store migrated by several processes at once breaks). Workers never open the store.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import yaml

from harness import record
from harness.errors import UsageError
from harness.messages import JobResult, Outcome
from harness.netcheck import unreachable
from harness.sweep import Job

log = logging.getLogger(__name__)

RUN_KEY = record.RUN_KEY
SWEEP_TAG = record.SWEEP
PARENT_TAG = record.PARENT
DRY_RUN_TAG = record.DRY_RUN
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_FLUSH_SECONDS = 5.0
_PAGE = 5000  # runs per search page


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for other stores."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    # sqlite:///rel.db has path "/rel.db" (relative); sqlite:////abs.db has "//abs.db" (absolute)
    path = unquote(parsed.path)
    return Path(path[1:] if path.startswith("/") else path)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast on a tracking server that does not answer (MLflow's own client retries for minutes)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    reason = unreachable(parsed.hostname, port, timeout)
    if reason is not None:
        raise UsageError(
            f"cannot use tracking store {uri!r}: nothing answers at {parsed.hostname}:{port} ({reason}); "
            "start the server (mlflow server ...) or give a sqlite:///PATH or file URI"
        )


def search_all_runs(client: Any, experiment_ids: Sequence[str], filter_string: str = "") -> list[Any]:
    """Every active run of ``experiment_ids`` matching ``filter_string``, page after page (a search
    returns one page at a time, and an experiment of a large sweep holds more than one)."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            list(experiment_ids), filter_string=filter_string, max_results=_PAGE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _quiet_store_logs() -> None:
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking", "mlflow.store"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Tracker:
    """One experiment in one tracking store, opened (and created if need be) on construction."""

    def __init__(self, tracking_uri: str, experiment: str, *, create: bool = True) -> None:
        _quiet_store_logs()
        from mlflow import MlflowClient  # import here: mlflow is slow to import

        check_reachable(tracking_uri)
        self.tracking_uri = tracking_uri
        self._pending: dict[str, list[Any]] = {}
        self._flushed: dict[str, float] = {}
        db = sqlite_path(tracking_uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        try:
            found = self.client.get_experiment_by_name(experiment)
            if found is None and not create:
                names = sorted(e.name for e in self.client.search_experiments())
                raise UsageError(
                    f"no experiment {experiment!r} in {tracking_uri}; experiments there: {', '.join(names)}"
                )
            if found is None:
                artifacts = (db.resolve().parent / "mlartifacts").as_uri() if db is not None else None
                try:
                    self.experiment_id = self.client.create_experiment(
                        experiment, artifact_location=artifacts
                    )
                except Exception:  # created meanwhile by another process: get it
                    found = self.client.get_experiment_by_name(experiment)
                    if found is None:
                        raise
                    self.experiment_id = found.experiment_id
            else:
                if found.lifecycle_stage == "deleted":
                    raise UsageError(
                        f"experiment {experiment!r} is deleted in {tracking_uri}; restore it "
                        f"(mlflow experiments restore) or choose another --experiment"
                    )
                self.experiment_id = found.experiment_id
            if create:
                self._declare_view()
        except UsageError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot use tracking store {tracking_uri!r}: {first}") from None

    def _declare_view(self) -> None:
        """Tell the MLflow UI how to open the experiment: as model training (not GenAI), on the
        job runs grouped by configuration, dataset and size, with ACC and NMI (geometric) shown
        (see :func:`ui_url`). Written on every open, so that experiments of older harnesses get it."""
        found = self.client.get_experiment(self.experiment_id)
        view = json.dumps(runs_view(), sort_keys=True)
        wanted = {record.EXPERIMENT_KIND: "custom_model_development", record.VIEW_TAG: view}
        for key, value in wanted.items():
            if found.tags.get(key) != value:
                self.client.set_experiment_tag(self.experiment_id, key, value)

    # -- reading -------------------------------------------------------------------------------

    def search(self, filter_string: str = "") -> list[Any]:
        """Every active run of the experiment matching ``filter_string`` (all pages)."""
        return search_all_runs(self.client, [self.experiment_id], filter_string)

    def runs_frame(self, run_keys: Iterable[str] | None = None) -> Any:
        """The experiment's job runs as :func:`harness_reports.load_runs` gives them."""
        from harness_reports import load_runs

        return load_runs(self.client, self.experiment_id, run_keys=run_keys)

    def finished_run_keys(self) -> dict[str, str]:
        """Run key → id of a FINISHED child run with that key."""
        runs = self.search("attributes.status = 'FINISHED'")
        return {r.data.tags[RUN_KEY]: r.info.run_id for r in runs if RUN_KEY in r.data.tags}

    def settle_orphans(self) -> list[str]:
        """Mark KILLED the runs left RUNNING by a harness process of this host that has died.

        Returns the ids of the job runs so settled (their sweep runs are settled too).

        A crash or ``kill -9`` of ``harness run`` cannot close its runs; the next sweep does, so
        they are never mistaken for runs in progress (and never count). Runs of another host, or of
        a process that still lives, are left alone.
        """
        settled = []
        running = self.search("attributes.status = 'RUNNING'")
        sweeps = {r.info.run_id: r for r in running if r.data.tags.get(record.KIND) == "sweep"}
        for run in running:
            tags = run.data.tags
            sweep = run if tags.get(record.KIND) == "sweep" else sweeps.get(tags.get(SWEEP_TAG, ""))
            if sweep is None or sweep.data.tags.get(record.HOST) != platform.node():
                continue
            pid = int(sweep.data.tags.get(record.PID, "0") or 0)
            if pid <= 0 or _alive(pid):
                continue
            self.client.set_tag(
                run.info.run_id,
                record.ERROR,
                f"the harness process (pid {pid}) died while this run was running",
            )
            self.client.set_terminated(run.info.run_id, status="KILLED")
            if tags.get(record.KIND) == "job":
                settled.append(run.info.run_id)
        return settled

    # -- writing -------------------------------------------------------------------------------

    def start_sweep(
        self,
        sweep_dict: Mapping[str, Any],
        n_jobs: int,
        n_skipped: int,
        tags: Mapping[str, str],
        *,
        start_time: int | None = None,
    ) -> str:
        """Open the sweep's parent run; ``start_time`` (ms) for a sweep that ran earlier (an import)."""
        started = time.localtime(start_time / 1000 if start_time is not None else None)
        run = self.client.create_run(
            self.experiment_id,
            start_time=start_time,
            run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S', started)}",
            tags={record.KIND: "sweep", record.HOST: platform.node(), record.PID: str(os.getpid()), **tags},
        )
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            params=_params(
                {
                    "methods": ",".join(sweep_dict["methods"]),
                    "datasets": ",".join(sweep_dict["datasets"]),
                    "seeds": ",".join(map(str, sweep_dict["seeds"])),
                    "sizes": ",".join(map(str, sweep_dict["sizes"])),
                    "resize_filter": sweep_dict["resize_filter"],
                    "channels": sweep_dict.get("channels", "native"),
                    "n_jobs": n_jobs,
                    "n_skipped": n_skipped,
                }
            ),
        )
        self.client.log_text(run_id, yaml.safe_dump(dict(sweep_dict), sort_keys=False), "sweep.yaml")
        return run_id

    def start_job(
        self, parent_id: str, job: Job, tags: Mapping[str, str], *, start_time: int | None = None
    ) -> str:
        """Open a job's child run; ``start_time`` (ms) for a job that ran earlier (an import)."""
        job_dict = job.to_dict()
        run = self.client.create_run(
            self.experiment_id,
            start_time=start_time,
            run_name=job.label,
            tags={
                PARENT_TAG: parent_id,
                SWEEP_TAG: parent_id,
                RUN_KEY: job_dict["run_key"],
                record.KIND: "job",
                record.METHOD: job_dict["method"],
                record.CONFIGURATION: job.configuration,
                record.DATASET: job_dict["dataset"],
                # method parameters outside the run key (reports do not tell configurations apart by them)
                **({record.UNKEYED: ",".join(job_dict["unkeyed"])} if job_dict.get("unkeyed") else {}),
                # a smoke test's scores mean nothing: reports leave these runs out
                **({DRY_RUN_TAG: "true"} if job_dict.get("dry_run") else {}),
                **tags,
            },
        )
        run_id = run.info.run_id
        params = {
            "method": job_dict["method"],
            "dataset": job_dict["dataset"],
            "dataset_variant": job_dict["dataset_variant"],
            "input_size": job_dict["input_size"],
            "native_size": job_dict["native_size"],
            "resize_filter": job_dict["resize_filter"],
            "channels": job_dict.get("channels", "native"),
            "seed": job_dict["seed"],
            **{f"{job_dict['method']}.{k}": v for k, v in job_dict["params"].items()},
        }
        self.client.log_batch(run_id, params=_params(params))
        return run_id

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        """Buffer one curve point; points are written in batches, at least every few seconds."""
        from mlflow.entities import Metric

        now = time.time()
        self._pending.setdefault(run_id, []).append(Metric(key, value, int(now * 1000), step))
        if len(self._pending[run_id]) >= _BATCH or now - self._flushed.get(run_id, 0.0) > _FLUSH_SECONDS:
            self.flush(run_id)

    def flush(self, run_id: str) -> None:
        pending = self._pending.pop(run_id, [])
        for start in range(0, len(pending), _BATCH):
            self.client.log_batch(run_id, metrics=pending[start : start + _BATCH])
        self._flushed[run_id] = time.time()

    def finish_job(self, run_id: str, outcome: Outcome, *, end_time: int | None = None) -> None:
        """Log the outcome of a job and close its run with the job's status.

        ``end_time`` (ms) keeps the real end of a job that ran earlier (an import); default now.
        """
        from mlflow.entities import Metric, RunTag

        self.flush(run_id)
        self._flushed.pop(run_id, None)
        now = int(time.time() * 1000) if end_time is None else end_time
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            job_dict = outcome.job.to_dict()
            (out / "job.yaml").write_text(yaml.safe_dump(job_dict, sort_keys=False))
            if outcome.result is not None:
                result = outcome.result
                self.client.log_batch(
                    run_id,
                    metrics=[Metric(k, float(v), now, 0) for k, v in result.metrics.items()],
                    params=_params(result.params),
                    tags=[RunTag(k, str(v)) for k, v in {**result.tags, record.HOST: result.host}.items()],
                )
                if result.data is not None:
                    self.client.log_inputs(run_id, datasets=[_dataset_input(job_dict, result)])
                for name, array in result.arrays().items():
                    np.save(out / f"{name}.npy", array)
            if outcome.traceback:
                (out / "traceback.txt").write_text(outcome.traceback)
            if outcome.error:
                self.client.set_tag(run_id, record.ERROR, outcome.error[:5000])
            self.client.log_artifacts(run_id, str(out))
        self.client.set_terminated(run_id, status=outcome.status, end_time=end_time)

    def end_sweep(
        self, run_id: str, status: str, counts: Mapping[str, int], *, end_time: int | None = None
    ) -> None:
        """Log the job counts as ``jobs_*`` metrics and close the parent run (at ``end_time``, ms)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000) if end_time is None else end_time
        self.client.log_batch(
            run_id, metrics=[Metric(f"jobs_{k}", float(v), now, 0) for k, v in counts.items()]
        )
        self.client.set_terminated(run_id, status=status, end_time=end_time)

    def location(self, run_id: str) -> str:
        return f"run {run_id} (artifacts: {self.client.get_run(run_id).info.artifact_uri})"

    def attach_summary(self, parent_id: str, runs: Any) -> list[str]:
        """The report's table and figures, as artifacts of the sweep's parent run."""
        from harness_reports import tables

        if (runs["status"] == "FINISHED").sum() == 0:
            return []
        notes = []
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "summary.md").write_text(tables.to_markdown(runs))
            (out / "runs.csv").write_text(tables.to_csv(runs))
            try:
                from harness_reports.figures import make_figures  # seaborn, matplotlib: heavy, optional here

                make_figures(self.client, runs, out / "figures")
            except Exception as exc:  # a figure must never cost the sweep its results
                notes.append(f"figures not made: {type(exc).__name__}: {exc}")
            self.client.log_artifacts(parent_id, str(out))
        return notes

    def kill(self, run_ids: Iterable[str]) -> None:
        """Close the runs of an interrupted sweep (Ctrl-C, ``kill``), saying so on each."""
        for run_id in run_ids:
            self.flush(run_id)
            self.client.set_tag(run_id, record.ERROR, "interrupted: the sweep was stopped (Ctrl-C or kill)")
            self.client.set_terminated(run_id, status="KILLED")


RUN_NAME_COLUMN = "attributes.`Run Name`"
"""The id of the run-name column in the MLflow UI's runs table (its ag-grid ``col-id``)."""


def runs_view() -> dict[str, Any]:
    """The MLflow UI's state of an experiment's runs table, as its "share view" stores it: the job
    runs only, grouped (so the children of a sweep's run are not folded under it) by configuration,
    dataset and input size, each group showing the seeds' average; columns for the dataset input,
    the seed and the two table metrics."""
    columns = ["attributes.`Dataset`", "params.`seed`", "metrics.`acc`", "metrics.`nmi_geometric`"]
    return {
        "searchFilter": f"tags.`{record.KIND}` = 'job'",
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "selectedColumns": columns,
        "groupBy": {
            "aggregateFunction": "average",
            "groupByKeys": [
                {"mode": "tag", "groupByData": record.CONFIGURATION},
                {"mode": "param", "groupByData": "dataset"},
                {"mode": "param", "groupByData": "input_size"},
            ],
        },
        # the UI applies widths to the columns of columnOrder only: the run name and the group
        # names ("harness.configuration: kmeans (n_init=2), dataset: digits, ...") need room
        "columnOrder": ["0", RUN_NAME_COLUMN, "runDateAndNestInfo", *columns, "duration"],
        "columnWidths": {RUN_NAME_COLUMN: 520, "attributes.`Dataset`": 260},
        "runListHidden": False,
    }


def ui_url(base: str, experiment_id: str) -> str:
    """Where the MLflow UI shows an experiment's runs as :func:`runs_view` lays them out."""
    return (
        f"{base}/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={record.VIEW_KEY}"
    )


def _dataset_input(job_dict: Mapping[str, Any], result: JobResult) -> Any:
    """The array the method received, as an MLflow dataset input (the UI's Dataset column).

    Named after the dataset and input size; its digest is the content digest of the array and
    labels (:func:`harness.identity.data_digest`), so two runs on the same data show the same one.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    data = result.data
    assert data is not None
    source = {
        "dataset": job_dict["dataset"],
        "variant": job_dict.get("dataset_variant"),
        "input_size": job_dict["input_size"],
        "resize_filter": job_dict["resize_filter"],
        "channels": job_dict.get("channels", "native"),
        "scaling": result.params.get("scaling"),
    }
    dataset = Dataset(
        name=f"{job_dict['dataset']}@{job_dict['input_size']}px",
        digest=data.digest,
        source_type="harness",
        source=json.dumps(source, sort_keys=True),
        schema=json.dumps({"shape": list(data.shape), "dtype": data.dtype}),
        profile=json.dumps({"n_samples": data.shape[0], "n_clusters": result.params.get("n_clusters")}),
    )
    return DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, "train")])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _params(values: Mapping[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, "none" if v is None else str(v)) for k, v in values.items()]
