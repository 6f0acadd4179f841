"""MLflow child runs → one tidy pandas frame, one row per run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from harness import record
from harness.errors import did_you_mean
from harness.tracking import search_all_runs

IDENTITY_COLUMNS = {
    "method_identity": record.METHOD_IDENTITY,
    "dataset_identity": record.DATASET_IDENTITY,
    "core_identity": record.CORE_IDENTITY,
    "data_digest": record.DATA_DIGEST,
}
"""Frame column → run tag of what produced a run: a table never pools runs that differ in one.
Runs recorded before these tags existed have None (one more identity, older than any tagged)."""
COLUMNS = (
    "run_id",
    "status",
    "method",
    "dataset",
    "variant",
    "input_size",
    "seed",
    "run_key",
    "start_time",
    "config",
    "param_defaults",
    "metric_identities",
    *IDENTITY_COLUMNS,
)
NATIVE = "none"
"""The resize filter recorded for a run at its dataset's native size (nothing was resized)."""
METRICS = ("acc", "nmi_geometric", "nmi_arithmetic", "ari", "runtime_s")
"""Columns every frame has (NaN where a run lacks them); any other final score a run logged (AMI,
a plugin's metric, ...) is a column too, after these."""


def load_runs(client, experiment_id: str, run_keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Child runs of an experiment (optionally only those with the given run keys; without keys,
    runs of ``--dry-run`` smoke tests are left out).

    Where a run key has several runs (a rerun, a crash then a resume), the newest FINISHED one is
    kept, or else the newest of any status, so that every job counts once.
    """
    runs = search_all_runs(client, [experiment_id], f"tags.`{record.KIND}` = 'job'")
    wanted = None if run_keys is None else set(run_keys)
    rows = []
    for run in runs:
        tags, params = run.data.tags, run.data.params
        key = tags.get(record.RUN_KEY)
        if wanted is not None and key not in wanted:
            continue
        if wanted is None and tags.get(record.DRY_RUN) == "true":
            continue  # a smoke test's scores: only the sweep that made them shows them
        method = params.get("method", tags.get(record.METHOD))
        prefix = f"{method}."
        job = {
            "method": method,
            "dataset": params.get("dataset", tags.get(record.DATASET)),
            "dataset_variant": params.get("dataset_variant"),
            "input_size": params.get("input_size", 0),
            "seed": params.get("seed", -1),
            "resize_filter": params.get("resize_filter"),
            "channels": params.get("channels"),
            "params": {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)},
            "unkeyed": tags.get(record.UNKEYED, "").split(","),
        }
        rows.append(
            run_row(run.info.run_id, run.info.status, key, run.info.start_time, job, tags, run.data.metrics)
        )
    return tidy(rows)


def run_row(
    run_id: str,
    status: str,
    run_key: str | None,
    start_time: int | None,
    job: Mapping[str, Any],
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
) -> dict[str, Any]:
    """One run's row of the tidy frame, from its job (method, dataset, dataset_variant,
    input_size, seed, resize_filter, params, unkeyed), tags and final metrics: the one reader of a
    run record, for the MLflow store and the offline journal alike."""
    return {
        "run_id": run_id,
        "status": status,
        "method": job["method"],
        "dataset": job["dataset"],
        "variant": job.get("dataset_variant"),
        "input_size": int(job.get("input_size", 0)),
        "seed": int(job.get("seed", -1)),
        "run_key": run_key,
        "start_time": start_time,
        "config": configuration(
            job.get("resize_filter"), job.get("params", {}), job.get("unkeyed", ()), job.get("channels")
        ),
        "param_defaults": tags.get(record.PARAM_DEFAULTS),
        "metric_identities": tags.get(record.METRIC_IDENTITIES),
        **{column: tags.get(tag) or None for column, tag in IDENTITY_COLUMNS.items()},
        **{m: metrics.get(m, float("nan")) for m in METRICS},
        **{m: v for m, v in metrics.items() if not m.startswith(record.CURVE_PREFIX) and m not in METRICS},
    }


def configuration(
    resize_filter: Any, params: Mapping[str, Any], unkeyed: Iterable[str] = (), channels: Any = None
) -> str:
    """What besides method, dataset, size and seed sets a run apart: its resize filter, a grey
    conversion of colour images, and the method parameters that are part of the run key, as sorted
    JSON (values as MLflow logs them)."""
    as_logged = {k: "none" if v is None else str(v) for k, v in params.items() if k not in set(unkeyed)}
    grey = {"channels": str(channels)} if channels not in (None, "native") else {}
    return json.dumps({"resize_filter": str(resize_filter), **grey, **as_logged}, sort_keys=True)


def tidy(rows: Iterable[dict]) -> pd.DataFrame:
    """One row per run key from run records (:func:`run_row`), in report order.

    Where a run key has several runs, the newest FINISHED one is kept, or else the newest of any
    status. Each configuration of a method gets a name of its own in ``method``,
    ``method (param=value, ...)``, so that tables, figures and statistics never pool two of them;
    ``base_method`` keeps the plain name, ``non_defaults`` says what departs from the method's
    defaults. Shared by the MLflow reader above and the offline journal (:mod:`harness.journal`).
    """
    rows = list(rows)
    scores = dict.fromkeys(m for row in rows for m in row if m not in COLUMNS and m not in METRICS)
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *METRICS, *scores])
    if frame.empty:
        return frame.assign(base_method=pd.Series(dtype=object), non_defaults=pd.Series(dtype=object))
    frame["config"] = frame["config"].fillna("{}")
    frame["finished"] = frame["status"] == "FINISHED"
    frame = frame.sort_values(["finished", "start_time"]).drop_duplicates("run_key", keep="last")
    frame = frame.drop(columns="finished").assign(base_method=lambda f: f["method"])
    frame = pd.concat(
        [
            _name_configurations(method, group)
            for method, group in frame.groupby("method", sort=False, dropna=False)
        ],
        ignore_index=True,
    )
    return frame.sort_values(["dataset", "input_size", "method", "seed"]).reset_index(drop=True)


def _name_configurations(method: str, group: pd.DataFrame) -> pd.DataFrame:
    """Split one method's runs into configurations, named by the settings that differ: from the
    method's declared defaults (where the runs record them, ``harness.param_defaults``), so that a
    reduced budget is never a plain column, and between the configurations in the store.

    A run at the native size (filter ``"none"``) was not resized, so it belongs with any filter:
    it joins the configuration with its parameters and the one real filter that ran at other
    sizes, and the filter names a configuration only where two or more real filters occur.
    Otherwise ``--sizes 16`` over a native-16 and a resized dataset would split one method in
    two. Where several real filters ran, the native runs stay a configuration of their own
    (``resize_filter=none``): copying them into each would list one run several times.
    """
    configs = group["config"].map(json.loads)
    filters = configs.map(lambda c: str(c.get("resize_filter", NATIVE)))
    params = configs.map(
        lambda c: json.dumps({k: v for k, v in c.items() if k != "resize_filter"}, sort_keys=True)
    )
    real = {p: sorted(set(filters[(params == p) & (filters != NATIVE)])) for p in params.unique()}
    group = group.assign(
        _params=params,
        _filter=[
            real[p][0] if f == NATIVE and len(real[p]) == 1 else f
            for f, p in zip(filters, params, strict=True)
        ],
    )
    keys = [tuple(k) for k in group[["_params", "_filter"]].drop_duplicates().itertuples(index=False)]
    named = {(p, f): {**json.loads(p), "resize_filter": f} for p, f in keys}
    departs = {
        (p, f): _departures(json.loads(p), declared_defaults(group[group["_params"] == p])) for p, f in keys
    }
    fields = {k for d in departs.values() for k in d}
    if any("channels" in c for c in named.values()):  # a grey conversion is always named
        fields.add("channels")
        for c in named.values():
            c.setdefault("channels", "native")
    if len(keys) > 1:
        many_filters = len(set(filters) - {NATIVE}) > 1
        candidates = {k for c in named.values() for k in c if k != "resize_filter" or many_filters}
        fields |= {k for k in candidates if len({str(c.get(k)) for c in named.values()}) > 1}
    names = {
        key: f"{method} ({', '.join(f'{k}={named[key].get(k)}' for k in sorted(fields))})"
        if fields
        else method
        for key in keys
    }
    pairs = list(zip(group["_params"], group["_filter"], strict=True))
    group["method"] = [names[key] for key in pairs]
    group["non_defaults"] = [
        ", ".join(f"{k} {value} (default {default})" for k, (value, default) in sorted(departs[key].items()))
        for key in pairs
    ]
    return group.drop(columns=["_params", "_filter"])


def declared_defaults(runs: pd.DataFrame) -> dict[str, str]:
    """The parameter defaults the newest of ``runs`` recorded ({} where none recorded them)."""
    for text in runs.sort_values("start_time")["param_defaults"].dropna()[::-1]:
        try:
            defaults = json.loads(text)
        except ValueError:
            continue
        if isinstance(defaults, dict):
            return {str(k): "none" if v is None else str(v) for k, v in defaults.items()}
    return {}


def _departures(params: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Each keyed parameter whose value (as logged) is not its declared default: (value, default)."""
    return {k: (v, defaults[k]) for k, v in params.items() if k in defaults and v != defaults[k]}


def configurations(runs: pd.DataFrame, name: str) -> list[str]:
    """The configuration names ``name`` stands for: itself, or every configuration of a method."""
    if name in set(runs["method"]):
        return [name]
    return sorted(set(runs.loc[runs["base_method"] == name, "method"]))


def select(runs: pd.DataFrame, column: str, names: Iterable[str]) -> pd.DataFrame:
    """The runs whose ``column`` (``method`` or ``dataset``) is one of ``names``.

    A plain method name selects all of its configurations. Raises ``ValueError`` naming what the
    runs do hold where a name matches none of them.
    """
    keep = pd.Series(False, index=runs.index)
    for name in names:
        if column == "method":
            hit = runs["method"].isin(configurations(runs, name))
            known = set(runs["method"]) | set(runs["base_method"])
        else:
            hit = runs[column] == name
            known = set(runs[column])
        if not hit.any():
            raise ValueError(
                f"no runs of {column} {name!r} in this store{did_you_mean(name, sorted(known))}; "
                f"it has: {', '.join(sorted(known))}"
            )
        keep |= hit
    return runs[keep]


def split_names(text: str) -> list[str]:
    """Comma-separated names, split only at commas outside parentheses and brackets, so that a
    configuration name such as ``kmeans (max_iter=50, n_init=2)`` or an older identity's
    ``kmeans [method 3f2a91, data 07be1c]`` stays whole."""
    return [part.strip() for part in re.split(r",(?![^()\[\]]*[)\]])", text) if part.strip()]
