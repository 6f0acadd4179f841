"""Paper tables: rows are datasets (× input size where it varies), columns are methods.

Each cell is mean ± sample std over the finished seeds, with the seed count where it is short of
the full count, and "–" where every seed failed. Best per row and metric in bold, second
underlined where at least three methods compete (with two, every cell would be marked), ranked on
the unrounded means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from harness_reports.aggregate import summarize

METRIC_NAMES = {
    "acc": "ACC",
    "nmi_geometric": "NMI (geom.)",
    "nmi_arithmetic": "NMI (arith.)",
    "ari": "ARI",
    "runtime_s": "time (s)",
}
LOWER_IS_BETTER = {"runtime_s"}


def _row_label(row: pd.Series, sizes_vary: bool) -> str:
    return f"{row.dataset} {row.input_size}px" if sizes_vary else str(row.dataset)


def build_table(runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> pd.DataFrame:
    """A long frame, one row per (row label, metric, method), with mean, std, n, rank and mark.

    ``mark`` is 1 for the best, 2 for the second where at least three methods have a mean in the
    row, else NaN: what the tables bold and underline.
    """
    summary = summarize(runs, metrics)
    if summary.empty:
        return pd.DataFrame(
            columns=["row", "metric", "method", "mean", "std", "n", "n_total", "rank", "mark"]
        )
    sizes_vary = summary.groupby("dataset")["input_size"].nunique().max() > 1
    records = []
    for _, row in summary.iterrows():
        label = _row_label(row, sizes_vary)
        for m in metrics:
            records.append(
                {
                    "row": label,
                    "dataset": row.dataset,
                    "input_size": row.input_size,
                    "metric": m,
                    "method": row.method,
                    "mean": row[f"{m}_mean"],
                    "std": row[f"{m}_std"],
                    "n": row.n_finished,
                    "n_total": row.n_finished + row.n_failed,
                }
            )
    long = pd.DataFrame(records)
    long["rank"] = long["mark"] = float("nan")
    for (_, metric), group in long.groupby(["row", "metric"], sort=False):
        compared = group["mean"].notna().sum()
        if compared < 2:  # nothing to compare: no marks
            continue
        ascending = metric in LOWER_IS_BETTER
        rank = group["mean"].rank(ascending=ascending, method="min")
        long.loc[group.index, "rank"] = rank
        long.loc[group.index, "mark"] = rank.where((rank == 1) | ((rank == 2) & (compared >= 3)))
    return long


def _cell(mean: float, std: float, n: int, n_total: int, pm: str, digits: int, scale: float) -> str:
    if math.isnan(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    if not math.isnan(std):
        text += f" {pm} {std * scale:.{digits}f}"
    if n < n_total:
        text += f" (n={n})"
    return text


def wide(long: pd.DataFrame, pm: str = "±", digits: int = 3, scale: float = 1.0) -> pd.DataFrame:
    """Cells as strings; columns (metric, method), index = row label."""
    long = long.assign(
        cell=[
            _cell(
                r.mean,
                r.std,
                r.n,
                r.n_total,
                pm,
                1 if r.metric == "runtime_s" else digits,
                1.0 if r.metric == "runtime_s" else scale,
            )
            for r in long.itertuples()
        ],
        metric_name=long["metric"].map(lambda m: METRIC_NAMES.get(m, m)),
    )
    rows = list(dict.fromkeys(long["row"]))
    metrics = list(dict.fromkeys(long["metric_name"]))
    methods = sorted(dict.fromkeys(long["method"]))
    table = long.pivot(index="row", columns=["metric_name", "method"], values="cell")
    columns = pd.MultiIndex.from_product([metrics, methods])
    return table.reindex(index=rows, columns=columns).fillna("–")


def _ranks(long: pd.DataFrame) -> pd.DataFrame:
    long = long.assign(metric_name=long["metric"].map(lambda m: METRIC_NAMES.get(m, m)))
    return long.pivot(index="row", columns=["metric_name", "method"], values="mark")


def _clustered(runs: pd.DataFrame) -> str:
    """What was clustered, from the runs' recorded dataset variant: only datasets recorded as
    ``train+test`` cluster the two splits together (digits and COIL-20 have no split)."""
    if "variant" not in runs:
        return ""
    variants = runs.dropna(subset=["variant"]).groupby("variant", sort=True)["dataset"].unique()
    if variants.empty:
        return ""

    def phrase(variant: str) -> str:
        if variant == "train+test":
            return "the train and test splits together"
        if variant.startswith("all"):
            return "all samples" + variant.removeprefix("all")
        return f"the {variant} split"

    if len(variants) == 1:
        return f", clustering {phrase(variants.index[0])}"
    return ", clustering " + " and ".join(
        f"{phrase(v)} ({', '.join(sorted(datasets))})" for v, datasets in variants.items()
    )


def caption(runs: pd.DataFrame, metrics: Sequence[str], second: bool = True) -> str:
    """The protocol in a sentence or three; ``second``: whether any cell is underlined."""
    seeds = runs.groupby(["dataset", "input_size", "method"])["seed"].nunique()
    low, high = (int(seeds.min()), int(seeds.max())) if len(seeds) else (0, 0)
    n = str(high) if low == high else f"{low}--{high}"
    parts = [METRIC_NAMES.get(m, m) for m in metrics]
    nmi = ""
    if "nmi_geometric" in metrics:
        nmi = " NMI is normalised by the geometric mean of the entropies, as in the 2016--2019 papers."
    elif "nmi_arithmetic" in metrics:
        nmi = " NMI is normalised by the arithmetic mean of the entropies (scikit-learn's default)."
    return (
        f"{', '.join(parts)}: mean $\\pm$ sample standard deviation over {n} seeds per cell"
        f"{_clustered(runs)}.{nmi} Best in bold{', second underlined' if second else ''}; "
        f"(n=k) marks cells where only k seeds finished, -- where none did."
    )


_LATEX_SPECIALS = str.maketrans(
    {c: f"\\{c}" for c in "&%$#_{}"}
    | {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
)


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally (the ten special characters escaped)."""
    return str(text).translate(_LATEX_SPECIALS)


def to_latex(
    runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric"), label: str = "tab:results"
) -> str:
    """A booktabs ``table`` ready to ``\\input`` (needs ``\\usepackage{booktabs}``)."""
    long = build_table(runs, metrics)
    table = wide(long, pm="$\\pm$")
    table = table.map(lambda s: "--" if s == "–" else s)
    ranks = _ranks(long).reindex(index=table.index, columns=table.columns)

    def style(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            [
                [
                    "textbf:--rwrap;" if r == 1 else "underline:--rwrap;" if r == 2 else ""
                    for r in ranks.loc[idx]
                ]
                for idx in frame.index
            ],
            index=frame.index,
            columns=frame.columns,
        )

    # labels such as "kmeans (max_iter=50, n_init=2)" hold LaTeX specials; the cells are LaTeX already
    styler = table.style.apply(style, axis=None).format_index(escape="latex", axis=0)
    styler = styler.format_index(escape="latex", axis=1, level=list(range(table.columns.nlevels)))
    styler.index.name = None
    return styler.to_latex(
        hrules=True,
        # dataset names appear in the caption's "clustering ... (my_data)": escape them there too
        caption=caption(
            runs.assign(dataset=runs["dataset"].map(latex_escape)),
            metrics,
            second=bool((long["mark"] == 2).any()),
        ),
        label=label,
        position="t",
        position_float="centering",
        multicol_align="c",
        column_format="l" + "c" * table.shape[1],
    )


def to_markdown(runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> str:
    long = build_table(runs, metrics)
    table = wide(long)
    ranks = _ranks(long).reindex(index=table.index, columns=table.columns)
    marked = table.copy()
    for col in table.columns:
        for idx in table.index:
            r = ranks.at[idx, col]
            if r == 1:
                marked.at[idx, col] = f"**{table.at[idx, col]}**"
            elif r == 2:
                marked.at[idx, col] = f"<u>{table.at[idx, col]}</u>"
    marked.columns = [f"{metric} {method}" for metric, method in marked.columns]
    marked.index.name = "dataset"
    return (
        marked.to_markdown()
        + "\n\n"
        + caption(runs, metrics, second=bool((long["mark"] == 2).any()))
        .replace("$\\pm$", "±")
        .replace("--", "–")
        + "\n"
    )


def to_csv(runs: pd.DataFrame) -> str:
    """Tidy: one row per run, every status, for anything the tables do not cover."""
    return runs.to_csv(index=False)
