"""Tables, statistics and figures built from a real (tiny) tracked sweep."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.stats import friedmanchisquare
from stamped_runs import stamp, strip

from harness.cli import main
from harness.errors import ExitCode
from harness_reports import load_runs, plots, stats, tables
from harness_reports.figures import make_figures
from harness_reports.identities import split_identities
from harness_reports.runs import configurations


@pytest.fixture(scope="module")
def runs(tiny_sweep):
    uri, _, _ = tiny_sweep
    client = MlflowClient(tracking_uri=uri)
    return load_runs(client, client.get_experiment_by_name("t").experiment_id)


def _means(runs: pd.DataFrame, metric: str) -> pd.Series:
    return runs[runs.status == "FINISHED"].groupby("method")[metric].mean()


def test_failed_seed_is_excluded_and_counted(runs):
    long = tables.build_table(runs)
    flaky = long[(long.method == "flaky") & (long.metric == "acc")].iloc[0]
    assert (flaky.n, flaky.n_total) == (2, 3)
    finished = runs[(runs.method == "flaky") & (runs.status == "FINISHED")]["acc"]
    assert flaky["mean"] == pytest.approx(finished.mean())
    assert flaky["std"] == pytest.approx(finished.std(ddof=1))  # the sample std
    assert "(n=2/3)" in tables.wide(long).loc["digits", ("ACC", "flaky")]


def test_bold_marks_the_true_best_and_underline_the_second(runs):
    text = tables.to_markdown(runs)
    for metric, name in (("acc", "ACC"), ("nmi_geometric", "NMI (geom.)")):
        order = _means(runs, metric).sort_values(ascending=False).index.tolist()
        header = [h.strip() for h in text.splitlines()[0].strip("|").split("|")]
        row = [c.strip() for c in text.splitlines()[2].strip("|").split("|")]
        cells = dict(zip(header, row, strict=True))
        assert cells[f"{name} {order[0]}"].startswith("**")
        assert cells[f"{name} {order[1]}"].startswith("<u>")
        assert not cells[f"{name} {order[2]}"].startswith(("**", "<u>"))


def test_latex_structure(runs, tiny_methods, tmp_path):
    tex = tables.to_latex(runs)
    for command in (
        "\\begin{table}",
        "\\caption{",
        "\\label{tab:results}",
        "\\toprule",
        "\\midrule",
        "\\bottomrule",
    ):
        assert command in tex
    assert "3 seeds" in tex and "geometric" in tex
    assert "clustering all samples" in tex and "train and test" not in tex  # digits has no split
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == 1  # one dataset row
    cells = body[0].rstrip("\\ ").split(" & ")
    assert len(cells) == 1 + 2 * len(tiny_methods)  # label + (ACC, NMI) x methods
    assert sum(c.startswith("\\textbf{") for c in cells) == 2  # one best per metric
    assert sum(c.startswith("\\underline{") for c in cells) == 2
    assert re.search(r"\d\.\d{3} \$\\pm\$ \d\.\d{3} \(n=2/3\)", body[0])
    if shutil.which("pdflatex"):
        doc = tmp_path / "t.tex"
        doc.write_text(
            "\\documentclass{article}\\usepackage{booktabs}\\begin{document}" + tex + "\\end{document}"
        )
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", doc.name], cwd=tmp_path, capture_output=True
        )
        assert done.returncode == 0, done.stdout[-2000:]


def test_csv_is_tidy_one_row_per_run(runs, tiny_methods):
    frame = pd.read_csv(pd.io.common.StringIO(tables.to_csv(runs)))
    assert len(frame) == 3 * len(tiny_methods) and frame.run_id.is_unique
    assert {"method", "dataset", "input_size", "seed", "status", "acc", "nmi_geometric"} <= set(frame.columns)
    assert (frame.status == "FAILED").sum() == 1


def test_wilcoxon_pairs_only_seeds_both_finished(runs):
    (kmeans,) = configurations(runs, "kmeans")  # kmeans (n_init=2) where runs record the defaults
    both = stats.paired_wilcoxon(runs, kmeans, "curves", "acc").iloc[0]
    assert both.n_pairs == 3 and 0 < both.p_value <= 1
    with_failure = stats.paired_wilcoxon(runs, kmeans, "flaky", "acc").iloc[0]
    assert with_failure.n_pairs == 2


def test_average_ranks_follow_the_means(runs):
    ranks = stats.average_ranks(runs, "acc")
    assert ranks.index.tolist() == _means(runs, "acc").sort_values(ascending=False).index.tolist()
    assert ranks.iloc[0] == 1.0


def test_figures_exist_with_expected_axes(runs, tiny_sweep, tiny_methods, tmp_path):
    client = MlflowClient(tracking_uri=tiny_sweep[0])
    written = make_figures(client, runs, tmp_path)
    names = {p.name for p in written}
    assert {
        "seed-spread.png",
        "seed-spread.pdf",
        "curves-curves-digits-8.png",
        "tsne-curves-digits-8-seed0.png",
    } <= names
    assert all(p.stat().st_size > 1000 for p in written)
    if "dlfc" in tiny_methods:  # the real deep method: its training curves and t-SNE
        # named by its reduced budget, e.g. "dlfc (ae_iterations=5, ...)": the slug starts alike
        assert any(n.startswith("curves-dlfc") and n.endswith("-digits-8.png") for n in names)
        assert any(n.startswith("tsne-dlfc") and n.endswith("-digits-8-seed0.png") for n in names)
    spread = plots.seed_spread(runs)
    assert [ax.get_ylabel() for ax in spread.axes] == ["ACC", "NMI (geom.)"]
    sized = runs.assign(input_size=np.where(runs.seed == 0, 8, 16))
    curves = plots.size_curves(sized)
    assert curves.axes[0].get_xlabel() == "input size (px per side)"
    assert plots.size_curves(runs) is None  # a single size: nothing to draw


def test_report_and_plot_commands(tiny_sweep, tmp_path, capsys):
    uri = tiny_sweep[0]
    out = tmp_path / "table.tex"
    args = ["--tracking-uri", uri, "--experiment", "t"]
    assert main(["report", *args, "--format", "latex", "--out", str(out), "--compare", "kmeans,curves"]) == 0
    assert "\\toprule" in out.read_text()
    assert "Wilcoxon signed-rank, kmeans (n_init=2) vs curves" in capsys.readouterr().err
    assert main(["report", *args, "--methods", "kmeans", "--format", "csv"]) == 0
    csv = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert len(csv) == 3 and set(csv.base_method) == {"kmeans"}
    assert main(["report", *args, "--methods", "kmeanz"]) == ExitCode.USAGE_ERROR
    assert "did you mean 'kmeans'" in capsys.readouterr().err
    assert main(["plot", *args, "--out", str(tmp_path / "figs"), "--no-tsne"]) == 0
    assert (tmp_path / "figs" / "seed-spread.pdf").is_file()
    assert not list((tmp_path / "figs").glob("tsne-*"))


def test_stats_on_one_row_say_it_is_too_few_and_test_the_paired_seeds(
    runs, tiny_sweep, tiny_methods, tmp_path, capsys
):
    out = tmp_path / "table.md"
    report = ["report", "--tracking-uri", tiny_sweep[0], "--experiment", "t", "--metrics", "acc", "--stats"]
    assert main([*report, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    text = (tmp_path / "table.stats.txt").read_text()
    assert text in err and f"wrote {tmp_path / 'table.cd-acc-seeds.png'}" in err
    assert "ACC: blocks dataset × size, 1 complete block(s)" in text and "no test can say anything" in text
    # flaky failed seed 1: seeds 0 and 2 are the blocks every column finished
    k = len(tiny_methods)
    assert f"ACC: blocks dataset × size × seed, 2 complete block(s), {k} column(s)" in text
    assert "left out 1 block(s)" in text and "digits 8px seed 1 (flaky)" in text
    assert "the Friedman p cannot go below" in text and "no pair can reach p < 0.05" in text
    tests = pd.read_csv(tmp_path / "table.stats-tests.csv").set_index("blocks")
    done = runs[runs.status == "FINISHED"].pivot(index="seed", columns="method", values="acc").loc[[0, 2]]
    expected = friedmanchisquare(*(done[c] for c in done.columns))
    assert tests.at["dataset × size × seed", "friedman_statistic"] == pytest.approx(expected.statistic)
    assert tests.at["dataset × size × seed", "friedman_p"] == pytest.approx(expected.pvalue)
    pairs = pd.read_csv(tmp_path / "table.stats-pairs.csv")
    assert len(pairs) == k * (k - 1) // 2 and set(pairs.blocks) == {"dataset × size × seed"}
    assert not (tmp_path / "table.cd-acc.png").exists()  # one row: no test, no diagram
    assert (tmp_path / "table.cd-acc-seeds.pdf").stat().st_size > 1000
    cells = pd.read_csv(tmp_path / "table.stats-cells.csv")
    flaky = cells[cells.method == "flaky"].iloc[0]
    finished = runs[(runs.method == "flaky") & (runs.status == "FINISHED")]["acc"]
    assert (flaky.n, flaky.n_seeds) == (2, 3) and flaky["median"] == pytest.approx(finished.median())
    assert main(report) == 0  # no --out: the section on standard error, the files only with --out
    out_, err = capsys.readouterr()
    assert "Friedman chi-square" in err and "Friedman" not in out_ and "pass --out FILE" in err


def test_sweep_parent_run_holds_table_and_figures(tiny_sweep):
    uri = tiny_sweep[0]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("t")
    parent = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'sweep'")[-1]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.md", "runs.csv", "figures", "sweep.yaml"} <= names
    figures = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/seed-spread.png" in figures


@pytest.mark.parametrize("store", ["mlflow", "offline"])
def test_configurations_of_one_method_are_never_pooled(tmp_path, capsys, store):
    from harness.journal import Journal

    target = (
        ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
        if store == "mlflow"
        else ["--offline", str(tmp_path / "runs")]
    )
    base = [
        "run",
        "--plugin",
        "harness_test_plugins",
        "--methods",
        "flaky",
        "--datasets",
        "digits",
        "--seeds",
        "0-1",
        *target,
    ]
    # two configurations (fail_seeds differs), each with its own free-text note (outside the run key)
    assert main([*base, "--param", "flaky.fail_seeds=8", "--param", "flaky.note=a"]) == 0
    assert main([*base, "--param", "flaky.fail_seeds=9", "--param", "flaky.note=b"]) == 0
    assert (
        main([*base, "--param", "flaky.fail_seeds=9", "--param", "flaky.note=c"]) == 0
    )  # nothing new to run
    if store == "mlflow":
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
        frame = load_runs(client, client.get_experiment_by_name("harness").experiment_id)
    else:
        frame = Journal(tmp_path / "runs").runs_frame()
    assert sorted(frame["method"].unique()) == ["flaky (fail_seeds=8)", "flaky (fail_seeds=9)"]
    summary = frame.groupby("method")["seed"].apply(sorted).to_dict()
    assert summary == {"flaky (fail_seeds=8)": [0, 1], "flaky (fail_seeds=9)": [0, 1]}
    if store == "mlflow":
        capsys.readouterr()
        assert main(["report", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 0
        header = capsys.readouterr().out.splitlines()[0]
        assert "ACC flaky (fail_seeds=8)" in header and "ACC flaky (fail_seeds=9)" in header


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics", ""], "--metrics: expected a comma-separated list"),
        (["--metrics", " , "], "--metrics: expected a comma-separated list"),
        (["--out", "/nonexistent/x.tex"], "--out: cannot write /nonexistent/x.tex"),
        (["--methods", ""], "--methods: expected a comma-separated list"),
        (["--seeds", "1-x"], "--seeds: expected integers >= 0 or ranges like 0-9, got '1-x'"),
        (["--seeds", "7-9"], "--seeds 7-9: no runs of these seeds; the runs have seeds 0-2"),
    ],
)
def test_report_usage_errors_are_one_line(tiny_sweep, capsys, extra, message):
    assert (
        main(["report", "--tracking-uri", tiny_sweep[0], "--experiment", "t", *extra]) == ExitCode.USAGE_ERROR
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"harness: error: {message}") and "\n" not in err


def test_figure_file_names_are_safe_and_unique():
    from harness_reports.figures import slug

    names = ["kmeans (max_iter=50, n_init=2)", "kmeans (max_iter=50_n_init=2)", "dlfc (ae_weights=/x/w.h5)"]
    slugs = [slug(n) for n in names]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", s) for s in slugs)
    assert len(set(slugs)) == 3
    assert slugs[0].startswith("kmeans_max_iter_50_n_init_2-")
    assert slug("kmeans") == "kmeans" and slug("fashion-mnist") == "fashion-mnist"


def test_curves_have_a_title_pretraining_loss_and_a_sane_axis_for_one_point():
    histories = pd.DataFrame(
        [(seed, "curve/acc", step, 0.5 + step / 1000) for seed in (0, 1) for step in (0, 70, 140)]
        + [(seed, "curve/loss", 140, 1e-5 * (seed + 1)) for seed in (0, 1)]
        + [(seed, "curve/pretrain_loss", epoch, 0.15) for seed in (0, 1) for epoch in (1, 2, 3)],
        columns=["seed", "key", "step", "value"],
    )
    fig = plots.training_curves(histories, title="dlfc (learning_rate=0.1) on digits (8 px)")
    assert fig.get_suptitle() == "dlfc (learning_rate=0.1) on digits (8 px)"
    acc, loss, pretrain = fig.axes[:3]
    assert [ax.get_ylabel() for ax in (acc, loss, pretrain)] == ["ACC", "loss", "pretraining loss"]
    assert pretrain.get_xlabel() == "pretraining epoch"
    low, high = loss.get_xlim()
    assert low == 0 and 140 < high < 200  # not 132.5-147.5 around the lone point
    assert loss.collections and loss.collections[0].get_offsets().shape == (2, 2)  # one dot per seed


def test_curve_figures_are_named_by_slug_and_titled(runs, tiny_sweep, tmp_path):
    client = MlflowClient(tracking_uri=tiny_sweep[0])
    renamed = runs.assign(method=runs["method"].replace("curves", "curves (lr=0.1, w=/x/y.h5)"))
    written = make_figures(client, renamed[renamed.base_method == "curves"], tmp_path, with_tsne=False)
    curves = [p.name for p in written if p.name.startswith("curves-") and p.suffix == ".png"]
    assert len(curves) == 1 and re.fullmatch(
        r"curves-curves_lr_0\.1_w_x_y\.h5-[0-9a-f]{6}-digits-8\.png", curves[0]
    )


def test_plot_help_has_a_description(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    assert "t-SNE" in capsys.readouterr().out.split("options:")[0]


def _cells(markdown: str) -> dict[str, str]:
    """Header → cell of a one-row Markdown table, without bold or underline."""
    lines = markdown.splitlines()
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    row = [
        c.strip().strip("*").removeprefix("<u>").removesuffix("</u>") for c in lines[2].strip("|").split("|")
    ]
    return dict(zip(header, row, strict=True))


def test_sweeps_of_different_seeds_compare_the_same_seeds_visibly(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = ["run", "--methods", "kmeans", "--datasets", "digits", "--tracking-uri", uri]
    assert main([*base, "--seeds", "0-5", "--param", "kmeans.n_init=2"]) == 0
    assert main([*base, "--seeds", "3-5", "--param", "kmeans.n_init=3"]) == 0  # a later, smaller sweep
    six, three = "kmeans (n_init=2)", "kmeans (n_init=3)"
    client = MlflowClient(tracking_uri=uri)
    runs = load_runs(client, client.get_experiment_by_name("harness").experiment_id)
    acc = {name: runs[runs.method == name].set_index("seed")["acc"] for name in (six, three)}
    report = ["report", "--tracking-uri", uri, "--metrics", "acc", "--compare", f"{six},{three}"]
    capsys.readouterr()

    assert main(report) == 0
    out, err = capsys.readouterr()
    cells = _cells(out)
    assert cells[f"ACC {three}"] == f"{acc[three].mean():.3f} ± {acc[three].std():.3f} (n=3/6)"
    assert cells[f"ACC {six}"] == f"{acc[six].mean():.3f} ± {acc[six].std():.3f}"  # all of the row's seeds
    assert "seeds 0–5 (6 seeds), the same in every column" in out
    # --compare tests seeds 3-5 and shows the table's means beside the paired ones
    test = stats.paired_wilcoxon(runs, six, three, "acc").iloc[0]
    assert test.n_pairs == 3
    assert test[f"{six}_table"] == pytest.approx(acc[six].mean()) and test[f"{six}_n"] == "6/6"
    assert test[f"{six}_mean"] == pytest.approx(acc[six].loc[[3, 4, 5]].mean())
    assert test[f"{three}_table"] == pytest.approx(test[f"{three}_mean"]) and test[f"{three}_n"] == "3/6"
    assert f"{acc[six].mean():.3f} (n=6/6)" in err and f"{acc[three].mean():.3f} (n=3/6)" in err
    assert f"{acc[six].loc[[3, 4, 5]].mean():.3f}" in err

    # --seeds 3-5: the paired seeds only; the table and the test then hold the same means
    assert main([*report, "--seeds", "3-5"]) == 0
    out, err = capsys.readouterr()
    cells = _cells(out)
    assert "(n=" not in cells[f"ACC {three}"] + cells[f"ACC {six}"]
    assert cells[f"ACC {six}"].startswith(f"{acc[six].loc[[3, 4, 5]].mean():.3f} ± ")
    assert "seeds 3–5 (3 seeds)" in out
    assert f"{acc[six].loc[[3, 4, 5]].mean():.3f} (n=3/3)" in err


def test_a_cell_shows_only_the_newest_identity_and_says_what_it_left_out(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = ["run", "--methods", "kmeans", "--datasets", "digits", "--seeds", "0-1", "--tracking-uri", uri,
             "--param", "kmeans.n_init=2"]  # fmt: skip
    assert main(sweep) == 0
    assert stamp(uri, "harness", "b") == 2  # method code b
    assert main(sweep) == 0  # after an edit of the method: its identity (and run key) changed
    assert stamp(uri, "harness", "a") == 2
    assert main(sweep) == 0
    assert strip(uri, "harness") == 2  # the newest runs carry no identity: older than any that does
    name = "kmeans (n_init=2)"
    report = ["report", "--tracking-uri", uri]
    capsys.readouterr()

    assert main([*report, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    shown = pd.read_csv(pd.io.common.StringIO(out))
    assert len(shown) == 2 and set(shown.method_identity) == {"a" * 16} and set(shown.method) == {name}
    assert "left out 4 run(s) of older identities" in err and "--all-identities shows them" in err
    assert main([*report, "--format", "latex"]) == 0
    out, err = capsys.readouterr()
    assert "4 run(s) of older implementations or data are left out" in out
    assert "(n=" not in out.split("\\midrule")[1]  # both seeds of the newest identity
    assert "seeds 0, 1 (2 seeds)" in out

    assert main([*report, "--all-identities", "--metrics", "acc"]) == 0
    out, err = capsys.readouterr()
    header = [h.strip() for h in out.splitlines()[0].strip("|").split("|")]
    assert header == ["dataset", f"ACC {name}", f"ACC {name} [method bbbbbb]", f"ACC {name} [untagged]"]
    assert "left out" not in err and "A name in brackets is an older identity" in out
    older = f"{name} [method bbbbbb]"
    assert main([*report, "--all-identities", "--metrics", "acc", "--compare", f"{name},{older}"]) == 0
    assert f"Wilcoxon signed-rank, {name} vs {older} on acc" in capsys.readouterr().err

    # --stats: each older identity is a column of its own, paired with the newest by seed
    assert main([*report, "--all-identities", "--metrics", "acc", "--stats"]) == 0
    err = capsys.readouterr().err
    assert "ACC: blocks dataset × size × seed, 2 complete block(s), 3 column(s)" in err
    assert all(column in err for column in (f"{older} ", f"{name} [untagged]"))
    assert main([*report, "--metrics", "acc", "--stats"]) == 0  # the newest identity alone
    assert "one column: nothing to compare" in capsys.readouterr().err


def test_data_digests_split_a_cell_and_a_run_without_one_joins_its_code(runs):
    tagged = runs.assign(method_identity="a" * 16, dataset_identity="e" * 16, core_identity="c" * 16,
                         data_digest="1" * 16)  # fmt: skip
    failed = tagged.status == "FAILED"  # flaky's seed 1, failed before its data were digested
    tagged.loc[failed, "data_digest"] = None
    shown, left_out = split_identities(tagged)
    assert failed.sum() == 1 and left_out.empty and len(shown) == len(runs)
    # kmeans' seed 2 ran on other data (say, after a change of the resizing), later than the rest
    other = (tagged.base_method == "kmeans") & (tagged.seed == 2)
    tagged.loc[other, ["data_digest", "start_time"]] = ["2" * 16, tagged.start_time.max() + 1]
    shown, left_out = split_identities(tagged)
    assert set(left_out.index) == set(tagged.index[(tagged.base_method == "kmeans") & ~other])
    long = tables.build_table(tagged, ["acc"])
    cell = long[long.method == tagged.loc[other, "method"].iloc[0]].iloc[0]
    assert (cell.n, cell.n_total) == (1, 3) and cell["mean"] == pytest.approx(
        tagged.loc[other, "acc"].iloc[0]
    )
    both, _ = split_identities(tagged, keep_older=True)
    assert sorted(both.loc[both.base_method == "kmeans", "method"].unique())[-1].endswith("[data 111111]")


def test_plot_takes_seeds_and_identities(tiny_sweep, tmp_path, capsys):
    args = ["plot", "--tracking-uri", tiny_sweep[0], "--experiment", "t", "--no-tsne", "--all-identities"]
    assert main([*args, "--seeds", "x", "--out", str(tmp_path)]) == ExitCode.USAGE_ERROR
    assert "--seeds: expected" in capsys.readouterr().err
    assert main([*args, "--seeds", "0", "--methods", "kmeans", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "seed-spread.png").is_file()


def test_the_caption_names_each_rows_seeds_where_rows_differ(runs):
    usps = runs[runs.seed < 2].assign(dataset="usps", run_key=lambda f: f["run_key"] + "-usps")
    both = pd.concat([runs, usps], ignore_index=True)
    assert (
        "each row's seeds, the same in every column of a row (digits: 0--2; usps: 0, 1)"
        in tables.to_latex(both)
    )
    assert "seeds 0--2 (3 seeds), the same in every column" in tables.to_latex(runs)
