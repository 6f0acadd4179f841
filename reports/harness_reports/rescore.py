"""Scores computed after the fact: a metric a run was not scored with, from the arrays it stored.

A run keeps its labels (``labels.npy``), the truth (``labels_true.npy``) and, where the method
gave one, its embedding (``embedding.npy``). ``harness report --metrics ami`` on runs recorded
before AMI existed (or before a metric plugin was installed) computes the score from those with
:func:`harness.metrics.score_run`, the function the worker calls, so the number is the one the run
would have logged. A plugin metric whose code changed since a run was scored (its recorded digest,
``harness.metric_identities``, differs from the installed plugin's) is computed again the same way,
so a column never mixes two versions of a metric. Runs older than ``labels_true.npy`` on every run
take the truth from the dataset plugin; an internal metric on the input rebuilds the input from
the dataset, as the worker does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.identity import metric_identity
from harness.metrics import RunArrays, score_run
from harness.plugins import Registry
from harness.preprocess import prepare
from harness.types import Dataset, MetricSpec

ArrayReader = Callable[[str, str], np.ndarray | None]
"""``read(run_id, stem)``: a stored array of a run (``"labels"``, ...), or ``None`` if it has none."""


def mlflow_reader(client: Any, directory: Path) -> ArrayReader:
    """Read a run's arrays from its MLflow artifacts, downloaded into ``directory``."""
    listed: dict[str, set[str]] = {}

    def read(run_id: str, stem: str) -> np.ndarray | None:
        if run_id not in listed:
            listed[run_id] = {a.path for a in client.list_artifacts(run_id)}
        name = f"{stem}.npy"
        if name not in listed[run_id]:
            return None
        target = directory / run_id
        target.mkdir(parents=True, exist_ok=True)
        return np.load(client.download_artifacts(run_id, name, str(target)))

    return read


@dataclass
class _Sources:
    """The data of one report: stored arrays per run, and datasets loaded once where needed."""

    read: ArrayReader
    registry: Registry
    data_dir: Path | None
    datasets: dict[str, Dataset | str] = field(default_factory=dict)
    """Dataset name → the loaded dataset, or why it could not be loaded."""
    stored: dict[tuple[str, str], np.ndarray | None] = field(default_factory=dict)

    def dataset(self, name: str) -> Dataset | str:
        if name not in self.datasets:
            try:
                from harness.data import resolve_data_dir

                spec = self.registry.dataset(name)
                self.datasets[name] = spec.load(
                    resolve_data_dir(None if self.data_dir is None else str(self.data_dir))
                )
            except Exception as exc:  # noqa: BLE001 - said in the note; the report goes on
                self.datasets[name] = (
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                )
        return self.datasets[name]

    def array(self, run_id: str, stem: str) -> np.ndarray | None:
        if (run_id, stem) not in self.stored:
            self.stored[run_id, stem] = self.read(run_id, stem)
        return self.stored[run_id, stem]

    def arrays(self, run: pd.Series, needs: str) -> tuple[RunArrays | None, str]:
        """The arrays of one run for a metric that ``needs`` labels_true, embedding or input, or
        ``None`` and why not (``""``: the run has no embedding, the method gave none)."""
        embedding = self.array(run["run_id"], "embedding")
        if needs == "embedding" and embedding is None:
            return None, ""
        labels = self.array(run["run_id"], "labels")
        if labels is None:
            return None, "no labels.npy"
        truth = self.array(run["run_id"], "labels_true")
        if truth is None and needs == "labels_true":
            loaded = self.dataset(run["dataset"])
            if isinstance(loaded, str):
                return None, f"no labels_true.npy and dataset {run['dataset']!r} not loaded ({loaded})"
            truth = loaded.labels.astype(np.int64)

        def flat_input() -> np.ndarray | None:
            loaded = self.dataset(run["dataset"])
            if isinstance(loaded, str):
                raise ValueError(f"the input needs dataset {run['dataset']!r}, not loaded ({loaded})")
            resize_filter = json.loads(run["config"] or "{}").get("resize_filter", "none")
            return prepare(loaded, int(run["input_size"]), str(resize_filter), "flat")

        return RunArrays(labels, truth, embedding, flat_input), ""


def _stale(run: pd.Series, name: str, identity: str | None) -> bool:
    """Whether the run's value of ``name`` is missing, or came from other code than ``identity``."""
    value = run.get(name, float("nan"))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if identity is None:  # a metric of the core: the core identity, part of the run key, covers it
        return False
    recorded = json.loads(run.get("metric_identities") or "{}")
    return name in recorded and recorded[name] != identity


def fill_metrics(
    runs: pd.DataFrame,
    registry: Registry,
    names: Iterable[str],
    read: ArrayReader,
    *,
    data_dir: Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """``runs`` with the metrics ``names`` filled in for finished runs that lack them (or whose
    plugin metric's code changed), and one note per metric saying what was computed and what could
    not be. Metrics ``registry`` does not have (``runtime_s``) are left as they are."""
    specs: list[MetricSpec] = [registry.metrics[n][0] for n in names if n in registry.metrics]
    if not specs:
        return runs, []
    runs = runs.copy()
    sources = _Sources(read, registry, data_dir)
    notes = []
    for spec in specs:
        identity = metric_identity(spec, registry.metrics[spec.name][1])
        if spec.name not in runs:
            runs[spec.name] = float("nan")
        todo = [
            i
            for i, run in runs.iterrows()
            if run["status"] == "FINISHED" and _stale(run, spec.name, identity)
        ]
        computed, missing, failed = 0, 0, []
        for i in todo:
            arrays, why = sources.arrays(runs.loc[i], spec.needs)
            scores, problems = score_run([spec], arrays) if arrays is not None else ({}, [why] if why else [])
            if spec.name in scores:
                runs.at[i, spec.name] = scores[spec.name]
                computed += 1
                continue
            runs.at[i, spec.name] = float("nan")
            if problems:
                failed.extend(problems)
            else:
                missing += 1
        if computed:
            notes.append(f"{spec.name}: computed after the fact from the stored arrays for {computed} run(s)")
        if missing:
            notes.append(f"{spec.name}: {missing} run(s) lack the {spec.needs} it scores: left empty")
        if failed:
            notes.append(f"{spec.name}: not computed for {len(failed)} run(s): {failed[0]}")
    return runs, notes
