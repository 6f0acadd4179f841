"""Figures a reviewer accepts, asserted on the figure objects: every logged curve, t-SNE colours
matched through the Hungarian mapping, shared y ranges, visible flat boxes, the sensitivity figure,
and the short-cell note only where a cell is short."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from mlflow import MlflowClient

from harness.cli import main
from harness.console import summary_table
from harness.errors import ExitCode
from harness_reports import load_runs, plots, tables
from harness_reports.figures import histories, make_figures
from harness_reports.sensitivity import sweeps


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Real runs on digits, seeds 0-1: k-means at n_init 1 and 3 (two sweeps with different --param
    values), the test plugins' ``curves`` (its own curves and an embedding) and ``flaky`` (fails on
    seed 1). Returns (tracking URI, runs frame)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('figures') / 'mlflow.db'}"
    base = ["run", "--plugin", "harness_test_plugins", "--methods", "kmeans,curves,flaky", "--datasets",
            "digits", "--seeds", "0-1", "--tracking-uri", uri]  # fmt: skip
    for n_init in (1, 3):
        assert main([*base, "--param", f"kmeans.n_init={n_init}"]) == ExitCode.JOBS_FAILED  # flaky's seed 1
    client = MlflowClient(tracking_uri=uri)
    return uri, load_runs(client, client.get_experiment_by_name("harness").experiment_id)


@pytest.fixture(scope="module")
def runs(store):
    return store[1]


def test_every_curve_a_method_logs_is_plotted(runs, store):
    # the test plugin "curves" logs loss and a curve of its own (margin), and its scores at step 3
    client = MlflowClient(tracking_uri=store[0])
    curves = histories(client, runs[runs.base_method == "curves"])
    assert {"curve/margin", "curve/loss", "curve/acc"} <= set(curves["key"])
    fig = plots.training_curves(curves)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels[0] == "ACC" and {"loss", "margin", "NMI (geom.)"} <= set(labels)
    assert len(labels) == curves["key"].nunique()  # one panel per curve, no empty panel left
    margin = fig.axes[labels.index("margin")]
    assert margin.get_xlabel() == "step"  # a plugin's own curve: its steps, not "iteration"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["0", "1"]  # one seed legend


def test_tsne_has_a_class_legend_and_clusters_in_their_matched_class_colours():
    from sklearn.datasets import make_blobs

    x, truth = make_blobs(n_samples=150, centers=5, n_features=8, random_state=0)
    pred = (truth + 2) % 5  # cluster k holds class k - 2: the Hungarian mapping undoes the shift
    pred[:6] = 7  # one cluster more than there are classes
    fig = plots.tsne(x, truth, pred, seed=0)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["0", "1", "2", "3", "4", "cluster 7 (no class)"]
    by_class = {c.get_label(): to_rgba(c.get_facecolor()[0]) for c in fig.axes[0].collections}
    by_cluster = {c.get_label(): to_rgba(c.get_facecolor()[0]) for c in fig.axes[1].collections}
    for cluster in range(5):
        assert by_cluster[f"cluster {cluster}"] == by_class[str((cluster - 2) % 5)]
    assert by_cluster["cluster 7"] not in by_class.values()  # a colour of its own
    legend = {t.get_text(): to_rgba(h.get_color()) for t, h in zip(fig.legends[0].get_texts(),
              fig.legends[0].legend_handles, strict=True)}  # fmt: skip
    assert legend["3"] == by_class["3"]


def _two_datasets(runs: pd.DataFrame) -> pd.DataFrame:
    usps = runs.assign(dataset="usps", run_key=runs["run_key"] + "-usps", acc=runs["acc"] - 0.3)
    both = pd.concat([runs, usps], ignore_index=True)
    return both.assign(input_size=np.where(both.seed == 0, 8, 16))


def test_metric_vs_size_panels_of_one_metric_share_their_y_range(runs):
    fig = plots.size_curves(_two_datasets(runs))
    acc, nmi = fig.axes[0:2], fig.axes[2:4]
    assert acc[0].get_ylim() == acc[1].get_ylim() and nmi[0].get_ylim() == nmi[1].get_ylim()
    low, high = acc[0].get_ylim()
    finished = runs[runs.status == "FINISHED"]
    assert low <= finished["acc"].min() - 0.3 and finished["acc"].max() <= high  # both datasets fit
    # a difference of 0.001 stays small: the axis is at least 0.1 tall, inside [0, 1]
    flat = _two_datasets(runs).assign(nmi_geometric=lambda f: 0.95 + 0.001 * (f["input_size"] == 16))
    low, high = plots.size_curves(flat).axes[2].get_ylim()
    assert high - low >= plots.MIN_SPAN - 1e-9 and high <= 1 and low <= 0.95


def _bars(ax):
    return [line for line in ax.get_lines() if line.get_label() == plots.ZERO_HEIGHT]


def test_a_box_of_zero_height_is_drawn_as_a_bar_in_its_methods_colour(runs):
    runs = runs[runs.base_method != "flaky"]  # flaky finished one seed: a flat box too
    kmeans = runs.method == "kmeans (n_init=1)"
    flat = runs.assign(acc=np.where(kmeans, 0.7, runs["acc"]))  # every seed of it the same
    fig = plots.seed_spread(flat)
    acc_axis, nmi_axis = fig.axes
    (bar,) = _bars(acc_axis)
    assert bar.get_linewidth() >= 3 and list(bar.get_ydata()) == [0.7, 0.7]
    methods = sorted(flat.loc[flat.status == "FINISHED", "method"].unique())
    colour = to_rgba(
        plots.sns.color_palette(n_colors=len(methods))[methods.index(runs[kmeans].method.iloc[0])]
    )
    assert to_rgba(bar.get_color()) == colour
    # the bar lies where k-means' box is (seaborn's dodge), not beside it
    boxes = [p for p in acc_axis.patches if to_rgba(p.get_facecolor()) == colour]
    x0, x1 = bar.get_xdata()
    assert any(
        box.get_path().get_extents().x0 <= (x0 + x1) / 2 <= box.get_path().get_extents().x1 for box in boxes
    )
    assert "bar: " + plots.ZERO_HEIGHT in [t.get_text() for t in acc_axis.get_legend().get_texts()]
    spread = runs.assign(acc=0.3 + 0.1 * runs["seed"], nmi_geometric=0.2 + 0.2 * runs["seed"])
    fig = plots.seed_spread(spread)
    assert not _bars(fig.axes[0]) and not _bars(fig.axes[1])
    assert not any(t.get_text().startswith("bar") for t in fig.axes[0].get_legend().get_texts())


def test_the_short_cell_note_appears_only_where_a_cell_is_short(runs):
    row = {"dataset": "digits", "input_size": 8, "method": "kmeans", "n_seeds": 5, "acc_mean": 0.7,
           "acc_std": 0.01, "nmi_geometric_mean": 0.6, "nmi_geometric_std": 0.02}  # fmt: skip
    full = pd.DataFrame([{**row, "n_finished": 5, "n_failed": 0}])
    assert summary_table(full).caption is None
    short = pd.DataFrame([{**row, "n_finished": 5, "n_failed": 0}, {**row, "n_finished": 3, "n_failed": 2}])
    assert "3/5 means 3 of the 5 that ran (2 failed or were interrupted" in summary_table(short).caption
    # the tables' caption: flaky's failed seed makes a short cell; without flaky none is short
    assert "(n=k/N) marks cells" in tables.to_markdown(runs)
    assert "(n=k/N)" not in tables.to_markdown(runs[runs.base_method != "flaky"])
    assert "(n=k/N)" not in tables.to_latex(runs[runs.base_method != "flaky"])


def test_no_sweep_where_every_method_has_one_configuration(runs):
    assert sweeps(runs[runs.method != "kmeans (n_init=3)"]) == []


def test_sensitivity_figure_puts_the_parameters_values_on_x_one_panel_per_dataset(store):
    _, frame = store
    frame = frame[frame.base_method == "kmeans"]
    (sweep,) = sweeps(frame)
    assert (sweep.method, sweep.param, sweep.values, sweep.numeric) == ("kmeans", "n_init", ("1", "3"), True)
    defaults = json.loads(frame["param_defaults"].dropna().iloc[0])
    assert sweep.default == str(defaults["n_init"])
    two = pd.concat([frame, frame.assign(dataset="usps", run_key=frame["run_key"] + "-u")], ignore_index=True)
    (sweep,) = sweeps(two)
    fig = plots.sensitivity(sweep)
    assert len(fig.axes) == 4  # ACC and NMI rows × digits and usps columns
    assert [ax.get_title() for ax in fig.axes] == ["digits", "usps", "digits", "usps"]
    for ax in fig.axes:
        assert ax.get_xlabel() == "n_init"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"]
        assert list(ax.get_xticks()) == [1.0, 3.0]  # a number line, not categories
    assert [ax.get_ylabel() for ax in fig.axes] == ["ACC", "", "NMI (geom.)", ""]
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()
    # the seed spread: one dot per run (2 values × 2 seeds), a mean line through the two values
    dots = [c.get_offsets() for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    n_init = frame["config"].map(lambda c: float(json.loads(c)["n_init"]))
    assert sorted(map(tuple, np.concatenate(dots).tolist())) == sorted(zip(n_init, frame["acc"], strict=True))
    mean_line = max(fig.axes[0].get_lines(), key=lambda line: len(line.get_xdata()))
    assert list(mean_line.get_xdata()) == [1.0, 3.0]
    by_value = (
        frame.assign(v=frame["config"].map(lambda c: json.loads(c)["n_init"])).groupby("v")["acc"].mean()
    )
    assert list(mean_line.get_ydata()) == pytest.approx([by_value["1"], by_value["3"]])


def test_a_second_varying_setting_splits_the_lines(store):
    _, frame = store
    frame = frame[frame.base_method == "kmeans"]
    other = frame.assign(
        config=frame["config"].map(lambda c: json.dumps({**json.loads(c), "max_iter": "50"}, sort_keys=True)),
        run_key=frame["run_key"] + "-m",
    )
    found = {s.param: s for s in sweeps(pd.concat([frame, other], ignore_index=True))}
    assert set(found) == {"max_iter", "n_init"}
    assert sorted(found["n_init"].runs["line"].unique()) == ["max_iter=300", "max_iter=50"]
    fig = plots.sensitivity(found["n_init"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["max_iter=300", "max_iter=50"]


def test_plot_writes_the_sensitivity_figure(store, tmp_path, capsys):
    uri, frame = store
    written = make_figures(MlflowClient(tracking_uri=uri), frame, tmp_path, with_tsne=False)
    assert {"sensitivity-kmeans-n_init.png", "sensitivity-kmeans-n_init.pdf"} <= {p.name for p in written}
    assert main(["plot", "--tracking-uri", uri, "--out", str(tmp_path / "cli"), "--no-tsne"]) == 0
    assert str(tmp_path / "cli" / "sensitivity-kmeans-n_init.png") in capsys.readouterr().out.splitlines()
