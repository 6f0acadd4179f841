"""The table of issue 18 on a lent GPU, in resumable chunks that each fit one device call.

Three steps, two places::

    python benchmarks/device_plan.py run --out "$OUT"        # there: one call's chunk
    python benchmarks/device_plan.py home FILES_AT           # here: unpack, `harness import`, resume state

``run`` works down ``benchmarks/device-plan.yaml`` (most valuable cells first). Each cell is a
``harness run --offline`` sweep into its own journal (one experiment each); the journals start as
the copy of ``.devplan/done`` carried from here (every finished run's ``record.json``, no arrays),
so the runner skips what earlier calls finished. Before the first DEC cell it probes DEC's speed
on the device (``probe``) and keeps the stack size giving the most seeds per GPU-second. A chunk
is started only where its estimate fits what is left of the call's budget, and a sweep that
overruns is stopped (SIGTERM: its running jobs end KILLED and are run again next call). The runs
a call finished come back as at most four ``runs-N.tar.gz`` (each under 16 MiB) with
``plan.json`` (the probe, the estimates, what ran); a chunk starts only where its runs can still
come back (about 17 MNIST runs with their embeddings per call).

``home`` unpacks those into ``.devruns/<cell>/`` (full journals), imports each into the tracking
store (``harness import``: a run already there is skipped, so a repeat adds nothing), and
rewrites ``.devplan/`` for the next call. Nothing on the ``run`` path imports MLflow.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "benchmarks" / "device-plan.yaml"
STATE = Path(os.environ.get("DEVPLAN_STATE", ROOT / ".devplan"))  # carried: done/ (records only), plan.json
HOME = Path(os.environ.get("DEVPLAN_HOME", ROOT / ".devruns"))  # stays here: the full journals
PART_BYTES = 15 * 2**20  # a file back from the device: at most 16 MiB
MAX_PARTS = 4  # 4 x 15 MiB: under the 64 MiB a call brings back, with plan.json and the log
FIXED_S = 20.0  # per job: start-up, imports, compilation, k-means (a guess until timed)


@dataclass
class Chunk:
    cell: dict[str, Any]
    size: int | str | None
    seeds: list[int]
    stack: int
    estimate_s: float


@dataclass
class Call:
    """What one ``run`` did, for ``plan.json`` and the next call's estimates."""

    budget_s: float
    started: float = field(default_factory=time.monotonic)
    chunks: list[dict[str, Any]] = field(default_factory=list)

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)


# ---- what is left to do ------------------------------------------------------------------------


def _argv(cell: dict[str, Any], size: int | str | None, seeds: list[int] | None) -> list[str]:
    """``harness run`` flags for a cell (one size, some seeds), without the journal and batching."""
    argv: list[str] = []
    if cell.get("config"):
        argv += ["--config", str(ROOT / cell["config"])]
    args = dict(cell.get("args", {}))
    for flag in ("methods", "datasets", "sizes", "seeds"):
        if flag in args:
            value = args[flag]
            argv += [f"--{flag}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    if "experiment" in args:
        argv += ["--experiment", args["experiment"]]
    for key, value in cell.get("params", {}).items():
        argv += ["--param", f"{key}={value}"]
    if size is not None:
        argv += ["--sizes", str(size)]
    if seeds is not None:
        argv += ["--seeds", ",".join(map(str, seeds))]
    return argv


def pending(cell: dict[str, Any], journal: Path) -> dict[Any, list[int]]:
    """Seeds still to run per input size: the jobs the runner would build, less those FINISHED
    in the journal (same run keys: the same code, data and parameters)."""
    from harness import config as config_mod
    from harness.cli import build_parser
    from harness.identity import identify
    from harness.journal import Journal
    from harness.plugins import load_registry
    from harness.sweep import expand

    ns = build_parser().parse_args(["run", *_argv(cell, None, None)])
    registry = load_registry()
    overrides = {
        "methods": ns.methods,
        "datasets": ns.datasets,
        "seeds": ns.seeds,
        "sizes": ns.sizes,
        "experiment": ns.experiment,
        "params": config_mod.parse_param_flags(ns.param) or None,
    }
    sweep = config_mod.build_sweep(
        registry, config_mod.read_config(ns.config) if ns.config else {}, overrides
    )
    jobs = expand(sweep, registry, identity=identify(registry, sweep.methods, sweep.datasets))
    done = Journal(journal).finished_run_keys() if (journal / "runs").is_dir() else {}
    left: dict[Any, list[int]] = {}
    for job in jobs:
        if job.run_key not in done:
            left.setdefault(job.input_size, [])
            if job.seed not in left[job.input_size]:
                left[job.input_size].append(job.seed)
    return left


# ---- the probe and the estimates ------------------------------------------------------------------


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """DEC's seconds per pretraining step and per clustering step at each stack size, on this
    device (compilation outside the timing), and the stack size with most seeds per second."""
    import numpy as np

    from harness_dec import method, runtime, stacked
    from harness_dec.presets import PRESETS, Resolved

    backend = runtime.resolve_backend("auto")
    runtime.select_backend(backend, "auto")
    runtime.configure(backend, "auto", None, False, seed=0)
    from keras import ops

    n, d = spec["shape"]
    batch, interval, rounds = spec["batch_size"], spec["interval"], spec.get("rounds", 2)
    x = np.random.default_rng(0).random((n, d), dtype=np.float32)
    x_dev = ops.convert_to_tensor(x)
    where = runtime.tensor_device(backend, x_dev)
    resolved = Resolved("mnist", **vars(PRESETS["mnist"]))
    per_epoch_steps = math.ceil(n / batch)

    class Quiet:
        device, dataset, input_size, dry_run, cache_dir = "auto", "probe", 0, False, None

        def log_metric(self, *a: Any) -> None: ...

        def evaluate(self, *a: Any, **k: Any) -> None: ...

        def progress(self, *a: Any) -> None: ...

    def best_of(fn: Any, *args: Any, **kwargs: Any) -> float:
        fn(*args, **kwargs)  # compile
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn(*args, **kwargs)
            times.append(time.perf_counter() - t)
        return min(times)

    rows = {}
    for s in spec["stacks"]:
        aes = method.initial_autoencoders(range(s), d, (500, 500, 2000, 10), "variance_scaling")
        weights = [ae.get_weights() for ae in aes]
        ctx = [Quiet() for _ in range(s)]
        epoch = best_of(method.pretrain, backend, weights, x_dev, resolved, batch, 1, range(s), ctx)
        params = [ops.convert_to_tensor(a) for a in stacked.stack([w[:8] for w in weights])]
        params.append(ops.convert_to_tensor(np.zeros((s, 10, 10), dtype=np.float32)))
        labels = np.tile(np.arange(n) % 10, (s, 1))
        cluster = best_of(
            method.self_train, backend, params, x_dev, labels, interval=interval, maxiter=interval,
            tol=0.0, lr=0.01, batch_size=batch, contexts=ctx,
        )  # fmt: skip
        rows[s] = {"pretrain_step_s": epoch / per_epoch_steps, "cluster_step_s": cluster / interval}
    out = {"backend": backend, **where, "shape": [n, d], "stacks": rows}
    out["full_s"] = {s: job_seconds(out, s, n, spec, batch) for s in rows}
    return out


def job_seconds(
    measured: dict[str, Any], stack: int, rows: int, spec: dict[str, Any], batch: int = 256
) -> float:
    """A stacked job's worst case (no early stop) from the probe's per-step times."""
    step = measured["stacks"][str(stack)] if str(stack) in measured["stacks"] else measured["stacks"][stack]
    steps_pre = spec["epochs"] * math.ceil(rows / batch)
    return FIXED_S + steps_pre * step["pretrain_step_s"] + spec["maxiter"] * step["cluster_step_s"]


def best_stack(measured: dict[str, Any], spec: dict[str, Any], rows: int, budget_s: float) -> int:
    """The stack size with most seeds per second whose job fits the budget (1 if none does)."""
    fits = [
        (int(s) / job_seconds(measured, int(s), rows, spec), int(s))
        for s in measured["stacks"]
        if job_seconds(measured, int(s), rows, spec) <= budget_s
    ]
    return max(fits)[1] if fits else 1


def seeds_that_fit(seeds: list[int], stack: int, job_s: float, left_s: float) -> list[int]:
    """The most whole jobs of ``stack`` seeds (the last may be short) whose estimate fits."""
    jobs = int(left_s // job_s) if job_s > 0 else len(seeds)
    return seeds[: max(0, jobs) * stack]


def packed_size(path: Path) -> int:
    """An upper bound of a file's size in a ``.tar.gz``: gzip keeps float32 embeddings at about
    their size, but shrinks int64 labels of small values far more than 4x (and a record too)."""
    size = path.stat().st_size
    return size // 4 if path.name.startswith("labels") else size


def run_bytes(rows: int) -> int:
    """What one run brings back, at most (:func:`packed_size`): labels and truth (int64), a 10-d
    float32 embedding per row, and its record (the curves)."""
    return rows * (2 + 2 + 4 * 10) + 200_000


def runs_that_come_back(rows: int, packed_bytes: int) -> int:
    """How many more runs of ``rows`` rows fit the parts a call brings back (90 %: a margin)."""
    return max(0, int((0.9 * MAX_PARTS * PART_BYTES - packed_bytes) // run_bytes(rows)))


def estimate(cell: dict[str, Any], stack: int, state: dict[str, Any], spec: dict[str, Any]) -> float:
    """Seconds per job of ``stack`` seeds: measured on this device where the cell ran before,
    else from the probe, else the plan's guess."""
    timed = state.get("timed", {}).get(cell["name"])
    if timed:
        return timed["s_per_seed"] * stack + FIXED_S
    if cell.get("stack") == "probe" and state.get("probe"):
        return job_seconds(state["probe"], stack, cell.get("rows", spec["shape"][0]), spec)
    return float(cell.get("seconds_per_seed", 600)) * stack + FIXED_S


# ---- one call -----------------------------------------------------------------------------------------


def run_call(
    plan: dict[str, Any], out: Path, budget_s: float, max_chunks: int | None = None
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("DEVPLAN_WORK", "/tmp/devplan"))
    shutil.rmtree(work, ignore_errors=True)
    if (STATE / "done").is_dir():
        shutil.copytree(STATE / "done", work)
    work.mkdir(parents=True, exist_ok=True)
    # (cell, run key) of every run an earlier call finished: two cells may hold the same run key
    carried = {(p.parents[2].name, p.parent.name) for p in work.glob("*/runs/*/record.json")}
    state = json.loads((STATE / "plan.json").read_text()) if (STATE / "plan.json").is_file() else {}
    state.setdefault("timed", {})
    call = Call(budget_s)
    spec = plan["probe"]
    log = out / "plan.log"

    def say(line: str) -> None:
        with log.open("a") as f:
            f.write(f"[{time.monotonic() - call.started:6.1f}s] {line}\n")
        print(line, flush=True)

    packed_bytes = 0
    for cell in plan["cells"]:
        if max_chunks is not None and len(call.chunks) >= max_chunks:
            break
        left = pending(cell, work / cell["name"])
        if not any(left.values()):
            say(f"{cell['name']}: done")
            continue
        if cell.get("stack") == "probe" and "probe" not in state and spec:
            say("probing DEC's speed on this device")
            probe_s = time.monotonic()
            result = subprocess.run(
                [sys.executable, __file__, "probe"],
                capture_output=True,
                text=True,
                timeout=max(30, call.left()),
            )
            if result.returncode != 0:
                say(f"probe failed: {result.stderr.strip().splitlines()[-1:]}")
                break
            state["probe"] = json.loads(result.stdout.strip().splitlines()[-1])
            say(f"probe: {json.dumps(state['probe'])} ({time.monotonic() - probe_s:.0f} s)")
        stack = (
            best_stack(state["probe"], spec, cell.get("rows", spec["shape"][0]), budget_s)
            if cell.get("stack") == "probe" and state.get("probe")
            else 1
            if cell.get("stack") == "probe"  # no probe in the plan (or none yet): one seed a job
            else int(cell.get("stack") or 1)
        )
        stopped = False
        for size, seeds in left.items():
            if max_chunks is not None and len(call.chunks) >= max_chunks:
                break
            if not seeds:
                continue
            job_s = estimate(cell, stack, state, spec)
            chosen = seeds_that_fit(seeds, stack, job_s, call.left())
            runs = runs_that_come_back(cell.get("rows", 70000), packed_bytes)
            chosen = chosen[: runs // stack * stack if runs >= stack else 0]
            if runs < stack:
                say(f"{cell['name']}: {stack} more run(s) would not fit what a call brings back: next call")
                stopped = True
                break
            if not chosen:
                say(f"{cell['name']} size {size}: a job of {stack} seed(s) (~{job_s:.0f} s) does not fit the "
                    f"{call.left():.0f} s left: next call")  # fmt: skip
                stopped = True
                break
            chunk = Chunk(cell, size if cell.get("per_size") else None, chosen, stack, job_s)
            packed_bytes = _run_chunk(chunk, work, out, call, state, say, carried, packed_bytes)
            if packed_bytes < 0:
                stopped = True
                break
            if not cell.get("per_size"):
                break  # one sweep covered every size of the cell
        if stopped:
            break
    state["calls"] = [*state.get("calls", []), {"budget_s": budget_s, "chunks": call.chunks}]
    (out / "plan.json").write_text(json.dumps(state, indent=1))
    return state


def _run_chunk(
    chunk: Chunk,
    work: Path,
    out: Path,
    call: Call,
    state: dict[str, Any],
    say: Any,
    carried: set[tuple[str, str]],
    packed: int,
) -> int:
    """One ``harness run`` within what is left of the call; pack its runs. Returns the bytes packed
    so far, or -1 where nothing more can come back in this call."""
    journal = work / chunk.cell["name"]
    argv = [sys.executable, "-m", "harness", "run", *_argv(chunk.cell, chunk.size, chunk.seeds)]
    argv += ["--offline", str(journal), "--batch-seeds", str(chunk.stack), "--device", "auto"]
    say(f"{chunk.cell['name']}: seeds {chunk.seeds} size {chunk.size or 'all'}, {chunk.stack} per job, "
        f"~{chunk.estimate_s:.0f} s per job; {call.left():.0f} s left")  # fmt: skip
    start, start_ms = time.monotonic(), int(time.time() * 1000)
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=max(1.0, call.left()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # as Ctrl-C: running jobs end KILLED in the journal
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        say(f"{chunk.cell['name']}: stopped at the call's budget")
    wall = time.monotonic() - start
    with (out / "plan.log").open("a") as f:
        f.write(output or "")
    finished = [
        r
        for r in _records(journal)
        if r["status"] == "FINISHED" and (chunk.cell["name"], r["run_key"]) not in carried
    ]
    mine = [
        r
        for r in finished
        if r["job"]["seed"] in chunk.seeds
        and chunk.size in (None, r["job"]["input_size"])
        and r["end_time"] >= start_ms
    ]
    if mine:  # each run's share of its job's wall time: the next chunks' estimate
        per_seed = sum(float(r["metrics"].get("runtime_s", 0)) for r in mine) / len(mine)
        state["timed"][chunk.cell["name"]] = {"s_per_seed": per_seed, "stack": chunk.stack}
    call.chunks.append(
        {"cell": chunk.cell["name"], "size": chunk.size, "seeds": chunk.seeds, "stack": chunk.stack,
         "estimate_s": round(chunk.estimate_s, 1), "wall_s": round(wall, 1), "finished": len(mine),
         "exit": proc.returncode}
    )  # fmt: skip
    return pack(work, out, carried)


def _records(journal: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(journal.glob("runs/*/record.json"))]


def pack(work: Path, out: Path, carried: set[tuple[str, str]]) -> int:
    """Every finished run that did not come carried, as ``runs-N.tar.gz`` parts of at most
    :data:`PART_BYTES` (rewritten whole after each chunk). Returns their bytes unpacked, -1 once full."""
    for old in out.glob("runs-*.tar.gz"):
        old.unlink()
    folders = [
        p.parent
        for p in sorted(work.glob("*/runs/*/record.json"))
        if (p.parents[2].name, p.parent.name) not in carried
        and json.loads(p.read_text())["status"] == "FINISHED"
    ]
    parts: list[list[Path]] = [[]]
    size = 0
    for folder in folders:
        bytes_ = sum(packed_size(f) for f in folder.iterdir())
        if parts[-1] and size + bytes_ > PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(folder)
        size += bytes_
    # more than the call can bring back: those left out run again next call
    full = len(parts) > MAX_PARTS
    parts = parts[:MAX_PARTS]
    for i, members in enumerate(p for p in parts if p):
        path = out / f"runs-{i}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for cell in {m.parent.parent for m in members}:
                if (cell / "sweep.yaml").is_file():
                    tar.add(cell / "sweep.yaml", arcname=f"{cell.name}/sweep.yaml")
            for folder in members:
                tar.add(folder, arcname=f"{folder.parent.parent.name}/runs/{folder.name}")
    return -1 if full else sum(packed_size(f) for p in parts for m in p for f in m.iterdir())


# ---- here: bring the runs home ---------------------------------------------------------------------


def home(files_at: Path, tracking_uri: str | None = None) -> dict[str, dict[str, int]]:
    """Unpack a call's parts into ``.devruns``, import each cell's journal once, refresh ``.devplan``."""
    from harness import config as config_mod
    from harness.journal import Journal, import_journal
    from harness.tracking import Tracker

    HOME.mkdir(exist_ok=True)
    for part in sorted(files_at.glob("runs-*.tar.gz")):
        with tarfile.open(part) as tar:
            tar.extractall(HOME, filter="data")
    if (files_at / "plan.json").is_file():
        STATE.mkdir(exist_ok=True)
        shutil.copy(files_at / "plan.json", STATE / "plan.json")
    counts = {}
    uri = config_mod.resolve_tracking_uri(tracking_uri)
    for cell in sorted(p for p in HOME.iterdir() if (p / "runs").is_dir()):
        recorded = (
            yaml.safe_load((cell / "sweep.yaml").read_text()) if (cell / "sweep.yaml").is_file() else {}
        )
        tracker = Tracker(uri, config_mod.resolve_experiment(None, recorded.get("experiment")))
        counts[cell.name] = import_journal(Journal(cell), tracker)
    # what the next call carries: each finished run's record, no arrays
    shutil.rmtree(STATE / "done", ignore_errors=True)
    for record in HOME.glob("*/runs/*/record.json"):
        target = STATE / "done" / record.relative_to(HOME)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(record, target)
    for sweep in HOME.glob("*/sweep.yaml"):
        shutil.copy(sweep, STATE / "done" / sweep.relative_to(HOME))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    run = sub.add_parser("run", help="there: the next chunk of the plan within one call")
    run.add_argument("--out", default=os.environ.get("OUT", "devplan-out"))
    run.add_argument("--plan", default=str(PLAN))
    run.add_argument("--budget", type=float, help="seconds this call may run (default: the plan's)")
    run.add_argument("--max-chunks", type=int, help="stop after this many chunks (tests)")
    sub.add_parser("probe", help="there: DEC's speed on this device, as one JSON line")
    back = sub.add_parser("home", help="here: unpack a call's files, import them, keep the state")
    back.add_argument("files_at")
    back.add_argument("--tracking-uri")
    back.add_argument("--plan", default=str(PLAN))
    args = parser.parse_args(argv)
    if args.step == "probe":
        spec = yaml.safe_load(Path(os.environ.get("DEVPLAN_PLAN", PLAN)).read_text())["probe"]
        print(json.dumps(probe(spec)))
        return 0
    if args.step == "run":
        plan = yaml.safe_load(Path(args.plan).read_text())
        os.environ["DEVPLAN_PLAN"] = str(Path(args.plan).resolve())
        run_call(plan, Path(args.out), args.budget or plan["call_budget_s"], args.max_chunks)
        return 0
    for name, c in home(Path(args.files_at), args.tracking_uri).items():
        print(f"{name}: {c['finished']} finished, {c['failed']} failed, {c['killed']} killed imported; "
              f"{c['skipped']} of {c['total']} already in the store")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
