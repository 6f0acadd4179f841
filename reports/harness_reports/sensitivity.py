"""Which method parameters a store swept: the runs of one method at several values of one parameter.

Configurations are told apart by their keyed parameters (:func:`harness_reports.runs.configuration`);
a parameter swept is one whose logged value differs between the finished runs of one method. Its
sensitivity figure puts those values on the x axis; the method's other settings, where they differ
too, and the input size, where a dataset ran at several, split the runs into lines of their own, so
that a line never mixes two settings of something else.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness_reports.runs import declared_defaults


@dataclass(frozen=True)
class Sweep:
    """One parameter of one method at several values, with the runs that show it.

    ``runs`` holds the method's finished runs with three more columns: ``value`` (the parameter's
    value as logged), ``line`` (what else sets the run apart: the other settings that vary and the
    input size, ``""`` where nothing does) and ``line_order`` (by those settings, then by size).
    ``values`` are in axis order: ascending where all are numbers.
    """

    method: str
    param: str
    values: tuple[str, ...]
    numeric: bool
    default: str | None
    runs: pd.DataFrame


def _number(text: str) -> float | None:
    if text.strip().lower() in {"true", "false", "nan", "inf", "-inf"}:
        return None  # a flag or a placeholder, not a point on a number line
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def sweeps(runs: pd.DataFrame) -> list[Sweep]:
    """Every (method, parameter) with two or more values among the finished runs, by method then
    parameter name."""
    done = runs[runs["status"] == "FINISHED"]
    found = []
    for method, group in done.groupby("base_method", sort=True):
        settings = (
            group["config"]
            .map(json.loads)
            .map(lambda c: {k: str(v) for k, v in c.items() if k != "resize_filter"})
        )
        table = pd.DataFrame(list(settings), index=group.index).fillna("none")
        for param in sorted(table.columns):
            if table[param].nunique() < 2:
                continue
            found.append(_sweep(str(method), param, group, table))
    return found


def _sweep(method: str, param: str, group: pd.DataFrame, table: pd.DataFrame) -> Sweep:
    values = list(dict.fromkeys(table[param]))
    numbers = {v: _number(v) for v in values}
    numeric = all(n is not None for n in numbers.values())
    values = sorted(values, key=lambda v: numbers[v] or 0.0) if numeric else sorted(values)
    others = [c for c in table.columns if c != param and table[c].nunique() > 1]
    settings = pd.Series(
        [", ".join(f"{c}={table.at[i, c]}" for c in others) for i in group.index], group.index
    )
    sizes_vary = group.groupby("dataset")["input_size"].transform("nunique") > 1
    size = group["input_size"].astype(str) + " px"
    line = (settings + np.where(settings != "", ", ", "") + size).where(sizes_vary, settings)
    return Sweep(
        method=method,
        param=param,
        values=tuple(values),
        numeric=numeric,
        default=declared_defaults(group).get(param),
        runs=group.assign(
            value=table[param], line=line, line_order=list(zip(settings, group["input_size"], strict=True))
        ),
    )
