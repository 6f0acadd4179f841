"""Mean ± sample standard deviation over a row's seeds, counting only the runs that finished."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harness_reports.identities import split_identities

ROW = ("dataset", "input_size")
GROUP = (*ROW, "method")


def row_seeds(runs: pd.DataFrame) -> dict[tuple[str, int], tuple[int, ...]]:
    """Each (dataset, input size) row's seed set: the seeds any configuration in it attempted.

    Every cell of the row is over its finished runs of this set, so the columns of a row compare
    the same seeds, or say how many of them they miss.
    """
    return {
        (dataset, int(size)): tuple(sorted(int(s) for s in set(group["seed"])))
        for (dataset, size), group in runs.groupby(list(ROW), sort=True)
    }


def summarize(runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> pd.DataFrame:
    """One row per (dataset, input size, method): ``<metric>_mean``, ``<metric>_std``, seed counts.

    ``n_seeds`` is the size of the row's seed set (:func:`row_seeds`), ``n_finished`` how many of
    them the cell finished, ``n_failed`` how many of its runs did not. A failed run is never a zero
    in an average: it is left out of the statistics. The standard deviation is the sample one
    (ddof = 1), NaN for a single seed. Only each cell's newest identity counts.
    """
    columns = [*GROUP, "n_finished", "n_failed", "n_seeds"]
    columns += [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    runs, _ = split_identities(runs)
    if runs.empty:
        return pd.DataFrame(columns=columns)
    seeds = row_seeds(runs)
    rows = []
    for key, group in runs.groupby(list(GROUP), sort=True):
        ok = group[group["status"] == "FINISHED"]
        row = dict(zip(GROUP, key, strict=True))
        row["n_finished"] = len(ok)
        row["n_failed"] = len(group) - len(ok)
        row["n_seeds"] = len(seeds[(key[0], int(key[1]))])
        for m in metrics:
            row[f"{m}_mean"] = ok[m].mean() if len(ok) else float("nan")
            row[f"{m}_std"] = ok[m].std(ddof=1) if len(ok) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
