"""MLflow child runs → one tidy pandas frame, one row per run."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

COLUMNS = ("run_id", "status", "method", "dataset", "input_size", "seed", "run_key", "start_time")
METRICS = ("acc", "nmi_geometric", "nmi_arithmetic", "ari", "runtime_s")


def load_runs(client, experiment_id: str, run_keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Child runs of an experiment (optionally only those with the given run keys).

    Where a run key has several runs (a rerun, a crash then a resume), the newest FINISHED one is
    kept, or else the newest of any status, so that every job counts once.
    """
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string="tags.`harness.kind` = 'job'", max_results=5000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    wanted = None if run_keys is None else set(run_keys)
    rows = []
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        key = tags.get("harness.run_key")
        if wanted is not None and key not in wanted:
            continue
        rows.append(
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "method": params.get("method", tags.get("harness.method")),
                "dataset": params.get("dataset", tags.get("harness.dataset")),
                "input_size": int(params.get("input_size", 0)),
                "seed": int(params.get("seed", -1)),
                "run_key": key,
                "start_time": run.info.start_time,
                **{m: metrics.get(m, float("nan")) for m in METRICS},
            }
        )
    return tidy(rows)


def tidy(rows: Iterable[dict]) -> pd.DataFrame:
    """One row per run key from run records (``COLUMNS`` and ``METRICS``), in report order.

    Where a run key has several runs, the newest FINISHED one is kept, or else the newest of any
    status. Shared by the MLflow reader above and the offline journal (:mod:`harness.journal`).
    """
    frame = pd.DataFrame(list(rows), columns=[*COLUMNS, *METRICS])
    if frame.empty:
        return frame
    frame["finished"] = frame["status"] == "FINISHED"
    frame = frame.sort_values(["finished", "start_time"]).drop_duplicates("run_key", keep="last")
    return (
        frame.drop(columns="finished")
        .sort_values(["dataset", "input_size", "method", "seed"])
        .reset_index(drop=True)
    )
