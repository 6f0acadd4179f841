"""Mean ± sample standard deviation over seeds, counting only the runs that finished."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

GROUP = ("dataset", "input_size", "method")


def summarize(runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> pd.DataFrame:
    """One row per (dataset, input size, method): ``<metric>_mean``, ``<metric>_std``, seed counts.

    A failed run is never a zero in an average: it is left out of the statistics and counted in
    ``n_failed``. The standard deviation is the sample one (ddof = 1), NaN for a single seed.
    """
    columns = [*GROUP, "n_finished", "n_failed"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    done = runs["status"] == "FINISHED"
    rows = []
    for key, group in runs.groupby(list(GROUP), sort=True):
        ok = group[done.loc[group.index]]
        row = dict(zip(GROUP, key, strict=True))
        row["n_finished"] = len(ok)
        row["n_failed"] = len(group) - len(ok)
        for m in metrics:
            row[f"{m}_mean"] = ok[m].mean() if len(ok) else float("nan")
            row[f"{m}_std"] = ok[m].std(ddof=1) if len(ok) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
