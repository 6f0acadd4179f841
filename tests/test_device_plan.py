"""The device plan (benchmarks/device_plan.py) on the CPU at a tiny budget: its calls resume where
the last one stopped, re-run nothing finished, and its runs are imported exactly once.

Two device calls are played here as they happen there: ``run`` writes its files into an empty
folder (the call's $OUT) from the carried state; ``home`` unpacks them here and imports them.
The cells are k-means on digits (seconds each); the plan's mechanics do not depend on the method.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parent.parent

PLAN = {
    "call_budget_s": 300,
    "probe": None,
    "cells": [
        {
            "name": "first",
            "args": {
                "methods": ["kmeans"],
                "datasets": ["digits"],
                "seeds": "0-1",
                "experiment": "plan-first",
            },
            "params": {"kmeans.n_init": 1},
            "stack": 1,
            "seconds_per_seed": 1,
        },
        {
            "name": "sizes",
            "args": {
                "methods": ["kmeans"],
                "datasets": ["digits"],
                "seeds": "0-1",
                "experiment": "plan-sizes",
            },
            "params": {"kmeans.n_init": 1},
            "stack": 1,
            "seconds_per_seed": 1,
            "per_size": True,
        },
    ],
}


@pytest.fixture
def plan_module(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("device_plan", ROOT / "benchmarks" / "device_plan.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "device_plan", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "STATE", tmp_path / "state")  # what travels to the device
    monkeypatch.setattr(module, "HOME", tmp_path / "home")  # the full journals, here
    monkeypatch.setenv("DEVPLAN_WORK", str(tmp_path / "work"))
    plan = json.loads(json.dumps(PLAN))
    plan["cells"][1]["args"]["sizes"] = [4, 8]  # 8 px is native: the same run keys as "first"
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return module, path


def _packed_keys(out: Path) -> list[str]:
    keys = []
    for part in sorted(out.glob("runs-*.tar.gz")):
        with tarfile.open(part) as tar:
            keys += [Path(n).parent.name for n in tar.getnames() if n.endswith("record.json")]
    return keys


def _job_runs(uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'job'") if exp else []


@pytest.mark.slow  # six `harness run` processes: 2-5 minutes on the shared 2-core machine
def test_calls_resume_and_import_exactly_once(plan_module, tmp_path):
    module, plan = plan_module
    uri = f"sqlite:///{tmp_path / 'store.db'}"

    # call 1 stops after its first chunk (as a call whose budget ran out would)
    out1 = tmp_path / "out1"
    assert module.main(["run", "--plan", str(plan), "--out", str(out1), "--max-chunks", "1"]) == 0
    first = _packed_keys(out1)
    assert len(first) == 2  # seeds 0 and 1 of the first cell
    assert module.home(out1, uri)["first"]["finished"] == 2
    again = module.home(out1, uri)  # the same files brought home twice: nothing new
    assert again["first"] == {"total": 2, "skipped": 2, "finished": 0, "failed": 0, "killed": 0}
    assert len(_job_runs(uri, "plan-first")) == 2

    # call 2 starts from the carried state: the first cell is done, the sizes follow one by one
    out2 = tmp_path / "out2"
    assert module.main(["run", "--plan", str(plan), "--out", str(out2)]) == 0
    second = _packed_keys(out2)
    # nothing the first call finished is run again; the sizes cell's native-size runs have the same
    # run keys as the first cell's, but are the sizes cell's own (another experiment)
    assert len(second) == 4 and len(set(second) - set(first)) == 2
    chunks = json.loads((out2 / "plan.json").read_text())["calls"][-1]["chunks"]
    assert [(c["cell"], c["size"], c["seeds"]) for c in chunks] == [
        ("sizes", 4, [0, 1]),
        ("sizes", 8, [0, 1]),
    ]
    counts = module.home(out2, uri)
    assert counts["first"]["finished"] == 0 and counts["sizes"]["finished"] == 4
    assert len(_job_runs(uri, "plan-first")) == 2 and len(_job_runs(uri, "plan-sizes")) == 4

    # a third call finds everything done and brings nothing back
    out3 = tmp_path / "out3"
    assert module.main(["run", "--plan", str(plan), "--out", str(out3)]) == 0
    assert (
        _packed_keys(out3) == [] and json.loads((out3 / "plan.json").read_text())["calls"][-1]["chunks"] == []
    )


def test_a_chunk_that_does_not_fit_the_budget_waits_for_the_next_call(plan_module, tmp_path):
    module, plan = plan_module
    out = tmp_path / "out"
    # a job is estimated at 1 s + the fixed start-up: none fits in 5 s
    assert module.main(["run", "--plan", str(plan), "--out", str(out), "--budget", "5"]) == 0
    assert json.loads((out / "plan.json").read_text())["calls"][-1]["chunks"] == []
    assert "does not fit the" in (out / "plan.log").read_text()


def test_the_seeds_of_a_chunk_are_whole_jobs_that_fit(plan_module):
    module, _ = plan_module
    seeds = list(range(10))
    assert module.seeds_that_fit(seeds, 5, job_s=100, left_s=250) == seeds  # two jobs of five
    assert module.seeds_that_fit(seeds, 5, job_s=100, left_s=199) == [0, 1, 2, 3, 4]
    assert module.seeds_that_fit(seeds, 1, job_s=100, left_s=99) == []


def test_the_stack_with_most_seeds_per_second_that_fits_one_call(plan_module):
    module, _ = plan_module
    spec = {"epochs": 300, "maxiter": 20000}
    # per-step seconds: 10 stacked seeds cost 3x one, 5 cost 2x one
    steps = {"1": 1e-3, "5": 2e-3, "10": 3e-3}
    measured = {"stacks": {s: {"pretrain_step_s": t, "cluster_step_s": t} for s, t in steps.items()}}
    job = {s: module.job_seconds(measured, int(s), 70000, spec) for s in steps}
    assert module.best_stack(measured, spec, 70000, budget_s=1000) == 10
    assert module.best_stack(measured, spec, 70000, budget_s=job["5"] + 1) == 5  # 10 would not fit
    assert module.best_stack(measured, spec, 70000, budget_s=1) == 1  # nothing fits: one seed a job


def test_no_chunk_starts_whose_runs_could_not_come_back(plan_module):
    module, _ = plan_module
    mnist = module.run_bytes(70000)
    assert mnist > 70000 * 40  # the embedding, float32, gzip keeps at about its size
    fits = module.runs_that_come_back(70000, 0)
    assert fits * mnist <= 0.9 * module.MAX_PARTS * module.PART_BYTES < (fits + 1) * mnist
    assert fits >= 10  # ten stacked MNIST seeds come back from one call
    assert module.runs_that_come_back(70000, 10 * mnist) == fits - 10  # after ten stacked MNIST seeds
    assert module.runs_that_come_back(70000, module.MAX_PARTS * module.PART_BYTES) == 0
