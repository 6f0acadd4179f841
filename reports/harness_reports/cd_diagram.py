"""Critical-difference diagrams (Demšar 2006): the columns' average ranks on one axis, joined by a
bar where the post-hoc test does not separate them. Drawn by scikit-posthocs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import scikit_posthocs as sp  # noqa: E402
from matplotlib.transforms import ScaledTranslation  # noqa: E402

from harness_reports.posthoc import ALPHA, SEEDS, Analysis  # noqa: E402
from harness_reports.tables import METRIC_NAMES  # noqa: E402


def cd_diagram(analysis: Analysis, alpha: float = ALPHA) -> plt.Figure:
    """The diagram of one analysis: bars join columns that Wilcoxon–Holm does not separate at
    ``alpha`` (the test Benavoli et al. 2016 advise over Nemenyi's), and the bar labelled CD is
    Nemenyi's critical difference, for readers who know the classic diagram. The title says the
    metric, the blocks and the Friedman p-value."""
    if not analysis.tested:
        raise ValueError(
            f"{analysis.metric}: no diagram with {analysis.n_blocks} complete block(s) of "
            f"{len(analysis.ranks)} column(s)"
        )
    k = len(analysis.ranks)
    fig, ax = plt.subplots(figsize=(7.0, 1.6 + 0.32 * math.ceil(k / 2)))
    cd = analysis.critical_difference
    sp.critical_difference_diagram(
        analysis.ranks,
        analysis.wilcoxon_holm.fillna(1.0),
        alpha=alpha,
        ax=ax,
        label_fmt_left="{label} ({rank:.2f})",
        label_fmt_right="({rank:.2f}) {label}",
        label_props={"fontsize": 8},
    )
    ax.set_xlim(1 - 0.05 * k, k + 0.05 * k)  # the whole scale of ranks, 1 to k
    ax.set_xticks(range(1, k + 1))
    ax.tick_params(axis="x", labelsize=8)
    if cd <= k - 1:  # a CD wider than the axis would only mislead
        _cd_bar(ax, 1.0, cd)
    name = METRIC_NAMES.get(analysis.metric, analysis.metric)
    blocks = f"{analysis.n_blocks} blocks ({analysis.blocks}{', seeds paired' if analysis.blocks == SEEDS else ''})"
    friedman = ""
    if analysis.friedman is not None:
        friedman = f"; Friedman p = {analysis.friedman[1]:.3g}"
    cd_text = f"CD: Nemenyi, {cd:.2f}" if cd <= k - 1 else f"Nemenyi CD {cd:.2f} exceeds the axis"
    ax.set_title(
        f"{name}: average rank over {blocks}, 1 = best{friedman}\n"
        f"bars: not separated by Wilcoxon–Holm at α = {alpha}; {cd_text}",
        fontsize=8,
        pad=40,
    )
    return fig


def _cd_bar(ax: plt.Axes, start: float, cd: float) -> None:
    """Nemenyi's critical difference as a bar above the rank axis's tick labels (scikit-posthocs
    draws it half a row above the axis, over the labels), from rank 1 rightwards, as Demšar drew it."""
    above = ax.transData + ScaledTranslation(0, 24 / 72, ax.figure.dpi_scale_trans)
    ax.plot([start, start + cd], [0, 0], color="k", linewidth=1.5, transform=above, clip_on=False)
    ax.plot([start] * 2, [-0.1, 0.1], color="k", linewidth=1.5, transform=above, clip_on=False)
    ax.plot([start + cd] * 2, [-0.1, 0.1], color="k", linewidth=1.5, transform=above, clip_on=False)
    label = ax.transData + ScaledTranslation(0, 28 / 72, ax.figure.dpi_scale_trans)
    ax.text(start + cd / 2, 0, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8, transform=label)


def write_cd_diagrams(analyses: list[Analysis], stem: Path) -> list[Path]:
    """``<stem>.cd-<metric>.png``/``.pdf`` per metric (dataset × size blocks), and
    ``<stem>.cd-<metric>-seeds.png``/``.pdf`` for the seed blocks; returns the files written."""
    from harness_reports.figures import slug
    from harness_reports.plots import save

    written = []
    for analysis in analyses:
        if not analysis.tested:
            continue
        suffix = "-seeds" if analysis.blocks == SEEDS else ""
        path = stem.with_name(f"{stem.name}.cd-{slug(analysis.metric)}{suffix}")
        written += save(cd_diagram(analysis), path)
    return written
