"""Many columns at once (Demšar 2006): the Friedman test over blocks, the post-hoc Wilcoxon–Holm
and Nemenyi tests, average ranks and an effect size for every pair.

Each column of the table (a method, or a configuration of one) is a "method" here. A block is a
dataset × size row, its value per column the table's cell mean; or, where columns ran the same
seeds, one seed of a row (dataset × size × seed), which gives more blocks but blocks that share
their data, so not the independent ones the tests assume. Only complete blocks (every column
finished) enter a test; the others are counted and named.

The tests come from SciPy (``friedmanchisquare``, ``wilcoxon``, ``studentized_range``) and
scikit-posthocs (``posthoc_nemenyi_friedman``, ``posthoc_wilcoxon`` with Holm's adjustment from
statsmodels); this module only lays the runs out as blocks and says what the numbers can mean.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy.stats import friedmanchisquare, studentized_range, wilcoxon

from harness_reports.aggregate import ROW, summarize
from harness_reports.identities import split_identities
from harness_reports.stats import min_attainable_p
from harness_reports.tables import LOWER_IS_BETTER, METRIC_NAMES

ALPHA = 0.05
ROWS = "dataset × size"
SEEDS = "dataset × size × seed"
SEED_BLOCK = (*ROW, "seed")
EFFECT_SIZE = "matched-pairs rank-biserial r"


@dataclass(frozen=True)
class Analysis:
    """The tests of one metric over one kind of block.

    ``scores``: complete blocks × columns; ``left_out``: the incomplete blocks (NaN where a column
    has no finished value); ``ranks``: average rank per column over ``scores`` (1 = best), best
    first; ``friedman``: (statistic, p) or None where no test can be made; ``friedman_min_p``: the
    smallest p the Friedman test can give with these blocks (every block ranking the columns
    alike); ``critical_difference``: Nemenyi's at ``ALPHA``; ``nemenyi`` and ``wilcoxon_holm``:
    p-value matrices; ``pairs``: one row per pair, the better-ranked column first; ``notes``: what
    the numbers cannot mean with so few blocks or columns.
    """

    metric: str
    blocks: str
    scores: pd.DataFrame
    left_out: pd.DataFrame
    ranks: pd.Series
    friedman: tuple[float, float] | None = None
    friedman_min_p: float = float("nan")
    critical_difference: float = float("nan")
    nemenyi: pd.DataFrame = field(default_factory=pd.DataFrame)
    wilcoxon_holm: pd.DataFrame = field(default_factory=pd.DataFrame)
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: tuple[str, ...] = ()

    @property
    def n_blocks(self) -> int:
        return len(self.scores)

    @property
    def tested(self) -> bool:
        """Whether there were blocks and columns enough for the post-hoc tests."""
        return not self.pairs.empty


# ---------------------------------------------------------------------------------------- blocks


def block_scores(runs: pd.DataFrame, metric: str, blocks: str = ROWS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(complete, incomplete)`` blocks × columns of ``metric``.

    ``ROWS``: a block per dataset × size, valued by each cell's mean over its finished seeds, as
    the table prints it. ``SEEDS``: a block per dataset × size × seed that any column attempted,
    valued by each column's finished run of that seed.
    """
    runs, _ = split_identities(runs)
    columns = sorted(set(runs["method"]))
    if blocks == ROWS:
        summary = summarize(runs, [metric])
        scores = summary.pivot(index=list(ROW), columns="method", values=f"{metric}_mean")
    elif blocks == SEEDS:
        done = runs[runs["status"] == "FINISHED"]
        scores = done.pivot(index=list(SEED_BLOCK), columns="method", values=metric)
        attempted = pd.MultiIndex.from_frame(runs[list(SEED_BLOCK)].drop_duplicates())
        scores = scores.reindex(attempted.sort_values())
    else:
        raise ValueError(f"blocks: expected {ROWS!r} or {SEEDS!r}, got {blocks!r}")
    scores = scores.reindex(columns=columns).astype(float)
    scores.columns.name = "method"
    complete = scores.notna().all(axis=1)
    return scores[complete], scores[~complete]


def block_ranks(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each block's ranks of the columns, 1 = best (ties share the average rank)."""
    return scores.rank(axis=1, ascending=metric in LOWER_IS_BETTER, method="average")


# ----------------------------------------------------------------------------------------- tests


def friedman_min_p(n_blocks: int, n_columns: int) -> float:
    """The smallest p-value the Friedman test gives with ``n_blocks`` blocks of ``n_columns``:
    every block ranking the columns alike (SciPy's p of such a table)."""
    if n_blocks < 2 or n_columns < 3:
        return float("nan")
    alike = np.tile(np.arange(n_columns, dtype=float), (n_blocks, 1))
    return float(friedmanchisquare(*alike.T).pvalue)


def nemenyi_critical_difference(n_blocks: int, n_columns: int, alpha: float = ALPHA) -> float:
    """How far apart two average ranks must be for Nemenyi's test to separate them at ``alpha``:
    q_alpha * sqrt(k (k + 1) / (6 N)), q_alpha the studentized range quantile over sqrt(2)."""
    q = studentized_range.ppf(1 - alpha, n_columns, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(n_columns * (n_columns + 1) / (6 * n_blocks)))


def rank_biserial(a: np.ndarray, b: np.ndarray) -> float:
    """The matched-pairs rank-biserial correlation of ``a`` against ``b`` (Kerby 2014): the sum of
    the Wilcoxon signed ranks of the positive differences minus that of the negative ones, over
    their total; +1 when ``a`` is higher in every pair, 0 when neither side dominates. Zero
    differences are dropped, as the Wilcoxon test drops them; NaN when all are zero."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = int((d != 0).sum())
    if n == 0:
        return float("nan")
    total = n * (n + 1) / 2
    # T+ (the statistic is the same whatever the p-value method; "approx" skips a permutation test)
    positive = float(wilcoxon(d, alternative="greater", zero_method="wilcox", method="approx").statistic)
    return (2 * positive - total) / total


def analyse(runs: pd.DataFrame, metric: str, blocks: str = ROWS, alpha: float = ALPHA) -> Analysis:
    """Friedman, Nemenyi and Wilcoxon–Holm on ``metric`` over ``blocks`` (``ROWS`` or ``SEEDS``)."""
    scores, left_out = block_scores(runs, metric, blocks)
    n, k = scores.shape
    ranks = block_ranks(scores, metric).mean(axis=0).sort_values().rename("average rank")
    base = Analysis(metric, blocks, scores, left_out, ranks)
    notes = _coverage_notes(base)
    if k < 2 or n < 2:
        why = (
            "one column: nothing to compare" if k < 2 else f"{n} complete block(s): no test can say anything"
        )
        return Analysis(metric, blocks, scores, left_out, ranks, notes=(*notes, why))
    friedman = None
    if k >= 3:
        with warnings.catch_warnings():  # every block all ties: 0/0, NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            result = friedmanchisquare(*(scores[c].to_numpy() for c in scores.columns))
        friedman = (float(result.statistic), float(result.pvalue))
    nemenyi = sp.posthoc_nemenyi_friedman(scores)
    long = scores.melt(value_name="value", ignore_index=False)  # blocks in the same order per column
    with warnings.catch_warnings():  # a pair equal in every block: SciPy's 0/0, p = 1
        warnings.simplefilter("ignore", RuntimeWarning)
        holm = sp.posthoc_wilcoxon(long, val_col="value", group_col="method", p_adjust="holm")
    order = list(ranks.index)
    nemenyi, holm = (m.reindex(index=order, columns=order) for m in (nemenyi, holm))
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0  # differences as "better than"
    rows = []
    for a, b in itertools.combinations(order, 2):
        d = sign * (scores[a] - scores[b]).to_numpy()
        rows.append(
            {
                "metric": metric,
                "blocks": blocks,
                "a": a,
                "b": b,
                "rank_a": ranks[a],
                "rank_b": ranks[b],
                "wins": int((d > 0).sum()),
                "ties": int((d == 0).sum()),
                "losses": int((d < 0).sum()),
                "rank_biserial": rank_biserial(d, np.zeros_like(d)),
                "p_wilcoxon_holm": float(holm.at[a, b]),
                "p_nemenyi": float(nemenyi.at[a, b]),
            }
        )
    analysis = Analysis(
        metric,
        blocks,
        scores,
        left_out,
        ranks,
        friedman=friedman,
        friedman_min_p=friedman_min_p(n, k),
        critical_difference=nemenyi_critical_difference(n, k, alpha),
        nemenyi=nemenyi,
        wilcoxon_holm=holm,
        pairs=pd.DataFrame(rows),
    )
    return replace(analysis, notes=(*notes, *_power_notes(analysis, alpha)))


def analyses(runs: pd.DataFrame, metric: str) -> list[Analysis]:
    """The dataset × size analysis, and the dataset × size × seed one where it has more blocks
    (where rows ran more than one seed that every column finished)."""
    rows = analyse(runs, metric, ROWS)
    seeds = analyse(runs, metric, SEEDS)
    return [rows, seeds] if seeds.n_blocks > rows.n_blocks else [rows]


def _coverage_notes(analysis: Analysis) -> list[str]:
    if analysis.left_out.empty:
        return []
    missing = analysis.left_out.isna()
    named = [
        f"{_block_name(block)} ({', '.join(missing.columns[missing.loc[block]])})"
        for block in missing.index[:6]
    ]
    more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
    return [
        f"left out {len(missing)} block(s) where a column has no value (no finished run, or the "
        f"metric not recorded; the columns named): "
        f"{'; '.join(named)}{more}; pass --methods to leave out a column instead"
    ]


def _power_notes(a: Analysis, alpha: float) -> list[str]:
    """What the blocks and columns cannot show, in the spirit of ``--compare``'s min_p note."""
    n, k = a.scores.shape
    notes = []
    if a.friedman is not None and a.friedman_min_p > alpha:
        notes.append(
            f"with {n} blocks of {k} columns the Friedman p cannot go below {a.friedman_min_p:.3g} "
            f"(every block ranking the columns alike): it is no evidence either way at alpha = {alpha}"
        )
    if a.friedman is not None and (n <= 10 or k <= 5):
        notes.append(
            "the Friedman p-value is the chi-square approximation, which Demšar (2006, §3.2.2) trusts "
            f"from about N > 10 blocks and k > 5 columns (here N = {n}, k = {k}): read it as rough"
        )
    if a.critical_difference > k - 1:
        notes.append(
            f"Nemenyi's critical difference {a.critical_difference:.2f} exceeds the widest possible "
            f"gap in average rank ({k - 1}): with {n} blocks it cannot separate any pair"
        )
    pairs = k * (k - 1) // 2
    floor = min_attainable_p(n)
    if min(1.0, pairs * floor) > alpha:
        notes.append(
            f"with {n} blocks the exact Wilcoxon p of a pair cannot go below {floor:.3g}, and Holm "
            f"multiplies the smallest of the {pairs} pair(s) by {pairs}: no pair can reach "
            f"p < {alpha}; that needs more blocks"
        )
    if a.blocks == SEEDS:
        notes.append(
            "seed blocks of one dataset and size share its data, so they are not independent as the "
            "tests assume: these p-values are optimistic; the dataset × size test is the cautious one"
        )
    return notes


def _block_name(block: tuple) -> str:
    dataset, size, *seed = block
    return f"{dataset} {int(size)}px" + (f" seed {int(seed[0])}" if seed else "")


# ------------------------------------------------------------------------------------------ text


def analysis_text(a: Analysis) -> str:
    """One analysis as the ``--stats`` output shows it."""
    name = METRIC_NAMES.get(a.metric, a.metric)
    n, k = a.scores.shape
    if a.blocks == ROWS:
        what = "each block's value is the cell's mean over its finished seeds, as in the table"
    else:
        what = (
            "seeds paired: a block is one seed of a dataset and size, which every column finished "
            "with that seed"
        )
    lines = [f"{name}: blocks {a.blocks}, {n} complete block(s), {k} column(s); {what}"]
    if a.friedman is not None:
        stat, p = a.friedman
        lines.append(
            f"Friedman chi-square = {stat:.4g} (df = {k - 1}), p = {p:.4g} (min_p = {a.friedman_min_p:.3g})"
        )
    elif k == 2 and n >= 2:
        lines.append("Friedman: needs at least three columns; the pair's Wilcoxon test is below")
    if len(a.ranks) and n:
        lines.append(f"Average rank over the {n} block(s) (1 = best):")
        lines.append(a.ranks.rename_axis("column").to_frame().to_string(float_format="{:.3f}".format))
    if a.tested:
        lines.append(
            f"Pairs: p_wilcoxon_holm = Wilcoxon signed-rank over the blocks, Holm-adjusted over the "
            f"{len(a.pairs)} pair(s); p_nemenyi from the average ranks (critical difference "
            f"{a.critical_difference:.3f} at alpha = {ALPHA}); wins/ties/losses of a against b over the "
            f"blocks; r = {EFFECT_SIZE} of a against b (+1: a better in every block, 0: neither)"
        )
        shown = a.pairs[["a", "b"]].assign(
            **{
                "wins/ties/losses": [
                    f"{w}/{t}/{lo}" for w, t, lo in a.pairs[["wins", "ties", "losses"]].to_numpy()
                ],
                "r": a.pairs["rank_biserial"].map(lambda r: "–" if math.isnan(r) else f"{r:+.2f}"),
                "p_wilcoxon_holm": a.pairs["p_wilcoxon_holm"].map("{:.4g}".format),
                "p_nemenyi": a.pairs["p_nemenyi"].map("{:.4g}".format),
            }
        )
        lines.append(shown.to_string(index=False))
    lines += [f"note: {note}" for note in a.notes]
    return "\n".join(lines)


def stats_text(found: list[Analysis], cells: pd.DataFrame) -> str:
    """The whole ``report --stats`` section: the analyses (:func:`analyses` per metric), then the
    cells' medians and bootstrap intervals (:func:`harness_reports.intervals.cell_intervals`)."""
    from harness_reports.intervals import intervals_text

    return "\n".join([*(analysis_text(a) + "\n" for a in found), intervals_text(cells)])


def tests_frame(found: list[Analysis]) -> pd.DataFrame:
    """One row per analysis: its blocks, the Friedman test, Nemenyi's critical difference (the
    average ranks are the pairs' ``rank_a``/``rank_b``)."""
    rows = [
        {
            "metric": a.metric,
            "blocks": a.blocks,
            "n_blocks": a.n_blocks,
            "n_left_out": len(a.left_out),
            "n_columns": a.scores.shape[1],
            "friedman_statistic": a.friedman[0] if a.friedman else float("nan"),
            "friedman_p": a.friedman[1] if a.friedman else float("nan"),
            "friedman_min_p": a.friedman_min_p,
            "nemenyi_cd": a.critical_difference,
        }
        for a in found
    ]
    return pd.DataFrame(rows)


def pairs_frame(found: list[Analysis]) -> pd.DataFrame:
    """Every analysis's pairs in one tidy frame."""
    tested = [a.pairs for a in found if a.tested]
    return pd.concat(tested, ignore_index=True) if tested else pd.DataFrame()
