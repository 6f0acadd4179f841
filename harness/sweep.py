"""A validated sweep, and its expansion into jobs with stable run keys."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.identity import SweepIdentity, identify
from harness.plugins import Registry

NATIVE = "native"
"""Input size token: keep each dataset's own image size (no resizing)."""


@dataclass(frozen=True)
class Sweep:
    """What to run: the grid methods × datasets × input sizes × seeds, and where to record it."""

    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    sizes: tuple[int | str, ...] = (NATIVE,)
    params: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)
    """Per method, every declared parameter with the values it takes (its default alone where
    none was given); a parameter with several values crosses the other axes (:meth:`configurations`)."""
    resize_filter: str = "bilinear"
    channels: str = "native"
    """``native`` (each dataset's own channels) or ``grey`` (colour datasets converted to luma)."""
    own_datasets: dict[str, Any] = field(default_factory=dict)
    """Datasets the config file declared (name → format and files), as written there."""
    experiment: str = "harness"
    tracking_uri: str = "sqlite:///mlflow.db"
    data_dir: str | None = None
    device: str = "auto"
    executor: str = "local"
    """Where jobs run: ``local`` worker processes or ``ray`` tasks."""
    ray_address: str | None = None
    """The Ray cluster (``auto`` or ``HOST:PORT``); None starts a local Ray instance."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("methods", "datasets", "seeds", "sizes"):
            out[key] = list(out[key])
        out["params"] = {m: {k: list(v) for k, v in values.items()} for m, values in self.params.items()}
        return out

    def configurations(self, method: str) -> list[dict[str, Any]]:
        """The parameter sets of ``method`` in this sweep: one per point of the grid of its
        parameters' values, in the order given (one where every parameter has one value)."""
        values = self.params.get(method, {})
        return [dict(zip(values, point, strict=True)) for point in itertools.product(*values.values())]

    def swept(self, method: str) -> tuple[str, ...]:
        """The parameters of ``method`` that take several values: what tells its configurations apart."""
        return tuple(k for k, v in self.params.get(method, {}).items() if len(v) > 1)

    @property
    def n_configurations(self) -> int:
        return sum(len(self.configurations(m)) for m in self.methods)


@dataclass(frozen=True)
class Job:
    """One run: a method on a dataset at one input size with one seed."""

    method: str
    dataset: str
    dataset_variant: str
    input_size: int
    native_size: int
    seed: int
    params: dict[str, Any]
    resize_filter: str
    """``"none"`` when the input size is the native one and nothing is resized."""
    channels: str = "native"
    """``grey`` where a colour dataset was converted to one luma channel before resizing."""
    unkeyed: tuple[str, ...] = ()
    """Parameters left out of the run key (declared ``in_run_key=False`` by the method)."""
    dry_run: bool = False
    """A smoke test (``--dry-run``): its own run key, so it never passes for the real run."""
    method_identity: str = ""
    """Digest of the method plugin's distribution, version and source (:mod:`harness.identity`)."""
    dataset_identity: str = ""
    """Digest of the dataset plugin's distribution, version, loader source and file checksums."""
    core_identity: str = ""
    """The harness version and a digest of its scoring and preprocessing code."""
    swept: tuple[str, ...] = ()
    """The parameters that take several values in the job's sweep: named in its label (not part
    of the run key, which holds every parameter's value)."""

    @property
    def run_key(self) -> str:
        """A hash of everything that determines the result: the job, and the identity of the code
        and data that produce it (not the machine, nor settings that cannot change a result).

        Reruns of the same job with the same code get the same key, which is how a rerun sweep
        skips finished work; after an edit of the method, the dataset loader or the scoring code
        the key changes and the job runs again.
        """
        payload = json.dumps(
            {
                "method": self.method,
                "params": {k: v for k, v in self.params.items() if k not in self.unkeyed},
                "dataset": self.dataset,
                "variant": self.dataset_variant,
                "input_size": self.input_size,
                "resize_filter": self.resize_filter,
                "seed": self.seed,
                "method_identity": self.method_identity,
                "dataset_identity": self.dataset_identity,
                "core_identity": self.core_identity,
                # only when set, so the keys of real runs stay what they were before these fields
                **({"dry_run": True} if self.dry_run else {}),
                **({"channels": self.channels} if self.channels != "native" else {}),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def configuration(self) -> str:
        """The method, with the values of the swept parameters: ``kmeans (n_init=2)``."""
        if not self.swept:
            return self.method
        return f"{self.method} ({', '.join(f'{k}={self.params[k]}' for k in self.swept)})"

    @property
    def label(self) -> str:
        return f"{self.configuration} · {self.dataset}@{self.input_size} · seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "unkeyed": list(self.unkeyed),
            "swept": list(self.swept),
            "run_key": self.run_key,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Job:
        """The job :meth:`to_dict` wrote (or an older record of it, without the newer fields)."""
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: v for k, v in values.items() if k in known}
            | {"unkeyed": tuple(values.get("unkeyed", ())), "swept": tuple(values.get("swept", ()))}
        )


def expand(
    sweep: Sweep, registry: Registry, dry_run: bool = False, identity: SweepIdentity | None = None
) -> list[Job]:
    """The jobs of a sweep, in an order that completes paired comparisons early.

    Order: dataset, input size, seed, method, configuration, so that after any prefix of the sweep
    the methods have been run on the same seeds. Every configuration gets the same seeds (a paired
    design); a configuration is one point of the grid of its method's parameter values.
    ``dry_run`` marks them as smoke tests (see :attr:`Job.dry_run`). ``identity`` (computed
    here when not given) puts the digests of the code and data into every job's run key.
    """
    identity = identity or identify(registry, sweep.methods, sweep.datasets)
    jobs: list[Job] = []
    for dataset_name in sweep.datasets:
        dataset = registry.dataset(dataset_name)
        unkeyed = {
            m: tuple(p.name for p in registry.method(m).params if not p.in_run_key) for m in sweep.methods
        }
        native = dataset.image_shape[0]
        # grey is a conversion only where there is colour: a grey dataset stays as it is
        channels = sweep.channels if dataset.image_shape[2] == 3 else "native"
        sizes = dict.fromkeys(native if s == NATIVE else int(s) for s in sweep.sizes)
        for size in sizes:
            for seed in sweep.seeds:
                for method in sweep.methods:
                    jobs.extend(
                        Job(
                            method=method,
                            dataset=dataset_name,
                            dataset_variant=dataset.variant,
                            input_size=size,
                            native_size=native,
                            seed=seed,
                            params=params,
                            resize_filter="none" if size == native else sweep.resize_filter,
                            channels=channels,
                            unkeyed=unkeyed[method],
                            dry_run=dry_run,
                            method_identity=identity.methods[method].digest,
                            dataset_identity=identity.datasets[dataset_name].digest,
                            core_identity=identity.core,
                            swept=sweep.swept(method),
                        )
                        for params in sweep.configurations(method)
                    )
    return jobs


def group_seeds(jobs: list[Job], registry: Registry, max_seeds: int = 1) -> list[tuple[Job, ...]]:
    """Tasks for ``--batch-seeds``: the seeds of one configuration together, up to ``max_seeds``.

    Jobs of methods that cannot train seeds together (no ``fit_predict_seeds``) stay one per task.
    Tasks keep the order of their first job.
    """
    if max_seeds <= 1:
        return [(job,) for job in jobs]
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        if registry.method(job.method).fit_predict_seeds is None:
            groups[job.run_key] = [job]
            continue
        config = json.dumps(
            [job.method, job.dataset, job.input_size, job.resize_filter, job.channels, job.params],
            sort_keys=True,
            default=str,
        )
        groups.setdefault(config, []).append(job)
    return [
        tuple(group[i : i + max_seeds]) for group in groups.values() for i in range(0, len(group), max_seeds)
    ]
