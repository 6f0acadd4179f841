"""Per cell the median over its finished seeds and a bootstrap 95 % interval of it: what a mean ±
std hides when one seed of a deep method collapses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from harness_reports.aggregate import GROUP, summarize
from harness_reports.identities import split_identities
from harness_reports.tables import METRIC_NAMES

CONFIDENCE = 0.95
RESAMPLES = 9999
SEED = 0
"""The resampling is seeded, so that a report says the same each time it is made."""


def cell_intervals(
    runs: pd.DataFrame,
    metrics: Sequence[str] = ("acc", "nmi_geometric"),
    confidence: float = CONFIDENCE,
    n_resamples: int = RESAMPLES,
) -> pd.DataFrame:
    """One row per (metric, dataset, input size, column): ``median`` of the finished seeds, and
    ``ci_low``/``ci_high``, SciPy's percentile bootstrap interval of the median (NaN below two
    seeds), with ``n`` finished of the row's ``n_seeds``, as the table counts them."""
    runs, _ = split_identities(runs)
    counts = summarize(runs, []).set_index(list(GROUP))[["n_finished", "n_seeds"]]
    done = runs[runs["status"] == "FINISHED"]
    rows = []
    for metric in metrics:
        for key, group in done.groupby(list(GROUP), sort=True):
            values = group[metric].dropna().to_numpy(dtype=float)
            low = high = float("nan")
            if len(values) >= 2:
                result = bootstrap(
                    (values,),
                    np.median,
                    confidence_level=confidence,
                    n_resamples=n_resamples,
                    method="percentile",
                    rng=np.random.default_rng(SEED),
                )
                low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
            rows.append(
                {
                    "metric": metric,
                    **dict(zip(GROUP, key, strict=True)),
                    "n": len(values),
                    "n_seeds": int(counts.loc[key, "n_seeds"]),
                    "median": float(np.median(values)) if len(values) else float("nan"),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    columns = ["metric", *GROUP, "n", "n_seeds", "median", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


def intervals_text(cells: pd.DataFrame, confidence: float = CONFIDENCE) -> str:
    """The cells as ``--stats`` prints them, one block per metric."""
    lines = [
        f"Per cell: median over the finished seeds and its {confidence:.0%} bootstrap interval "
        f"(scipy.stats.bootstrap, percentile, {RESAMPLES} resamples, seeded)"
    ]
    for metric, group in cells.groupby("metric", sort=False):
        shown = pd.DataFrame(
            {
                "dataset": group["dataset"],
                "size": group["input_size"].astype(int),
                "column": group["method"],
                "median": group["median"].map("{:.3f}".format),
                "95% interval": [
                    "–" if np.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"
                    for lo, hi in zip(group["ci_low"], group["ci_high"], strict=True)
                ],
                "n": [f"{n}/{t}" for n, t in zip(group["n"], group["n_seeds"], strict=True)],
            }
        )
        lines += ["", f"{METRIC_NAMES.get(metric, metric)}:", shown.to_string(index=False)]
    few = cells[cells["n"] < 10]
    if len(few):
        lines.append(
            f"note: {len(few)} cell(s) have fewer than 10 seeds: a bootstrap interval of a median "
            "is coarse then (with 3 seeds it spans about their range), and none is given below 2"
        )
    return "\n".join(lines)
