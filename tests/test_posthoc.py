"""``report --stats`` on fixed tables: the Friedman and post-hoc numbers are SciPy's and
scikit-posthocs' on the same blocks, the notes say when blocks are too few, the diagrams are
written with the columns' names, and the cells' intervals are SciPy's bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy.stats import bootstrap, chi2, friedmanchisquare, wilcoxon
from statsmodels.stats.multitest import multipletests

from harness_reports import intervals, posthoc
from harness_reports.cd_diagram import cd_diagram, write_cd_diagrams

# the example block design of scikit-posthocs' posthoc_nemenyi_friedman: 6 blocks x 3 columns
TABLE = np.array([[31, 27, 24], [31, 28, 31], [45, 29, 46], [21, 18, 48], [42, 36, 46], [32, 17, 40]]) / 100
COLUMNS = ["alpha", "beta (n_init=2)", "gamma"]


def _runs(table: np.ndarray, columns=COLUMNS, seeds=(0,), datasets=None) -> pd.DataFrame:
    """Finished runs of ``table`` (blocks x columns), one dataset per block; with several seeds,
    each seed's value is the table's plus a seeded jitter below 0.001 (no two differences alike, so
    that SciPy's Wilcoxon is its exact test rather than a slow permutation test over ties)."""
    jitter = np.random.default_rng(0).random((*table.shape, len(seeds))) * 1e-3
    rows = []
    for b, values in enumerate(table):
        for c, value in enumerate(values):
            for i, seed in enumerate(seeds):
                offset = 0.0 if len(seeds) == 1 else jitter[b, c, i]
                rows.append(
                    {
                        "run_key": f"{b}-{c}-{seed}",
                        "method": columns[c],
                        "dataset": datasets[b] if datasets else f"set{b}",
                        "input_size": 28,
                        "seed": seed,
                        "status": "FINISHED",
                        "acc": value + offset,
                        "runtime_s": 10 * value + offset,
                    }
                )
    return pd.DataFrame(rows)


def test_friedman_nemenyi_and_wilcoxon_holm_equal_the_libraries_on_a_fixed_table():
    a = posthoc.analyse(_runs(TABLE), "acc")
    assert a.scores.shape == (6, 3) and a.blocks == posthoc.ROWS
    stat, p = a.friedman
    expected = friedmanchisquare(*TABLE.T)
    assert (stat, p) == pytest.approx((expected.statistic, expected.pvalue))
    # Nemenyi: scikit-posthocs' own example
    nemenyi = sp.posthoc_nemenyi_friedman(TABLE)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert a.nemenyi.at[COLUMNS[i], COLUMNS[j]] == pytest.approx(nemenyi.iat[i, j])
    # Wilcoxon-Holm: SciPy's signed-rank p of each pair, adjusted by statsmodels' Holm
    pairs = [(0, 1), (0, 2), (1, 2)]
    raw = [wilcoxon(TABLE[:, i], TABLE[:, j]).pvalue for i, j in pairs]
    holm = multipletests(raw, method="holm")[1]
    for (i, j), expected_p in zip(pairs, holm, strict=True):
        assert a.wilcoxon_holm.at[COLUMNS[i], COLUMNS[j]] == pytest.approx(expected_p)
        pair = [{x, y} == {COLUMNS[i], COLUMNS[j]} for x, y in zip(a.pairs.a, a.pairs.b, strict=True)]
        assert a.pairs[pair].p_wilcoxon_holm.iloc[0] == pytest.approx(expected_p)


def test_average_ranks_put_the_best_first_and_follow_the_metrics_direction():
    a = posthoc.analyse(_runs(TABLE), "acc")
    ranks = pd.DataFrame(TABLE, columns=COLUMNS).rank(axis=1, ascending=False).mean()
    assert a.ranks.to_dict() == pytest.approx(ranks.to_dict())
    assert list(a.ranks.index) == ["gamma", "alpha", "beta (n_init=2)"] and a.ranks.is_monotonic_increasing
    faster = posthoc.analyse(_runs(TABLE), "runtime_s")  # lower is better: the order turns round
    assert list(faster.ranks.index) == ["beta (n_init=2)", "alpha", "gamma"]
    assert (faster.pairs.rank_biserial > 0).all()  # the better-ranked column first, r from its side


def test_nemenyi_critical_difference_is_demsars_and_separates_as_the_p_values_do():
    # Demšar (2006), table 5(a): q_0.05 = 2.343 for 3 classifiers, 2.728 for 5
    assert posthoc.nemenyi_critical_difference(6, 3) == pytest.approx(2.343 * math.sqrt(3 * 4 / 36), abs=1e-3)
    assert posthoc.nemenyi_critical_difference(10, 5) == pytest.approx(
        2.728 * math.sqrt(5 * 6 / 60), abs=1e-3
    )
    table = np.array([[0.9, 0.5, 0.1, 0.3]] * 12) + np.random.default_rng(1).random((12, 4)) * 1e-3
    table[::3, [1, 3]] = table[::3, [3, 1]]  # some blocks swap the middle pair
    a = posthoc.analyse(_runs(table, columns=["a", "b", "c", "d"]), "acc")
    for row in a.pairs.itertuples():
        separated = abs(row.rank_a - row.rank_b) > a.critical_difference
        assert separated == (row.p_nemenyi < posthoc.ALPHA)
    assert (a.pairs.p_nemenyi < posthoc.ALPHA).any() and (a.pairs.p_nemenyi >= posthoc.ALPHA).any()


def test_rank_biserial_on_a_hand_worked_case():
    # differences 3, -1, 0, 2, 4: the zero is dropped; ranks of |d| 3, 1, 2, 4 -> T+ = 9, T- = 1
    a = np.array([5.0, 1.0, 2.0, 4.0, 6.0])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    assert posthoc.rank_biserial(a, b) == pytest.approx((9 - 1) / 10)
    assert posthoc.rank_biserial(b, a) == pytest.approx(-0.8)
    assert posthoc.rank_biserial(a, a + 1) == -1.0
    assert math.isnan(posthoc.rank_biserial(a, a))  # no block separates them
    whole = np.round(TABLE * 100)  # integers: |-3| and |3| tie exactly, as they would not in hundredths
    pair = posthoc.analyse(_runs(whole), "acc").pairs.set_index(["a", "b"]).loc[("gamma", "beta (n_init=2)")]
    # gamma - beta over the blocks: -3, 3, 17, 30, 10, 23; ranks of |d| 1.5, 1.5, 4, 6, 3, 5
    assert (pair.wins, pair.ties, pair.losses) == (5, 0, 1)
    assert pair.rank_biserial == pytest.approx((19.5 - 1.5) / 21)


def test_too_few_blocks_are_said_and_no_pair_is_tested():
    one = posthoc.analyse(_runs(TABLE[:1]), "acc")
    assert not one.tested and one.friedman is None
    assert any("1 complete block(s): no test can say anything" in n for n in one.notes)
    assert "no test can say anything" in posthoc.analysis_text(one)
    with pytest.raises(ValueError, match="no diagram"):
        cd_diagram(one)
    # 3 blocks of 3 columns: the smallest Friedman p is chi2(6, df 2) = exp(-3) < 0.05, but no
    # Wilcoxon pair can go below 0.25, and Holm over 3 pairs triples it
    three = posthoc.analyse(_runs(TABLE[:3]), "acc")
    assert three.friedman_min_p == pytest.approx(math.exp(-3))
    text = posthoc.analysis_text(three)
    assert "cannot go below 0.25" in text and "no pair can reach p < 0.05" in text
    assert "Friedman p cannot go below" not in text
    two = posthoc.analyse(_runs(TABLE[:2]), "acc")  # chi2(4, df 2): exp(-2) = 0.135
    assert two.friedman_min_p == pytest.approx(chi2.sf(4, 2))
    assert "the Friedman p cannot go below 0.135" in posthoc.analysis_text(two)
    assert "cannot separate any pair" in posthoc.analysis_text(two)  # CD exceeds k - 1
    pair = posthoc.analyse(_runs(TABLE[:, :2], columns=COLUMNS[:2]), "acc")
    assert pair.friedman is None and pair.tested
    assert "Friedman: needs at least three columns" in posthoc.analysis_text(pair)


def test_incomplete_blocks_are_left_out_and_named():
    runs = _runs(TABLE, datasets=["a", "b", "c", "d", "e", "f"])
    runs = runs[~((runs.dataset == "c") & (runs.method == "gamma"))]
    a = posthoc.analyse(runs, "acc")
    assert a.n_blocks == 5 and list(a.left_out.index) == [("c", 28)]
    assert any("left out 1 block(s)" in n and "c 28px (gamma)" in n for n in a.notes)
    failed = _runs(TABLE).assign(status=lambda f: np.where(f.run_key == "0-0-0", "FAILED", "FINISHED"))
    assert posthoc.analyse(failed, "acc").n_blocks == 5  # a failed run is no value


def test_seed_blocks_pair_the_seeds_every_column_finished():
    runs = _runs(TABLE, seeds=(0, 1, 2))
    runs = runs[~(runs.run_key == "0-1-2")].copy()  # one column misses seed 2 of set0
    rows, seeds = posthoc.analyses(runs, "acc")
    assert (rows.blocks, rows.n_blocks) == (posthoc.ROWS, 6)
    assert (seeds.blocks, seeds.n_blocks, len(seeds.left_out)) == (posthoc.SEEDS, 17, 1)
    done = runs.pivot(index=["dataset", "seed"], columns="method", values="acc").dropna()
    assert seeds.friedman[0] == pytest.approx(friedmanchisquare(*(done[c] for c in COLUMNS)).statistic)
    text = posthoc.analysis_text(seeds)
    assert "blocks dataset × size × seed" in text and "seeds paired" in text and "optimistic" in text
    assert "blocks dataset × size," in posthoc.analysis_text(rows)
    assert len(posthoc.analyses(_runs(TABLE), "acc")) == 1  # one seed per row: no seed analysis


def test_cd_diagrams_are_written_with_the_columns_names(tmp_path):
    found = posthoc.analyses(_runs(TABLE, seeds=(0, 1)), "acc")
    fig = cd_diagram(found[0])
    texts = [t.get_text() for t in fig.axes[0].texts]
    for name in COLUMNS:
        assert any(t.startswith(f"{name} (") or t.endswith(f") {name}") for t in texts), texts
    assert (
        any(t.startswith("CD = ") for t in texts)
        and "ACC: average rank over 6 blocks" in fig.axes[0].get_title()
    )
    written = write_cd_diagrams(found, tmp_path / "table")
    assert sorted(p.name for p in written) == [
        "table.cd-acc-seeds.pdf",
        "table.cd-acc-seeds.png",
        "table.cd-acc.pdf",
        "table.cd-acc.png",
    ]
    assert all(p.stat().st_size > 1000 for p in written)
    assert (tmp_path / "table.cd-acc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "table.cd-acc.pdf").read_bytes()[:4] == b"%PDF"


def test_cell_intervals_are_scipys_bootstrap_of_the_median():
    runs = _runs(TABLE[:2], seeds=(0, 1, 2, 3))
    runs.loc[runs.run_key == "0-0-3", "status"] = "FAILED"
    cells = intervals.cell_intervals(runs, ["acc"])
    assert len(cells) == 6
    cell = cells[(cells.dataset == "set0") & (cells.method == "alpha")].iloc[0]
    values = runs[(runs.run_key.str.startswith("0-0-")) & (runs.status == "FINISHED")]["acc"].to_numpy()
    expected = bootstrap(
        (values,), np.median, method="percentile", n_resamples=9999, rng=np.random.default_rng(0)
    ).confidence_interval
    assert (cell.n, cell.n_seeds) == (3, 4) and cell["median"] == pytest.approx(np.median(values))
    assert (cell.ci_low, cell.ci_high) == pytest.approx((expected.low, expected.high))
    assert cell.ci_low <= cell["median"] <= cell.ci_high
    single = intervals.cell_intervals(_runs(TABLE[:1]), ["acc"])
    assert single["ci_low"].isna().all() and single["median"].tolist() == pytest.approx(TABLE[0].tolist())
    text = intervals.intervals_text(cells)
    assert "set0" in text and f"[{cell.ci_low:.3f}, {cell.ci_high:.3f}]" in text and "3/4" in text
