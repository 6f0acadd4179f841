"""Figures from tracked runs, sized for a paper column (about 3.4 inches per panel).

Every figure shows the spread over seeds, never a single lucky seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness_reports.tables import METRIC_NAMES  # noqa: E402

PANEL = (3.4, 2.6)


def _theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "FINISHED"]


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
            ax.set_ylabel(METRIC_NAMES.get(metric, metric))
            ax.set_title(dataset)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat:
        if ax.get_legend():
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside right center", frameon=False)
    fig.suptitle("Metric against input size: mean ± sample std over seeds, one dot per seed", fontsize=9)
    return fig


def seed_spread(runs: pd.DataFrame, metrics: Sequence[str] = ("acc", "nmi_geometric")) -> plt.Figure:
    """Per method × dataset: a box over seeds with every seed as a dot."""
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
    fig, axes = plt.subplots(
        len(metrics),
        1,
        figsize=(max(PANEL[0], 1.1 * len(cells) + 1.5), PANEL[1] * len(metrics)),
        squeeze=False,
    )
    for i, metric in enumerate(metrics):
        ax = axes[i][0]
        sns.boxplot(data=done, x="cell", y=metric, hue="method", order=cells, fliersize=0, ax=ax)
        sns.stripplot(
            data=done,
            x="cell",
            y=metric,
            hue="method",
            order=cells,
            dodge=True,
            size=2.5,
            palette=dict.fromkeys(done["method"].unique(), "0.2"),
            legend=False,
            ax=ax,
        )
        ax.set_xlabel("")
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        if i and ax.get_legend():
            ax.get_legend().remove()
    _legend_on_top(axes[0][0])
    fig.tight_layout()
    return fig


def _legend_on_top(ax: plt.Axes) -> None:
    if ax.get_legend() is not None:
        n = len(ax.get_legend().get_texts())
        sns.move_legend(
            ax, "lower center", bbox_to_anchor=(0.5, 1.08), ncol=min(n, 4), title=None, frameon=False
        )


CURVE_NAMES = {"curve/acc": "ACC", "curve/loss": "loss", "curve/pretrain_loss": "pretraining loss"}


def training_curves(histories: pd.DataFrame, title: str | None = None) -> plt.Figure:
    """ACC, loss and pretraining loss against iteration, one line per seed.

    ``histories`` has columns seed, key (``curve/acc``, ``curve/loss``, ``curve/pretrain_loss``),
    step, value. The pretraining loss shows a collapse (a flat line at its start value). A curve
    with one point per seed is drawn as dots on an axis from iteration 0, not as a line around it.
    """
    _theme()
    keys = [k for k in CURVE_NAMES if k in set(histories["key"])]
    keys += sorted(set(histories["key"]) - set(keys))
    fig, axes = plt.subplots(1, len(keys), figsize=(PANEL[0] * len(keys), PANEL[1]), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        data = histories[histories["key"] == key]
        common = dict(data=data, x="step", y="value", hue="seed", palette="viridis", ax=ax)
        if data["step"].nunique() > 1:
            sns.lineplot(**common, units="seed", estimator=None, linewidth=1, marker="o", markersize=3)
        else:
            sns.scatterplot(**common, s=25)
            ax.set_xlim(0, max(1, data["step"].iloc[0]) * 1.1)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("pretraining epoch" if key == "curve/pretrain_loss" else "iteration")
        ax.set_ylabel(CURVE_NAMES.get(key, key.removeprefix("curve/")))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def tsne(
    embedding: np.ndarray,
    labels_true: np.ndarray,
    labels_pred: np.ndarray,
    *,
    max_points: int = 3000,
    seed: int = 0,
) -> plt.Figure:
    """t-SNE of a learned embedding on a seeded subsample, coloured by class and by cluster."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(embedding), size=min(max_points, len(embedding)), replace=False))
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(embedding[idx])
    _theme()
    fig, axes = plt.subplots(1, 2, figsize=(PANEL[0] * 2, PANEL[0]))
    for ax, labels, title in (
        (axes[0], labels_true, "true class"),
        (axes[1], labels_pred, "predicted cluster"),
    ):
        ax.scatter(xy[:, 0], xy[:, 1], c=labels[idx], cmap="tab20", s=3, linewidths=0)
        ax.set_title(f"{title} ({len(idx):,} points)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


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
