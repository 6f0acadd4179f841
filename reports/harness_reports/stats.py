"""Paired comparisons over seeds, and average ranks across datasets."""

from __future__ import annotations

import pandas as pd
from scipy.stats import wilcoxon


def paired_wilcoxon(runs: pd.DataFrame, method_a: str, method_b: str, metric: str = "acc") -> pd.DataFrame:
    """Per (dataset, input size): the Wilcoxon signed-rank p-value of ``a`` against ``b``.

    Pairs are the seeds both methods finished (the harness gives every method the same seeds).
    With fewer than two pairs, or all differences zero, the p-value is NaN.
    """
    done = runs[runs["status"] == "FINISHED"]
    rows = []
    for (dataset, size), group in done.groupby(["dataset", "input_size"], sort=True):
        a = group[group["method"] == method_a].set_index("seed")[metric]
        b = group[group["method"] == method_b].set_index("seed")[metric]
        seeds = a.index.intersection(b.index)
        diff = (a.loc[seeds] - b.loc[seeds]).to_numpy()
        p = float("nan")
        if len(seeds) >= 2 and (diff != 0).any():
            p = float(wilcoxon(a.loc[seeds], b.loc[seeds]).pvalue)
        rows.append(
            {
                "dataset": dataset,
                "input_size": size,
                "n_pairs": len(seeds),
                f"{method_a}_mean": a.loc[seeds].mean() if len(seeds) else float("nan"),
                f"{method_b}_mean": b.loc[seeds].mean() if len(seeds) else float("nan"),
                "p_value": p,
            }
        )
    return pd.DataFrame(rows)


def average_ranks(runs: pd.DataFrame, metric: str = "acc") -> pd.Series:
    """Mean rank of each method over (dataset, input size) rows, ranked on mean ``metric`` (1 = best)."""
    done = runs[runs["status"] == "FINISHED"]
    means = done.groupby(["dataset", "input_size", "method"])[metric].mean().unstack("method")
    ranks = means.rank(axis=1, ascending=metric == "runtime_s", method="average")
    return ranks.mean(axis=0).sort_values().rename(f"average rank ({metric})")
