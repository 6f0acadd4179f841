"""Paper tables: rows are datasets (× input size where it varies), columns are methods.

A row's seed set is the seeds any of its columns attempted; each cell is mean ± sample std over
its finished runs of that set, marked ``(n=k/N)`` where it is short of it, and "–" where none
finished. A cell holds one implementation identity (:mod:`harness_reports.identities`). Best per row and metric in bold, second
underlined where at least three methods compete (with two, every cell would be marked), ranked on
the unrounded means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from harness.metrics import BUILTIN
from harness.types import MetricSpec
from harness_reports.aggregate import row_seeds, summarize
from harness_reports.identities import split_identities

METRIC_NAMES = {spec.name: spec.label or spec.name for spec in BUILTIN} | {"runtime_s": "time (s)"}
"""Column headers by metric name; a plugin's metrics join through :func:`register_metrics`."""
LOWER_IS_BETTER = {spec.name for spec in BUILTIN if not spec.higher_is_better} | {"runtime_s"}


def register_metrics(specs: Iterable[MetricSpec]) -> None:
    """Let tables name and rank the metrics of the loaded plugins (header, which way is better)."""
    for spec in specs:
        METRIC_NAMES[spec.name] = spec.label or spec.name
        if not spec.higher_is_better:
            LOWER_IS_BETTER.add(spec.name)


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
                    "n_total": row.n_seeds,
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
        text += f" (n={n}/{n_total})"
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


def seed_ranges(seeds: Sequence[int]) -> str:
    """``0--5``, ``0, 1, 7--9``: a seed set as LaTeX writes it (runs of three or more as ranges)."""
    out: list[str] = []
    ordered = sorted(set(seeds))
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            run = ordered[start:i]
            out += [f"{run[0]}--{run[-1]}"] if len(run) >= 3 else [str(s) for s in run]
            start = i
    return ", ".join(out)


def _seed_sets(runs: pd.DataFrame) -> str:
    sets = row_seeds(runs)
    if not sets:
        return "the finished seeds"
    if len(set(sets.values())) == 1:
        seeds = next(iter(sets.values()))
        word = "seed" if len(seeds) == 1 else "seeds"
        return f"the finished runs of {word} {seed_ranges(seeds)} ({len(seeds)} {word}), the same in every column"
    sizes_vary = runs.groupby("dataset")["input_size"].nunique().max() > 1
    rows = "; ".join(
        f"{f'{dataset} {size}px' if sizes_vary else dataset}: {seed_ranges(seeds)}"
        for (dataset, size), seeds in sets.items()
    )
    return f"the finished runs of each row's seeds, the same in every column of a row ({rows})"


def _protocols(runs: pd.DataFrame) -> str:
    """Each column whose settings depart from its method's declared defaults, and how."""
    if "non_defaults" not in runs:
        return ""
    departing = runs[runs["non_defaults"].fillna("") != ""]
    if "older_identity" in departing:  # an older identity of a configuration: the same settings
        departing = departing[departing["older_identity"].fillna("") == ""]
    departing = departing.drop_duplicates("method").sort_values("method")
    if departing.empty:
        return ""
    listed = "; ".join(f"{r.method}: {r.non_defaults}" for r in departing.itertuples())
    return f" Settings that depart from the methods' defaults: {listed}."


_SHORT = " (n=k/N) marks cells where only k of the row's N seeds finished, -- where none did."


def _short(long: pd.DataFrame) -> bool:
    """Whether any cell of a :func:`build_table` frame is over fewer seeds than its row's."""
    return bool((long["n"] < long["n_total"]).any())


def caption(
    runs: pd.DataFrame, metrics: Sequence[str], second: bool = True, left_out: int = 0, short: bool = True
) -> str:
    """The protocol in a few sentences; ``second``: whether any cell is underlined; ``left_out``:
    how many runs of older identities the table does not show; ``short``: whether any cell is over
    fewer seeds than its row's (only then does the caption explain the ``(n=k/N)`` mark)."""
    parts = [METRIC_NAMES.get(m, m) for m in metrics]
    nmi = ""
    if "nmi_geometric" in metrics:
        nmi = " NMI is normalised by the geometric mean of the entropies, as in the 2016--2019 papers."
    elif "nmi_arithmetic" in metrics:
        nmi = " NMI is normalised by the arithmetic mean of the entropies (scikit-learn's default)."
    older = ""
    if left_out:
        older += f" {left_out} run(s) of older implementations or data are left out."
    if "older_identity" in runs and (runs["older_identity"].fillna("") != "").any():
        older += " A name in brackets is an older identity of that configuration, by the digest that differs."
    return (
        f"{', '.join(parts)}: mean $\\pm$ sample standard deviation over {_seed_sets(runs)}"
        f"{_clustered(runs)}.{nmi} Best in bold{', second underlined' if second else ''}."
        f"{_SHORT if short else ''}{_protocols(runs)}{older}"
    )


_LATEX_SPECIALS = str.maketrans(
    {c: f"\\{c}" for c in "&%$#_{}"}
    | {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
)


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally (the ten special characters escaped)."""
    return str(text).translate(_LATEX_SPECIALS)


def to_latex(
    runs: pd.DataFrame,
    metrics: Sequence[str] = ("acc", "nmi_geometric"),
    label: str = "tab:results",
    left_out: int = 0,
) -> str:
    """A booktabs ``table`` ready to ``\\input`` (needs ``\\usepackage{booktabs}``); ``left_out``:
    runs of older identities already left out of ``runs``, for the caption."""
    runs, older = split_identities(runs)
    left_out += len(older)
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
        # dataset and column names appear in the caption ("clustering ... (my_data)", the settings
        # that depart from the defaults): escape them there too
        caption=caption(
            runs.assign(
                **{
                    c: runs[c].map(latex_escape, na_action="ignore")
                    for c in ("dataset", "method", "non_defaults")
                    if c in runs
                }
            ),
            metrics,
            second=bool((long["mark"] == 2).any()),
            left_out=left_out,
            short=_short(long),
        ),
        label=label,
        position="t",
        position_float="centering",
        multicol_align="c",
        column_format="l" + "c" * table.shape[1],
    )


def to_markdown(
    runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric"), left_out: int = 0
) -> str:
    runs, older = split_identities(runs)
    left_out += len(older)
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
        + caption(
            runs, metrics, second=bool((long["mark"] == 2).any()), left_out=left_out, short=_short(long)
        )
        .replace("$\\pm$", "±")
        .replace("--", "–")
        + "\n"
    )


def to_csv(runs: pd.DataFrame) -> str:
    """Tidy: one row per run, every status, with its identity, for anything the tables do not
    cover (the runs the table shows: each cell's newest identity unless older ones are named)."""
    return split_identities(runs)[0].to_csv(index=False)
