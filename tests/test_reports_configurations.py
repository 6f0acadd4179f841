"""Reports over a real k-means store with two configurations, each run at the native size of
digits (8 px, filter "none") and resized to 16 px (bilinear): the audit's report/plot problems."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient
from stamped_runs import stamp, strip

from harness.cli import main
from harness.errors import ExitCode
from harness_reports import load_runs, plots, stats, tables

FAST = "kmeans (max_iter=50, n_init=2)"
SLOW = "kmeans (max_iter=300, n_init=3)"


def _run(uri: str, *extra: str) -> None:
    argv = ["run", "--methods", "kmeans", "--datasets", "digits", "--tracking-uri", uri, *extra]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('cfg') / 'mlflow.db'}"
    for n_init, max_iter in ((2, 50), (3, 300)):
        _run(uri, "--sizes", "native,16", "--seeds", "0-2", "--param", f"kmeans.n_init={n_init}",
             "--param", f"kmeans.max_iter={max_iter}")  # fmt: skip
    return uri


@pytest.fixture(scope="module")
def runs(store):
    client = MlflowClient(tracking_uri=store)
    return load_runs(client, client.get_experiment_by_name("harness").experiment_id)


def test_native_and_resized_runs_are_one_configuration(runs):
    assert sorted(runs["method"].unique()) == [SLOW, FAST]  # no "resize_filter=none" split
    assert set(runs["base_method"]) == {"kmeans"}
    per_config = runs.groupby("method")["input_size"].apply(lambda s: sorted(set(s))).to_dict()
    assert per_config == {FAST: [8, 16], SLOW: [8, 16]}
    assert set(runs["variant"]) == {"all"}


def test_metric_vs_size_draws_one_line_per_configuration(runs):
    fig = plots.size_curves(runs)
    lines = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 2]
    assert sorted(sorted(line.get_xdata()) for line in lines) == [[8, 16], [8, 16]]
    assert fig.get_suptitle()


def test_latex_labels_are_escaped(runs):
    tex = tables.to_latex(runs)
    assert "kmeans (max\\_iter=50, n\\_init=2)" in tex
    assert "max_iter" not in tex.replace("max\\_iter", "")
    assert "clustering all samples" in tex and "train and test" not in tex


def test_dataset_names_in_the_latex_caption_are_escaped(runs):
    # a plugin dataset named with an underscore, recorded with another variant than digits
    other = runs.assign(dataset="my_digits", variant="train+test", run_key=runs["run_key"] + "x")
    tex = tables.to_latex(pd.concat([runs, other], ignore_index=True))
    assert "the train and test splits together (my\\_digits)" in tex
    assert "my_digits" not in tex


def test_two_methods_mark_only_the_best(runs):
    long = tables.build_table(runs)
    assert set(long["mark"].dropna()) == {1.0}
    text = tables.to_markdown(runs)
    assert "**" in text and "<u>" not in text and "second underlined" not in text


def test_plain_method_name_selects_all_configurations(store, capsys):
    assert main(["report", "--tracking-uri", store, "--methods", "kmeans", "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("kmeans (") == 12  # 2 configurations x 2 sizes x 3 seeds
    assert main(["report", "--tracking-uri", store, "--methods", FAST, "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("kmeans (") == 6
    assert main(["report", "--tracking-uri", store, "--datasets", "mnist"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert err.strip() == "harness: error: no runs of dataset 'mnist' in this store; it has: digits"


def test_compare_names_with_commas_and_writes_beside_the_table(store, tmp_path, capsys):
    out = tmp_path / "table.tex"
    argv = ["report", "--tracking-uri", store, "--format", "latex", "--out", str(out)]
    assert main([*argv, "--compare", f"{FAST},{SLOW}", "--metrics", "acc"]) == 0
    text = (tmp_path / "table.compare.txt").read_text()
    assert f"Wilcoxon signed-rank, {FAST} vs {SLOW} on acc" in text
    assert "min_p" in text and "0.25" in text and "no evidence" in text  # 3 pairs: p >= 0.25
    assert "Average rank on acc over 2 dataset x size row(s)" in text
    assert text in capsys.readouterr().err
    assert "\\toprule" in out.read_text()


@pytest.mark.parametrize(
    ("compare", "message"),
    [
        (f"{FAST},{FAST}", "not with itself"),
        ("kmeans,kmeans", "has 2 configurations"),
        ("kmeans (max_iter=50, n_init=2)", "expected two methods"),
    ],
)
def test_bad_compare_is_one_line(store, capsys, compare, message):
    assert main(["report", "--tracking-uri", store, "--compare", compare]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: --compare:") and message in err and "\n" not in err


def test_stats_of_two_configurations_are_scipys_wilcoxon_on_the_runs(store, runs, tmp_path, capsys):
    from scipy.stats import wilcoxon

    out = tmp_path / "table.tex"
    assert main(["report", "--tracking-uri", store, "--format", "latex", "--out", str(out), "--stats"]) == 0
    text = (tmp_path / "table.stats.txt").read_text()
    assert "Friedman: needs at least three columns" in text
    assert "ACC: blocks dataset × size, 2 complete block(s), 2 column(s)" in text
    assert "ACC: blocks dataset × size × seed, 6 complete block(s), 2 column(s)" in text
    assert "\\toprule" in out.read_text()  # the table stays LaTeX
    pairs = pd.read_csv(tmp_path / "table.stats-pairs.csv").set_index(["metric", "blocks"])
    for metric in ("acc", "nmi_geometric"):
        seeds = pairs.loc[(metric, "dataset × size × seed")]
        done = runs[runs.status == "FINISHED"].pivot(
            index=["input_size", "seed"], columns="method", values=metric
        )
        # one pair: Holm leaves SciPy's p as it is
        assert seeds.p_wilcoxon_holm == pytest.approx(wilcoxon(done[FAST], done[SLOW]).pvalue)
        assert seeds.wins + seeds.ties + seeds.losses == 6 and {seeds.a, seeds.b} == {FAST, SLOW}
        rows = pairs.loc[(metric, "dataset × size")]
        means = done.groupby(level="input_size").mean()  # the table's cells: 3 seeds each
        assert rows.p_wilcoxon_holm == pytest.approx(wilcoxon(means[FAST], means[SLOW]).pvalue)
        assert rows.p_wilcoxon_holm >= 0.5  # 2 blocks: the smallest p there is
    assert "cannot go below 0.5" in text
    assert {p.name for p in tmp_path.glob("table.cd-*")} == {
        f"table.cd-{m}{s}.{e}"
        for m in ("acc", "nmi_geometric")
        for s in ("", "-seeds")
        for e in ("png", "pdf")
    }
    assert text in capsys.readouterr().err


def test_min_attainable_p_matches_scipy():
    from scipy.stats import wilcoxon

    assert stats.min_attainable_p(3) == 0.25
    assert wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5).pvalue == pytest.approx(stats.min_attainable_p(5))


def test_two_real_filters_split_and_the_native_runs_stay_apart(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _run(uri, "--sizes", "native,16", "--seeds", "0-1")  # at the defaults: named by the filter alone
    _run(uri, "--sizes", "16", "--seeds", "0-1", "--resize-filter", "lanczos")
    client = MlflowClient(tracking_uri=uri)
    frame = load_runs(client, client.get_experiment_by_name("harness").experiment_id)
    sizes = frame.groupby("method")["input_size"].apply(sorted).to_dict()
    assert sizes == {
        "kmeans (resize_filter=bilinear)": [16, 16],
        "kmeans (resize_filter=lanczos)": [16, 16],
        "kmeans (resize_filter=none)": [8, 8],  # native: resized by neither, listed once
    }
    assert frame["run_key"].is_unique  # one row per run
    capsys.readouterr()
    assert main(["report", "--tracking-uri", uri, "--methods", "kmeans"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "ACC kmeans (resize_filter=bilinear)" in header and "ACC kmeans (resize_filter=lanczos)" in header


def _frame(uri: str) -> pd.DataFrame:
    client = MlflowClient(tracking_uri=uri)
    return load_runs(client, client.get_experiment_by_name("harness").experiment_id)


def test_a_configuration_is_named_by_what_departs_from_the_defaults(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _run(uri, "--seeds", "0-1", "--param", "kmeans.n_init=2")
    strip(uri, "harness")
    assert set(_frame(uri)["method"]) == {"kmeans"}  # runs that record no defaults: today's rule
    stamp(uri, "harness", "a")  # the defaults kmeans declares (n_init 20, max_iter 300), as recorded
    frame = _frame(uri)
    assert set(frame["method"]) == {"kmeans (n_init=2)"}  # the only configuration, yet not plain
    tex = tables.to_latex(frame)
    assert "kmeans (n\\_init=2): n\\_init 2 (default 20)" in tex.split("\\label")[0]  # in the caption

    # a second configuration: named by what differs between them and from the defaults, no more
    _run(uri, "--seeds", "0-1", "--param", "kmeans.n_init=2", "--param", "kmeans.max_iter=50")
    stamp(uri, "harness", "a")
    assert sorted(set(_frame(uri)["method"])) == [
        "kmeans (max_iter=300, n_init=2)",
        "kmeans (max_iter=50, n_init=2)",
    ]
    capsys.readouterr()
    assert main(["report", "--tracking-uri", uri, "--format", "latex"]) == 0
    caption = capsys.readouterr().out.split("\\label")[0]
    assert "kmeans (max\\_iter=300, n\\_init=2): n\\_init 2 (default 20);" in caption
    assert (
        "kmeans (max\\_iter=50, n\\_init=2): max\\_iter 50 (default 300), n\\_init 2 (default 20)." in caption
    )
