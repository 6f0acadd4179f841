"""An offline record of a sweep: files in a folder instead of an MLflow store.

For machines that cannot reach the tracking store, or have no MLflow at all (an air-gapped GPU
node): ``harness run --offline DIR`` writes one folder per job, ``harness import DIR`` later logs
them into MLflow as ordinary runs. The journal is a :class:`harness.recording.Recorder`, as
:class:`harness.tracking.Tracker` is, so the runner treats both alike, resume included (a job whose
folder says FINISHED is skipped). No MLflow import on this path.

Layout: ``DIR/sweep.yaml`` (the last sweep's settings), ``DIR/sweep.json`` (when it started and
ended, and how) and ``DIR/runs/<run key>/`` with
``record.json`` (job, status, metrics, params, tags, curves) and the arrays ``labels.npy``,
``embedding.npy``, ``labels_true.npy``, plus ``traceback.txt`` for a failed job.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness.errors import UsageError
from harness.messages import JobResult, Outcome, ReceivedData
from harness.record import HOST, IMPORTED_FROM, IMPORTED_RECORD
from harness.sweep import Job

RECORD = "record.json"
SWEEP_RECORD = "sweep.json"
IMPORTED_TAG = IMPORTED_RECORD
ARRAYS = ("labels", "embedding", "labels_true")


class Journal:
    """Writes a sweep's jobs as files under ``root``; the run id of a job is its run key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use offline folder {str(self.root)!r}: {exc.strerror}") from None
        self.experiment_id = str(self.root)
        self._open: dict[str, dict[str, Any]] = {}

    # -- the Tracker interface the runner uses ------------------------------------------------

    def settle_orphans(self) -> list[str]:
        return []  # a job's folder is written only when the job ends: nothing is left RUNNING

    def finished_run_keys(self) -> dict[str, str]:
        return {r["run_key"]: r["run_key"] for r in self.records() if r["status"] == "FINISHED"}

    def start_sweep(
        self,
        sweep_dict: Mapping[str, Any],
        n_jobs: int,
        n_skipped: int,
        tags: Mapping[str, str],
        *,
        start_time: int | None = None,
    ) -> str:
        (self.root / "sweep.yaml").write_text(yaml.safe_dump(dict(sweep_dict), sort_keys=False))
        # the sweep's own times, so an import dates its parent run as the sweep, not the import
        started = start_time if start_time is not None else int(time.time() * 1000)
        (self.root / SWEEP_RECORD).write_text(json.dumps({"start_time": started, "tags": dict(tags)}))
        return "offline"

    def start_job(
        self, parent_id: str, job: Job, tags: Mapping[str, str], *, start_time: int | None = None
    ) -> str:
        key = job.run_key
        self._open[key] = {
            "run_key": key,
            "job": job.to_dict(),
            "tags": dict(tags) | {HOST: platform.node()},
            "start_time": start_time if start_time is not None else int(time.time() * 1000),
            "curves": [],
        }
        return key

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        self._open[run_id]["curves"].append([key, float(value), int(step)])

    def finish_job(self, run_id: str, outcome: Outcome, *, end_time: int | None = None) -> None:
        record = self._open.pop(run_id)
        ended = end_time if end_time is not None else int(time.time() * 1000)
        record |= {"status": outcome.status, "end_time": ended, "error": outcome.error}
        arrays: dict[str, np.ndarray] = {}
        if outcome.result is not None:
            result = outcome.result
            record |= {"metrics": result.metrics, "params": result.params, "host": result.host}
            if result.data is not None:
                record["data"] = asdict(result.data)
            record["tags"] |= {k: str(v) for k, v in result.tags.items()}
            arrays = result.arrays()
        self._write(run_id, record, arrays, outcome.traceback)

    def end_sweep(
        self, run_id: str, status: str, counts: Mapping[str, int], *, end_time: int | None = None
    ) -> None:
        ended = end_time if end_time is not None else int(time.time() * 1000)
        record = self.sweep_record() | {"end_time": ended, "status": status, "counts": dict(counts)}
        (self.root / SWEEP_RECORD).write_text(json.dumps(record))

    def location(self, run_id: str) -> str:
        return str(self.root / "runs" / run_id)

    def attach_summary(self, parent_id: str, runs: pd.DataFrame) -> list[str]:
        """The sweep's table beside its runs (figures need the MLflow store: make them after import)."""
        from harness_reports import tables

        if (runs["status"] == "FINISHED").sum():
            (self.root / "summary.md").write_text(tables.to_markdown(runs))
            (self.root / "runs.csv").write_text(tables.to_csv(runs))
        return []

    def kill(self, run_ids: Iterable[str]) -> None:
        for run_id in list(run_ids):
            record = self._open.pop(run_id, None)
            if record is not None:
                self._write(
                    run_id, record | {"status": "KILLED", "end_time": int(time.time() * 1000)}, {}, None
                )

    # -- reading --------------------------------------------------------------------------------

    def records(self) -> Iterator[dict[str, Any]]:
        """Every job record in the folder (without its arrays)."""
        for path in sorted((self.root / "runs").glob(f"*/{RECORD}")):
            yield json.loads(path.read_text())

    def sweep_record(self) -> dict[str, Any]:
        """The last sweep's start_time, and end_time and status once it ended ({} if unrecorded)."""
        path = self.root / SWEEP_RECORD
        return json.loads(path.read_text()) if path.is_file() else {}

    def arrays(self, run_key: str) -> dict[str, np.ndarray | None]:
        folder = self.root / "runs" / run_key
        return {n: np.load(folder / f"{n}.npy") if (folder / f"{n}.npy").is_file() else None for n in ARRAYS}

    def traceback(self, run_key: str) -> str | None:
        path = self.root / "runs" / run_key / "traceback.txt"
        return path.read_text() if path.is_file() else None

    def runs_frame(self, run_keys: Iterable[str] | None = None) -> pd.DataFrame:
        """The same tidy frame as :func:`harness_reports.load_runs`, from the folder."""
        from harness_reports.runs import run_row, tidy

        wanted = None if run_keys is None else set(run_keys)
        return tidy(
            run_row(
                r["run_key"],
                r["status"],
                r["run_key"],
                r["start_time"],
                r["job"],
                r.get("tags", {}),
                r.get("metrics", {}),
            )
            for r in self.records()
            # smoke tests (--dry-run) only where asked for by key: the sweep's own summary
            if (r["run_key"] in wanted if wanted is not None else not r["job"].get("dry_run"))
        )

    # -- internals ------------------------------------------------------------------------------

    def _write(
        self, run_key: str, record: dict[str, Any], arrays: dict[str, np.ndarray], tb: str | None
    ) -> None:
        """Write a job's folder whole, then move it into place: a crash never leaves half a record."""
        final = self.root / "runs" / run_key
        tmp = self.root / "runs" / f".{run_key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        if tb:
            (tmp / "traceback.txt").write_text(tb)
        (tmp / RECORD).write_text(json.dumps(record, indent=1, default=_plain))
        if final.exists():
            previous = json.loads((final / RECORD).read_text()) if (final / RECORD).is_file() else {}
            if previous.get("status") == "FINISHED" and record["status"] != "FINISHED":
                shutil.rmtree(tmp)  # never replace a finished result by a failed rerun
                return
            shutil.rmtree(final)
        tmp.rename(final)


def _plain(value: Any) -> Any:
    """JSON for NumPy scalars in metrics and tags."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _record_id(record: Mapping[str, Any]) -> str:
    return f"{record['run_key']}@{record.get('end_time', 0)}"


def import_journal(journal: Journal, tracker: Any, *, rerun: bool = False) -> dict[str, int]:
    """Log a journal's jobs into ``tracker``'s experiment as one sweep; return counts.

    Jobs already FINISHED in the experiment (same run key), and records imported before (a
    failed job's record, say), are skipped unless ``rerun``; with nothing left to import no sweep
    run is created (counts["skipped"] == counts["total"]). Runs keep their recorded start and end
    times. KILLED records (an interrupted sweep) are imported as KILLED, counted as killed, never
    as finished or failed: a later sweep into the store runs those jobs again.
    """
    sweep_path = journal.root / "sweep.yaml"
    sweep_dict = yaml.safe_load(sweep_path.read_text()) if sweep_path.is_file() else {}
    records = list(journal.records())
    if not records:
        raise UsageError(f"no job records under {str(journal.root / 'runs')!r}: nothing to import")
    done = set() if rerun else set(tracker.finished_run_keys())
    if not rerun:
        done |= {r.data.tags.get(IMPORTED_TAG) for r in tracker.search("tags.`harness.kind` = 'job'")}
    todo = [r for r in records if r["run_key"] not in done and _record_id(r) not in done]
    counts = {
        "total": len(records), "skipped": len(records) - len(todo), "finished": 0, "failed": 0, "killed": 0,
    }  # fmt: skip
    if not todo:
        return counts  # an empty parent run would only say that nothing happened
    sweep_dict = {
        "methods": sorted({r["job"]["method"] for r in records}),
        "datasets": sorted({r["job"]["dataset"] for r in records}),
        "seeds": sorted({r["job"]["seed"] for r in records}),
        "sizes": sorted({r["job"]["input_size"] for r in records}),
        "resize_filter": sweep_dict.get("resize_filter", "?"),
        **{k: v for k, v in sweep_dict.items() if k not in ("methods", "datasets", "seeds", "sizes")},
    }
    start_time, end_time = _sweep_span(journal.sweep_record(), todo)
    parent = tracker.start_sweep(
        sweep_dict,
        n_jobs=len(records),
        n_skipped=counts["skipped"],
        tags={IMPORTED_FROM: str(journal.root)},
        start_time=start_time,
    )
    for record in todo:
        job = Job.from_dict(record["job"])
        run_id = tracker.start_job(
            parent,
            job,
            record["tags"] | {IMPORTED_TAG: _record_id(record)},
            start_time=record.get("start_time"),
        )
        for key, value, step in record["curves"]:
            tracker.log_metric(run_id, key, value, step)
        outcome = _outcome(journal, job, record)
        tracker.finish_job(run_id, outcome, end_time=record.get("end_time"))
        counts[{"FINISHED": "finished", "KILLED": "killed"}.get(record["status"], "failed")] += 1
    # as the runner closes a sweep: interrupted (a KILLED job) before failed
    status = "KILLED" if counts["killed"] else "FAILED" if counts["failed"] else "FINISHED"
    tracker.end_sweep(parent, status, counts, end_time=end_time)
    return counts


def _outcome(journal: Journal, job: Job, record: Mapping[str, Any]) -> Outcome:
    """The outcome a journal record describes, its arrays read back from the record's folder."""
    result = None
    if "metrics" in record:
        arrays = journal.arrays(record["run_key"])
        labels = arrays["labels"]
        if labels is None:
            raise UsageError(f"{journal.location(record['run_key'])}: a FINISHED record without labels.npy")
        data = record.get("data")
        result = JobResult(
            metrics=record["metrics"],
            params=record["params"],
            tags=record["tags"],
            labels=labels,
            host=record.get("host", "?"),
            embedding=arrays["embedding"],
            labels_true=arrays["labels_true"],
            data=ReceivedData(data["digest"], tuple(data["shape"]), data["dtype"]) if data else None,
        )
    return Outcome(
        job=job,
        status=record["status"],
        result=result,
        error=record.get("error"),
        traceback=journal.traceback(record["run_key"]),
    )


def _sweep_span(sweep: Mapping[str, Any], records: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """Start and end (ms) of the imported sweep: the recorded sweep's, widened to cover its jobs.

    A resumed offline sweep records only its last session, and old journals no sweep times at all.
    """
    starts = [t for t in [sweep.get("start_time"), *(r.get("start_time") for r in records)] if t]
    ends = [t for t in [sweep.get("end_time"), *(r.get("end_time") for r in records)] if t]
    return (min(starts) if starts else None, max(ends) if ends else None)
