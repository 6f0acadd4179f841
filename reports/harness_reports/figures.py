"""Every figure of a set of runs, read from MLflow and written as PNG + PDF."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness import record
from harness_reports import plots
from harness_reports.identities import split_identities
from harness_reports.sensitivity import sweeps


def slug(name: str) -> str:
    """A file-name-safe form of a method, configuration or dataset name (letters, digits, ``-``,
    ``_``, ``.``): configuration names hold spaces, commas, parentheses, ``=`` and even paths
    (``ae_weights=/x/w.h5``). A name that had to change gets a short hash of itself, so that two
    configurations never share a file."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_"
    if safe == name:
        return safe
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def histories(client, runs: pd.DataFrame) -> pd.DataFrame:
    """Every curve (metric under ``curve/``) the given runs logged, as a long frame: a plugin's own
    curves as well as the built-in ones."""
    rows = []
    for run in runs.itertuples():
        logged = client.get_run(run.run_id).data.metrics
        for key in sorted(k for k in logged if k.startswith(record.CURVE_PREFIX)):
            for m in client.get_metric_history(run.run_id, key):
                rows.append(
                    {"run_id": run.run_id, "seed": run.seed, "key": key, "step": m.step, "value": m.value}
                )
    return pd.DataFrame(rows, columns=["run_id", "seed", "key", "step", "value"])


def _embedding(client, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    names = {a.path for a in client.list_artifacts(run_id)}
    if not {"embedding.npy", "labels_true.npy", "labels.npy"} <= names:
        return None
    return tuple(
        np.load(client.download_artifacts(run_id, n))
        for n in ("embedding.npy", "labels_true.npy", "labels.npy")
    )


def make_figures(client, runs: pd.DataFrame, out_dir: Path, *, with_tsne: bool = True) -> list[Path]:
    """Write the figures for ``runs`` (a :func:`~harness_reports.load_runs` frame) under ``out_dir``."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    runs, _ = split_identities(runs)  # one identity per configuration, dataset and size
    done = runs[runs["status"] == "FINISHED"]
    if done.empty:
        return written
    fig = plots.size_curves(done)
    if fig is not None:
        written += plots.save(fig, out_dir / "metric-vs-size")
    written += plots.save(plots.seed_spread(done), out_dir / "seed-spread")
    for sweep in sweeps(done):
        fig = plots.sensitivity(sweep)
        written += plots.save(fig, out_dir / f"sensitivity-{slug(sweep.method)}-{slug(sweep.param)}")
    for (method, dataset, size), cell in done.groupby(["method", "dataset", "input_size"]):
        stem = f"{slug(method)}-{slug(dataset)}-{size}"
        curves = histories(client, cell)
        if not curves.empty:
            fig = plots.training_curves(curves, title=f"{method} on {dataset} ({size} px)")
            written += plots.save(fig, out_dir / f"curves-{stem}")
        if with_tsne:
            first = cell.sort_values("seed").iloc[0]
            arrays = _embedding(client, first.run_id)
            if arrays is not None:
                fig = plots.tsne(*arrays, seed=int(first.seed))
                fig.suptitle(f"{method} on {dataset} ({size} px), seed {first.seed}", fontsize=8, y=1.03)
                written += plots.save(fig, out_dir / f"tsne-{stem}-seed{first.seed}")
    return written
