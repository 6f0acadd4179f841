"""Paired comparisons over seeds, and average ranks across datasets."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from scipy.stats import wilcoxon

from harness_reports.aggregate import summarize
from harness_reports.identities import split_identities
from harness_reports.tables import LOWER_IS_BETTER


def paired_wilcoxon(runs: pd.DataFrame, method_a: str, method_b: str, metric: str = "acc") -> pd.DataFrame:
    """Per (dataset, input size): the Wilcoxon signed-rank p-value of ``a`` against ``b``.

    Pairs are the seeds both methods finished. Beside the paired means it tests, each side's table
    mean (``<name>_table``, over its finished seeds of the row's seed set, as the table shows it)
    and ``<name>_n`` (``k/N``), computed from the same runs as the table. With fewer than two pairs, or all differences zero, the p-value is NaN. ``min_p`` is the
    smallest p-value the exact two-sided test can give with that many pairs (2 / 2**n: 0.25 for
    3 pairs), so that a p-value at that floor is not read as evidence. Tied pairs (difference 0)
    are dropped by the test, so they do not count towards n there.
    """
    runs, _ = split_identities(runs)
    table = summarize(runs, [metric]).set_index(["dataset", "input_size", "method"])
    done = runs[runs["status"] == "FINISHED"]
    rows = []
    for (dataset, size), group in done.groupby(["dataset", "input_size"], sort=True):
        cells = {m: table.loc[(dataset, size, m)] if (dataset, size, m) in table.index else None
                 for m in (method_a, method_b)}  # fmt: skip
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
                **{
                    column: value
                    for name, cell in cells.items()
                    for column, value in (
                        (f"{name}_table", float("nan") if cell is None else cell[f"{metric}_mean"]),
                        (f"{name}_n", "0" if cell is None else f"{int(cell.n_finished)}/{int(cell.n_seeds)}"),
                    )
                },
                "n_pairs": len(seeds),
                f"{method_a}_mean": a.loc[seeds].mean() if len(seeds) else float("nan"),
                f"{method_b}_mean": b.loc[seeds].mean() if len(seeds) else float("nan"),
                "p_value": p,
                "min_p": min_attainable_p(int((diff != 0).sum())),
            }
        )
    return pd.DataFrame(rows)


def min_attainable_p(n_pairs: int) -> float:
    """The smallest two-sided p-value of an exact Wilcoxon signed-rank test on ``n_pairs`` pairs:
    every difference of one sign, probability 2 / 2**n."""
    return min(1.0, 2.0 / 2**n_pairs) if n_pairs >= 1 else float("nan")


def comparison_text(runs: pd.DataFrame, method_a: str, method_b: str, metrics: Sequence[str]) -> str:
    """The ``report --compare`` section: per metric, the paired test and the average ranks, each
    under a heading, with a warning where too few seeds make a small p-value impossible."""
    runs, _ = split_identities(runs)
    lines = []
    for metric in metrics:
        test = paired_wilcoxon(runs, method_a, method_b, metric)
        lines.append(f"Wilcoxon signed-rank, {method_a} vs {method_b} on {metric} (paired seeds):")
        lines.append(_shown(test, method_a, method_b).to_string(index=False))
        lines.append(
            "table: the table's cell (mean over its finished seeds, n=k of the row's N); paired: the mean "
            "over the n_pairs seeds both finished, which the test compares"
        )
        few = test[test["min_p"] > 0.05]
        if len(few):
            lines.append(
                f"note: with {', '.join(map(str, sorted(set(few['n_pairs']))))} paired seed(s) the exact test "
                "cannot go below min_p (at 3 untied pairs 0.25, at 5 pairs 0.0625): a p-value near it is "
                "no evidence either way; run at least 6 seeds for p < 0.05 to be possible."
            )
        ranks = average_ranks(runs, metric)
        rows = runs[runs["status"] == "FINISHED"].groupby(["dataset", "input_size"]).ngroups
        lines.append("")
        lines.append(f"Average rank on {metric} over {rows} dataset x size row(s) (1 = best):")
        lines.append(ranks.rename_axis("method").to_frame("average rank").to_string())
        lines.append("")
    return "\n".join(lines)


def average_ranks(runs: pd.DataFrame, metric: str = "acc") -> pd.Series:
    """Mean rank of each method over (dataset, input size) rows, ranked on mean ``metric`` (1 = best)."""
    summary = summarize(runs, [metric])
    means = summary.set_index(["dataset", "input_size", "method"])[f"{metric}_mean"].unstack("method")
    ranks = means.rank(axis=1, ascending=metric in LOWER_IS_BETTER, method="average")
    return ranks.mean(axis=0).sort_values().rename(f"average rank ({metric})")


def _shown(test: pd.DataFrame, method_a: str, method_b: str) -> pd.DataFrame:
    """The test as printed: per side its table mean with (n=k/N) next to its paired mean."""
    mean = "{:.3f}".format  # as the table prints it
    shown = test[["dataset", "input_size"]].copy()
    for name in (method_a, method_b):
        shown[f"{name} table"] = [
            f"{mean(v)} (n={n})" for v, n in zip(test[f"{name}_table"], test[f"{name}_n"], strict=True)
        ]
        shown[f"{name} paired"] = test[f"{name}_mean"].map(mean)
    shown["n_pairs"] = test["n_pairs"]
    for column in ("p_value", "min_p"):
        shown[column] = test[column].map("{:.4g}".format)
    return shown
