"""MLflow child runs → one tidy pandas frame, one row per run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

COLUMNS = ("run_id", "status", "method", "dataset", "input_size", "seed", "run_key", "start_time", "config")
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
        method = params.get("method", tags.get("harness.method"))
        prefix = f"{method}."
        rows.append(
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "method": method,
                "dataset": params.get("dataset", tags.get("harness.dataset")),
                "input_size": int(params.get("input_size", 0)),
                "seed": int(params.get("seed", -1)),
                "run_key": key,
                "start_time": run.info.start_time,
                "config": configuration(
                    params.get("resize_filter"),
                    {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)},
                    tags.get("harness.unkeyed", "").split(","),
                ),
                **{m: metrics.get(m, float("nan")) for m in METRICS},
            }
        )
    return tidy(rows)


def configuration(resize_filter: Any, params: Mapping[str, Any], unkeyed: Iterable[str] = ()) -> str:
    """What besides method, dataset, size and seed sets a run apart: its resize filter and the
    method parameters that are part of the run key, as sorted JSON (values as MLflow logs them)."""
    as_logged = {k: "none" if v is None else str(v) for k, v in params.items() if k not in set(unkeyed)}
    return json.dumps({"resize_filter": str(resize_filter), **as_logged}, sort_keys=True)


def tidy(rows: Iterable[dict]) -> pd.DataFrame:
    """One row per run key from run records (``COLUMNS`` and ``METRICS``), in report order.

    Where a run key has several runs, the newest FINISHED one is kept, or else the newest of any
    status. Where one method ran with several configurations (``config``), each keeps a name of
    its own, ``method (param=value, ...)`` with the settings that differ, so that tables, figures
    and statistics never pool them. Shared by the MLflow reader above and the offline journal
    (:mod:`harness.journal`).
    """
    frame = pd.DataFrame(list(rows), columns=[*COLUMNS, *METRICS])
    if frame.empty:
        return frame
    frame["config"] = frame["config"].fillna("{}")
    frame["finished"] = frame["status"] == "FINISHED"
    frame = frame.sort_values(["finished", "start_time"]).drop_duplicates("run_key", keep="last")
    frame = _name_configurations(frame.drop(columns="finished"))
    return frame.sort_values(["dataset", "input_size", "method", "seed"]).reset_index(drop=True)


def _name_configurations(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for method, group in frame.groupby("method", sort=False):
        configs = {c: json.loads(c) for c in group["config"].unique()}
        if len(configs) < 2:
            continue
        keys = sorted({k for config in configs.values() for k in config})
        differ = [k for k in keys if len({config.get(k) for config in configs.values()}) > 1]
        names = {
            c: f"{method} ({', '.join(f'{k}={config.get(k)}' for k in differ)})"
            for c, config in configs.items()
        }
        frame.loc[group.index, "method"] = group["config"].map(names)
    return frame
