"""Sweep configuration: a YAML file and command-line flags, validated into a :class:`Sweep`.

Flags override the file; the file overrides the defaults, which are the quick sweep
(``configs/quick.yaml``: every installed method on digits, seeds 0–2). Every mistake is one
:class:`UsageError` that names the key, the bad value and what would be valid.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness import params as params_mod
from harness.errors import UsageError, did_you_mean
from harness.plugins import Registry
from harness.preprocess import CHANNELS
from harness.sweep import NATIVE, Sweep

EXECUTORS = ("local", "ray", "slurm")
"""Where jobs run: worker processes on this machine, Ray tasks (a local instance or a cluster), or
SLURM batch jobs."""

RESIZE_FILTERS = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
"""Pillow's resampling filters, by name; the one used is recorded on every run."""

ALL = "all"

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""Where runs go when neither a flag, a config file nor ``$MLFLOW_TRACKING_URI`` says."""

DEFAULTS: dict[str, Any] = {
    "experiment": "harness",
    "methods": ALL,
    "datasets": ["digits"],
    "seeds": "0-2",
    "sizes": [NATIVE],
    "resize_filter": "bilinear",
    "channels": "native",
    "params": {},
    "own_datasets": {},
    "tracking_uri": None,  # resolve_tracking_uri: $MLFLOW_TRACKING_URI, else DEFAULT_TRACKING_URI
    "data_dir": None,
    "device": "auto",
    "executor": "local",
    "ray_address": None,
    "slurm_partition": None,
    "slurm_time": None,
    "slurm_account": None,
    "slurm_folder": None,
    "slurm_sbatch": [],
}
"""The quick default sweep; ``configs/quick.yaml`` spells out the same values. ``tracking_uri``
comes after ``$MLFLOW_TRACKING_URI``, as in every command (:func:`resolve_tracking_uri`)."""

KEYS = tuple(DEFAULTS)
SLURM_KEYS = tuple(k for k in KEYS if k.startswith("slurm_"))
"""What the SLURM jobs ask for (``--executor slurm``): partition, time limit, account, the shared
folder for their results, and extra ``#SBATCH`` lines (``slurm_sbatch``, a list)."""
DEFAULT_SLURM_FOLDER = "slurm"
"""Where SLURM jobs leave their logs and results when neither a flag nor the config says: ./slurm."""
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_tracking_uri(flag: str | None = None, configured: str | None = None) -> str:
    """The tracking store, by one rule for every command: ``--tracking-uri``, else the config file's
    ``tracking_uri`` (``harness run --config``), else ``$MLFLOW_TRACKING_URI`` (which MLflow users
    expect to be honoured), else ``sqlite:///mlflow.db``."""
    return flag or configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def resolve_experiment(flag: str | None = None, configured: str | None = None) -> str:
    """The experiment, by one rule for every command: ``--experiment``, else the one its input names
    (the config file of ``harness run``, the recorded sweep of ``harness import``), else ``harness``."""
    return flag or configured or DEFAULTS["experiment"]


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML sweep file (safe loader: tags that would build Python objects are refused)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(
            f"config file {str(path)!r} is not valid YAML ({where.strip() or 'parse error'}: {problem})"
        ) from None
    if data is None:  # an empty file would silently mean the default sweep, full protocols included
        raise UsageError(f"config file {str(path)!r} is empty; it should set some of: {', '.join(KEYS)}")
    if not isinstance(data, dict):
        raise UsageError(
            f"config file {str(path)!r} must be a mapping of keys ({', '.join(KEYS)}), "
            f"got a {type(data).__name__}"
        )
    return data


def declare_own_datasets(
    registry: Registry, config: Mapping[str, Any], config_path: str | Path | None
) -> Registry:
    """The registry plus the datasets the config file declares under ``own_datasets`` (name →
    ``format`` and its keys; relative paths are relative to the config file's folder)."""
    value = config.get("own_datasets") or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _bad("own_datasets", value, "a mapping of dataset name to its format and files")
    if not value:
        return registry
    return registry.declare(value, own_datasets_dir(config_path))


def own_datasets_dir(config_path: str | Path | None) -> Path:
    """Where the relative paths of ``own_datasets`` start: the config file's folder."""
    return Path(config_path).expanduser().resolve().parent if config_path else Path.cwd()


def parse_seeds(value: Any) -> tuple[int, ...]:
    """Seeds from ``3``, ``[0, 1, 2]``, ``"0-9"`` or ``"0,2,5-7"``; unique, in the order given."""
    if isinstance(value, bool):
        raise _bad("seeds", value, "an integer >= 0, a list of them, or a range like 0-9")
    items: list[Any]
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list):
        items = value
    else:
        raise _bad("seeds", value, "an integer >= 0, a list of them, or a range like 0-9")
    seeds: list[int] = []
    for item in items:
        if isinstance(item, bool):
            raise _bad("seeds", value, "integers >= 0 or ranges like 0-9")
        if isinstance(item, int):
            part = [item]
        elif isinstance(item, str) and (m := re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)):
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise _bad("seeds", value, f"a range low-high with low <= high ({item!r} is empty)")
            part = list(range(lo, hi + 1))
        else:
            raise _bad("seeds", value, "integers >= 0 or ranges like 0-9")
        if any(s < 0 for s in part):
            raise _bad("seeds", value, "integers >= 0")
        seeds.extend(part)
    if not seeds:
        raise _bad("seeds", value, "at least one seed")
    return tuple(dict.fromkeys(seeds))


def parse_sizes(value: Any) -> tuple[int | str, ...]:
    """Input sizes (pixels per side) from ``28``, ``[28, 32]``, ``"28,32"`` or ``native``."""
    rule = f"positive integers (pixels per side) or {NATIVE!r}"
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    sizes: list[int | str] = []
    for item in items:
        if isinstance(item, str):
            item = item.strip()
            if item == NATIVE:
                sizes.append(NATIVE)
                continue
            if not re.fullmatch(r"\d+", item):
                raise _bad("sizes", value, rule)
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise _bad("sizes", value, rule)
        sizes.append(item)
    if not sizes:
        raise _bad("sizes", value, rule)
    return tuple(dict.fromkeys(sizes))


def _names(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise _bad(key, value, "a list of names or a comma-separated string")
    if not names:
        raise _bad(key, value, "at least one name")
    return list(dict.fromkeys(names))


def _bad(key: str, value: Any, rule: str) -> UsageError:
    return UsageError(f"{key}: expected {rule}, got {value!r}")


def parse_param_flags(flags: list[str]) -> dict[str, dict[str, str | list[str]]]:
    """``["dec.maxiter=2000", "kmeans.n_init=2,3"]`` → ``{"dec": {"maxiter": "2000"},
    "kmeans": {"n_init": ["2", "3"]}}`` (values still strings; several values, split at commas
    outside double quotes, are a list: one configuration each)."""
    out: dict[str, dict[str, str | list[str]]] = {}
    for flag in flags:
        m = re.fullmatch(r"([\w-]+)\.(\w+)=(.*)", flag)
        if not m:
            raise UsageError(f"--param: expected METHOD.NAME=VALUE (say kmeans.n_init=10), got {flag!r}")
        values = params_mod.split_values(m.group(3))
        out.setdefault(m.group(1), {})[m.group(2)] = values[0] if len(values) == 1 else values
    return out


def build_sweep(
    registry: Registry, config: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> Sweep:
    """Merge defaults, file and flags (``None`` flags are ignored), validate, return the sweep."""
    merged = _merged(config or {}, {k: v for k, v in (overrides or {}).items() if v is not None})
    methods = sorted(registry.methods) if merged["methods"] == ALL else _names("methods", merged["methods"])
    if not methods:
        raise UsageError("methods: no method plugin is installed (see `harness list`)")
    registry.check("method", methods)
    if not any(spec.kind == "external" for spec, _ in registry.metrics.values()):
        raise UsageError(
            "no metric to score the runs with: the built-in metrics come through the entry point "
            "'metrics' of the harness distribution (reinstall harness: pip install -e . ; "
            "and do not pass --no-plugin metrics)"
        )
    datasets = _names("datasets", merged["datasets"])
    undeclared = set(merged["own_datasets"] or {}) - set(registry.declared)
    if undeclared:  # a caller's slip, not the user's: the CLI declares them first
        raise UsageError(f"own_datasets: {sorted(undeclared)[0]!r} was not declared (declare_own_datasets)")
    registry.check("dataset", datasets)
    seeds = parse_seeds(merged["seeds"])
    sizes = parse_sizes(merged["sizes"])
    _check_settings(merged)
    resolved = _resolved_params(registry, methods, merged["params"])
    _check_min_sizes(registry, methods, datasets, sizes)
    if merged["executor"] == "local":  # a Ray or SLURM cluster's nodes may have more memory than this machine
        _check_memory(registry, datasets, sizes)
    ray_address = merged["ray_address"]
    return Sweep(
        methods=tuple(methods),
        datasets=tuple(datasets),
        seeds=seeds,
        sizes=sizes,
        params=resolved,
        resize_filter=merged["resize_filter"],
        channels=merged["channels"],
        own_datasets=dict(merged["own_datasets"] or {}),
        experiment=merged["experiment"],
        tracking_uri=resolve_tracking_uri(merged["tracking_uri"]),
        data_dir=merged["data_dir"],
        device=merged["device"],
        executor=merged["executor"],
        ray_address=ray_address.strip() if ray_address else None,
    )


def slurm_settings(
    config: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``slurm_*`` settings of the file and flags (flags win), checked as :func:`build_sweep` does."""
    merged = _merged(config or {}, {k: v for k, v in (overrides or {}).items() if v is not None})
    _check_settings(merged)
    out = {key: merged[key] for key in SLURM_KEYS}
    out["slurm_folder"] = out["slurm_folder"] or DEFAULT_SLURM_FOLDER
    out["slurm_sbatch"] = list(out["slurm_sbatch"] or [])
    return out


def _merged(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, overridden by each source in turn; an unknown key is an error."""
    merged: dict[str, Any] = dict(DEFAULTS)
    for source in sources:
        for key, value in source.items():
            if key not in KEYS:
                raise UsageError(
                    f"unknown config key {key!r}{did_you_mean(key, KEYS)}; valid keys: {', '.join(KEYS)}"
                )
            if key == "params":
                merged["params"] = _merge_params(merged["params"], value)
            else:
                merged[key] = value
    return merged


def _check_settings(merged: Mapping[str, Any]) -> None:
    """The sweep's scalar settings: filter, device, names, data folder, executor and Ray address."""
    if merged["resize_filter"] not in RESIZE_FILTERS:
        raise _bad("resize_filter", merged["resize_filter"], "one of " + ", ".join(RESIZE_FILTERS))
    if merged["channels"] not in CHANNELS:
        raise _bad("channels", merged["channels"], "one of " + ", ".join(CHANNELS))
    device = merged["device"]
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise _bad("device", device, "auto, cpu, cuda or cuda:N")
    for key in ("experiment", "tracking_uri"):
        if key == "tracking_uri" and merged[key] is None:
            continue
        if not isinstance(merged[key], str) or not merged[key].strip():
            raise _bad(key, merged[key], "a non-empty string")
    if merged["data_dir"] is not None and not isinstance(merged["data_dir"], str):
        raise _bad("data_dir", merged["data_dir"], "a path")
    executor, ray_address = merged["executor"], merged["ray_address"]
    if executor not in EXECUTORS:
        raise _bad("executor", executor, "one of " + ", ".join(EXECUTORS))
    if ray_address is not None:
        if not isinstance(ray_address, str) or not ray_address.strip():
            raise _bad("ray_address", ray_address, "auto or HOST:PORT of a Ray head node")
        if executor != "ray":
            raise UsageError(
                f"ray_address: only used with executor 'ray' (--executor ray), got {ray_address!r} "
                f"with executor {executor!r}"
            )
    for key in SLURM_KEYS:
        value = merged[key]
        if key == "slurm_sbatch":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _bad(key, value, "a list of #SBATCH lines such as ['--mem=8G', '--qos=short']")
            given = bool(value)
        else:
            if value is not None and (not isinstance(value, str | int) or not str(value).strip()):
                raise _bad(key, value, "a non-empty string")
            given = value is not None
        if given and executor != "slurm":
            raise UsageError(
                f"{key}: only used with executor 'slurm' (--executor slurm), got {value!r} "
                f"with executor {executor!r}"
            )


def _resolved_params(
    registry: Registry, methods: Sequence[str], given: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Every parameter of each method of the sweep with its values (defaults filled in, the given
    ones validated; a list is several values, one configuration each)."""
    for name, values in given.items():
        if name not in registry.methods:
            registry.check("method", [name])  # raises with a did-you-mean
        # every --param names a parameter its method has, whether or not the method runs now:
        # a typo in a parameter of a method left out of this sweep is still a typo
        params_mod.resolve_grid(registry.method(name), values)
    return {m: params_mod.resolve_grid(registry.method(m), given.get(m, {})) for m in methods}


def _check_min_sizes(
    registry: Registry, methods: Sequence[str], datasets: Sequence[str], sizes: Sequence[int | str]
) -> None:
    for m in methods:
        spec = registry.method(m)
        for d in datasets:
            shape = registry.dataset(d).image_shape
            native = shape[0]
            for size in sizes:
                if shape[0] == 1 and size not in (NATIVE, 1):  # rows of D values, not pictures
                    raise UsageError(
                        f"sizes: dataset {d!r} holds feature vectors ({shape[1]} values each), which "
                        f"cannot be resized to {size} px; run it at sizes: native"
                    )
                pixels = size if isinstance(size, int) else native  # else NATIVE
                if pixels < spec.min_size:
                    raise UsageError(
                        f"sizes: method {m!r} needs input images of at least {spec.min_size} px, "
                        f"got {pixels} for dataset {d!r}"
                    )


def _merge_params(base: dict[str, Any], value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise _bad("params", value, "a mapping of method name to a mapping of parameter values")
    merged = {k: dict(v) for k, v in base.items()}
    for method, values in value.items():
        merged.setdefault(method, {}).update(values)
    return merged


def _check_memory(registry: Registry, datasets: Sequence[str], sizes: Sequence[int | str]) -> None:
    """A size whose resized dataset (float32) could not fit in this machine's memory is a typo or
    a misunderstanding; say so before a sweep of jobs fails one by one with MemoryError."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return  # not knowable here (not a POSIX system): let the jobs find out
    for d in datasets:
        spec = registry.dataset(d)
        channels = spec.image_shape[2] if len(spec.image_shape) > 2 else 1
        for size in sizes:
            if not isinstance(size, int):  # NATIVE
                continue
            needed = spec.n_samples * size * size * channels * 4
            if needed > total:
                raise UsageError(
                    f"sizes: {size} px would make dataset {d!r} {needed / 2**30:,.0f} GiB as float32, "
                    f"more than this machine's {total / 2**30:,.0f} GiB of memory"
                )
