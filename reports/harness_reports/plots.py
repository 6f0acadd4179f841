"""Figures from tracked runs, sized for a paper column (about 3.4 inches per panel).

Every figure shows the spread over seeds, never a single lucky seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.artist
import matplotlib.lines
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness_reports.sensitivity import Sweep  # noqa: E402
from harness_reports.tables import METRIC_NAMES  # noqa: E402

PANEL = (3.4, 2.6)
MIN_SPAN = 0.1
"""The least y range of a score panel: a 0.001 difference drawn over the whole height looks like a
trend; within 0.1 it looks as small as it is."""


def _theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "FINISHED"]


def _at_least_min_span(axes: Sequence[plt.Axes], scores: pd.Series) -> None:
    """Widen the y range the ``axes`` share (one metric, whose values are ``scores``) to
    :data:`MIN_SPAN` where the scores lie in [-1, 1] and span less, keeping it inside [0, 1]
    where the scores do."""
    low, high = axes[0].get_ylim()
    values = scores.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if not values.size or values.min() < -1 or values.max() > 1 or high - low >= MIN_SPAN:
        return
    middle = (low + high) / 2
    low, high = middle - MIN_SPAN / 2, middle + MIN_SPAN / 2
    if values.min() >= 0 and values.max() <= 1:  # a score in [0, 1]: a window inside it
        shift = max(0.0, -low) - max(0.0, high - 1)
        low, high = low + shift, high + shift
    for ax in axes:
        ax.set_ylim(low, high)


def size_curves(runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> plt.Figure | None:
    """Metric against input size per method: mean line, ± 1 sample std band, one dot per seed.

    ``None`` when no dataset was run at more than one size.
    """
    done = _finished(runs)
    varying = [d for d, g in done.groupby("dataset") if g["input_size"].nunique() > 1]
    if not varying:
        return None
    _theme()
    done = done[done["dataset"].isin(varying)]
    fig, axes = plt.subplots(
        len(metrics),
        len(varying),
        figsize=(1.3 * PANEL[0] * len(varying) + 2.5, PANEL[1] * len(metrics)),
        squeeze=False,
        sharey="row",  # one metric, one y range: the panels compare at a glance
        layout="constrained",  # keeps the panels wide beside a legend of long configuration names
    )
    for j, dataset in enumerate(varying):
        data = done[done["dataset"] == dataset]
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            sns.lineplot(data=data, x="input_size", y=metric, hue="method", errorbar="sd", marker="o", ax=ax)
            sns.scatterplot(  # every seed, at its exact size (no jitter on a log axis)
                data=data, x="input_size", y=metric, hue="method", alpha=0.4, s=10, legend=False, ax=ax
            )
            ax.set_xscale("log", base=2)  # sizes such as 28, 32, 48, 64, 96, 128 spread evenly
            ax.set_xticks(sorted(data["input_size"].unique()))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xlabel("input size (px per side)")
            ax.set_ylabel(METRIC_NAMES.get(metric, metric) if j == 0 else "")
            ax.set_title(dataset)
    for row, metric in zip(axes, metrics, strict=True):
        _at_least_min_span(row, done[metric])
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat:
        if ax.get_legend():
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside right center", frameon=False)
    fig.suptitle(
        "Metric against input size: mean ± sample std over seeds, one dot per seed; "
        f"one y range per metric, at least {MIN_SPAN:g} tall",
        fontsize=9,
    )
    return fig


def seed_spread(runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> plt.Figure:
    """Per method × dataset: a box over seeds with every seed as a dot.

    Where a box is too flat to see (all seeds scored the same, or their middle half lies within
    :data:`FLAT` of the axis height), hidden under its own median line, a thick bar in the
    method's colour stands for it, so that it never reads as missing.
    """
    _theme()
    done = _finished(runs).assign(
        cell=lambda f: (
            f["dataset"]
            + np.where(
                f.groupby("dataset")["input_size"].transform("nunique") > 1,
                " " + f["input_size"].astype(str) + "px",
                "",
            )
        )
    )
    cells = list(dict.fromkeys(done.sort_values(["dataset", "input_size"])["cell"]))
    methods = sorted(done["method"].unique())
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods)), strict=True))
    width = max(PANEL[0], 1.1 * len(cells) + 1.5)
    fig, axes = plt.subplots(
        len(metrics),
        1,
        figsize=(width, PANEL[1] * len(metrics) + 0.4),
        squeeze=False,
        layout="constrained",  # makes room for the legend above, which tight_layout cannot
    )
    for i, metric in enumerate(metrics):
        ax = axes[i][0]
        common = dict(data=done, x="cell", y=metric, hue="method", order=cells, hue_order=methods, ax=ax)
        sns.boxplot(**common, palette=palette, saturation=1, fliersize=0)  # bars match boxes
        sns.stripplot(**common, dodge=True, size=2.5, palette=dict.fromkeys(methods, "0.2"), legend=False)
        _mark_zero_height_boxes(ax, done, metric, cells, methods, palette)
        ax.set_xlabel("")
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        if ax.get_legend():
            ax.get_legend().remove()
    handles: list[matplotlib.artist.Artist] = [
        matplotlib.patches.Patch(facecolor=palette[m], edgecolor="0.3", label=m) for m in methods
    ]
    if any(line.get_label() == ZERO_HEIGHT for ax in axes.flat for line in ax.get_lines()):
        handles.append(matplotlib.lines.Line2D([], [], color="0.3", linewidth=4, label=f"bar: {ZERO_HEIGHT}"))
    # the bar's colour says whose box it is; the dots over it are every seed, as elsewhere
    axes[0][0].legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.02),
        ncol=max(1, min(len(handles), int(width // 1.7))),  # as many columns as fit the width
        frameon=False,
    )
    return fig


ZERO_HEIGHT = "flat box (seeds ≈ equal)"
"""The label of the bar that stands for a box of (almost) zero height."""
FLAT = 0.01
"""A box whose height is under this share of its axis is drawn as a bar."""


def _mark_zero_height_boxes(
    ax: plt.Axes,
    done: pd.DataFrame,
    metric: str,
    cells: list[str],
    methods: list[str],
    palette: dict[str, tuple[float, float, float]],
) -> None:
    width = 0.8 / len(methods)  # seaborn's dodge: the methods share 0.8 of each category's slot
    offsets = np.linspace(0, 0.8 - width, len(methods)) - (0.8 - width) / 2
    low, high = ax.get_ylim()
    for (cell, method), group in done.groupby(["cell", "method"]):
        values = group[metric].dropna()
        if values.empty or values.quantile(0.75) - values.quantile(0.25) >= FLAT * (high - low):
            continue
        x = cells.index(cell) + offsets[methods.index(method)]
        ax.plot(
            [x - width / 2, x + width / 2],
            [values.median()] * 2,
            color=palette[method],
            linewidth=4,
            solid_capstyle="butt",
            zorder=3,
            label=ZERO_HEIGHT,
        )


CURVE_NAMES = {"curve/loss": "loss", "curve/pretrain_loss": "pretraining loss"}
"""Axis labels of the curves the built-in methods log; a score's curve (``curve/acc``) is named as
the score is in tables, any other curve by its own name."""
CURVE_STEPS = {"curve/pretrain_loss": "pretraining epoch"}
CURVES_PER_ROW = 4


def curve_name(key: str) -> str:
    """The axis label of a curve: ``curve/acc`` is ACC, a plugin's ``curve/margin`` is margin."""
    bare = key.removeprefix("curve/")
    return CURVE_NAMES.get(key) or METRIC_NAMES.get(bare, bare)


def _curve_order(keys: set[str]) -> list[str]:
    scores = [f"curve/{m}" for m in METRIC_NAMES if f"curve/{m}" in keys]
    known = [k for k in CURVE_NAMES if k in keys]
    return scores + known + sorted(keys - set(scores) - set(known))


def training_curves(histories: pd.DataFrame, title: str | None = None) -> plt.Figure:
    """Every curve the runs logged against its step, one line per seed, one panel per curve.

    ``histories`` has columns seed, key (``curve/acc``, ``curve/loss``, a plugin's own
    ``curve/...``), step, value. The scores come first, then loss and pretraining loss, then the
    rest by name, at most four panels a row. The pretraining loss shows a collapse (a flat line at
    its start value). A curve with one point per seed is drawn as dots on an axis from step 0, not
    as a line around it.
    """
    _theme()
    keys = _curve_order(set(histories["key"]))
    ncols = min(len(keys), CURVES_PER_ROW)
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL[0] * ncols, PANEL[1] * nrows), squeeze=False)
    for ax in axes.flat[len(keys) :]:
        ax.remove()
    seeds = sorted(histories["seed"].unique())
    colours = dict(zip(seeds, sns.color_palette("viridis", n_colors=len(seeds)), strict=True))
    for ax, key in zip(axes.flat, keys, strict=False):
        data = histories[histories["key"] == key]
        common = dict(data=data, x="step", y="value", hue="seed", palette=colours, ax=ax)
        if data["step"].nunique() > 1:
            sns.lineplot(**common, units="seed", estimator=None, linewidth=1, marker="o", markersize=3)
        else:
            sns.scatterplot(**common, s=25)
            ax.set_xlim(0, max(1, data["step"].iloc[0]) * 1.1)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        builtin = key in CURVE_NAMES or key.removeprefix("curve/") in METRIC_NAMES
        ax.set_xlabel(CURVE_STEPS.get(key, "iteration" if builtin else "step"))
        ax.set_ylabel(curve_name(key))
    for ax in fig.axes:
        if ax.get_legend():
            ax.get_legend().remove()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.legend(  # one legend for every panel, right of them
        handles=[
            matplotlib.lines.Line2D([], [], color=colours[s], marker="o", markersize=3, label=str(s))
            for s in seeds
        ],
        title="seed",
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    return fig


def _palette(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinct colours: tab10, tab20, or evenly spaced hues beyond 20."""
    name = "tab10" if n <= 10 else "tab20" if n <= 20 else "husl"
    return list(sns.color_palette(name, n_colors=n))


def matched_colours(
    labels_true: np.ndarray, labels_pred: np.ndarray
) -> tuple[dict[int, tuple[float, float, float]], dict[int, tuple[float, float, float]], dict[int, int]]:
    """``(class colours, cluster colours, cluster → matched class)``.

    Each cluster takes the colour of the class the Hungarian assignment on the contingency table
    matches it to (the matching ACC scores), so the class panel and the cluster panel of a t-SNE
    can be compared by eye. Clusters left over (more clusters than classes) get colours no class
    has.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    classes, clusters = np.unique(labels_true), np.unique(labels_pred)
    table = contingency_matrix(labels_true, labels_pred)  # rows: sorted classes, columns: sorted clusters
    rows, cols = linear_sum_assignment(table, maximize=True)
    matched = {int(clusters[c]): int(classes[r]) for r, c in zip(rows, cols, strict=True)}
    extra = [int(k) for k in clusters if int(k) not in matched]
    colours = _palette(len(classes) + len(extra))
    by_class = {int(c): colours[i] for i, c in enumerate(classes)}
    by_cluster = {k: by_class[c] for k, c in matched.items()}
    by_cluster |= {k: colours[len(classes) + i] for i, k in enumerate(extra)}
    return by_class, by_cluster, matched


def tsne(
    embedding: np.ndarray,
    labels_true: np.ndarray,
    labels_pred: np.ndarray,
    *,
    max_points: int = 3000,
    seed: int = 0,
) -> plt.Figure:
    """t-SNE of a learned embedding on a seeded subsample, coloured by class and by cluster.

    A cluster has the colour of its Hungarian-matched class (:func:`matched_colours`); one legend
    names the classes and any cluster that no class matched.
    """
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(embedding), size=min(max_points, len(embedding)), replace=False))
    xy = TSNE(
        n_components=2, init="pca", random_state=seed, perplexity=min(30, (len(idx) - 1) / 3)
    ).fit_transform(embedding[idx])
    by_class, by_cluster, matched = matched_colours(labels_true, labels_pred)
    _theme()
    fig, axes = plt.subplots(1, 2, figsize=(PANEL[0] * 2, PANEL[0]), layout="constrained")
    for ax, labels, colours, title in (
        (axes[0], labels_true[idx], by_class, "true class"),
        (axes[1], labels_pred[idx], by_cluster, "predicted cluster, coloured as its matched class"),
    ):
        for label, colour in colours.items():
            at = labels == label
            name = str(label) if ax is axes[0] else f"cluster {label}"
            ax.scatter(xy[at, 0], xy[at, 1], color=colour, s=3, linewidths=0, label=name)
        ax.set_title(f"{title} ({len(idx):,} points)", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        matplotlib.lines.Line2D([], [], marker="o", linestyle="", color=c, markersize=5, label=str(k))
        for k, c in by_class.items()
    ]
    handles += [
        matplotlib.lines.Line2D(
            [], [], marker="o", linestyle="", color=c, markersize=5, label=f"cluster {k} (no class)"
        )
        for k, c in by_cluster.items()
        if k not in matched
    ]
    fig.legend(
        handles=handles,
        title="class",
        loc="outside right center",
        ncol=1 if len(handles) <= 12 else 2,
        frameon=False,
        fontsize=7,
        title_fontsize=8,
    )
    return fig


def sensitivity(sweep: Sweep, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> plt.Figure:
    """A metric against the values of one method parameter, one panel per dataset (columns) and
    metric (rows): mean ± 1 sample std band over seeds, one dot per seed, one line per setting of
    whatever else varies (:class:`~harness_reports.sensitivity.Sweep`), a dotted line at the
    parameter's declared default. Numbers lie on a number line (log where they span a factor of
    10 or more), other values are evenly spaced."""
    _theme()
    position = {v: float(v) if sweep.numeric else float(i) for i, v in enumerate(sweep.values)}
    data = sweep.runs.assign(x=sweep.runs["value"].map(position))
    datasets = sorted(data["dataset"].unique())
    lines = list(dict.fromkeys(data.sort_values("line_order")["line"]))
    hue = "line" if len(lines) > 1 else None
    xs = sorted(position.values())
    log = sweep.numeric and xs[0] > 0 and xs[-1] / xs[0] >= 10
    default_x = _default_position(sweep, position)
    fig, axes = plt.subplots(
        len(metrics),
        len(datasets),
        figsize=(1.1 * PANEL[0] * len(datasets) + (2.5 if hue else 0), PANEL[1] * len(metrics)),
        squeeze=False,
        sharey="row",
        layout="constrained",
    )
    for j, dataset in enumerate(datasets):
        part = data[data["dataset"] == dataset]
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            common = dict(data=part, x="x", y=metric, hue=hue, hue_order=lines if hue else None, ax=ax)
            sns.lineplot(**common, errorbar="sd", marker="o")
            sns.scatterplot(**common, alpha=0.4, s=10, legend=False)
            if log:
                ax.set_xscale("log")
            ax.set_xticks([position[v] for v in sweep.values], list(sweep.values))
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            if default_x is not None:
                ax.axvline(default_x, color="0.4", linestyle=":", linewidth=1, zorder=0)
            ax.set_xlabel(sweep.param)
            ax.set_ylabel(METRIC_NAMES.get(metric, metric) if j == 0 else "")
            ax.set_title(dataset)
            if ax.get_legend():
                ax.get_legend().remove()
    for row, metric in zip(axes, metrics, strict=True):
        _at_least_min_span(row, data[metric])
    if hue:
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", frameon=False)
    default = ""
    if sweep.default is not None:
        default = f"; dotted: the default ({sweep.default})" if default_x is not None else ""
        default = default or f"; the default ({sweep.default}) lies outside these values"
    fig.suptitle(
        f"{sweep.method}: sensitivity to {sweep.param}, mean ± sample std over seeds, "
        f"one dot per seed{default}",
        fontsize=9,
    )
    return fig


def _default_position(sweep: Sweep, position: dict[str, float]) -> float | None:
    """Where the parameter's default lies on the x axis, ``None`` where it is not on it."""
    if sweep.default is None:
        return None
    if sweep.default in position:
        return position[sweep.default]
    if not sweep.numeric:
        return None
    try:
        default = float(sweep.default)
    except ValueError:
        return None
    return default if min(position.values()) <= default <= max(position.values()) else None


def save(fig: plt.Figure, path: Path) -> list[Path]:
    """Write ``path``.png (200 dpi) and ``path``.pdf (``path`` without a suffix); return both."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".pdf"):
        target = path.with_name(path.name + suffix)  # not with_suffix: a slug may hold a "."
        fig.savefig(target, dpi=200, bbox_inches="tight")
        out.append(target)
    plt.close(fig)
    return out
