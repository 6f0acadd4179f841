"""Real runs given, by hand, the identity tags a job run carries: what the run side records once it
writes them (``harness.record``), so that report tests can make stores of several identities."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from harness import record
from harness.plugins import load_registry


def declared_defaults(method: str) -> str:
    """``harness.param_defaults`` of a method: each keyed parameter's default, as MLflow logs it."""
    params = load_registry(extra_modules=["harness_test_plugins"]).method(method).params
    return json.dumps(
        {p.name: "none" if p.default is None else str(p.default) for p in params if p.in_run_key}
    )


def identity_tags(method: str, identity: str, data: str = "d") -> dict[str, str]:
    """The tags of a run made by method code ``identity`` (one hex digit, repeated)."""
    return {
        record.METHOD_IDENTITY: identity * 16,
        record.DATASET_IDENTITY: "e" * 16,
        record.CORE_IDENTITY: "c" * 16,
        record.DATA_DIGEST: data * 16,
        record.PARAM_DEFAULTS: declared_defaults(method),
    }


def stamp(uri: str, experiment: str, identity: str) -> int:
    """Tag every job run of ``experiment`` that has no identity yet as made by ``identity``, its run
    key holding the identity as the run side's keys do (so the same sweep runs again); returns how
    many runs were tagged."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    n = 0
    for run in client.search_runs([exp.experiment_id], f"tags.`{record.KIND}` = 'job'", max_results=5000):
        tags = run.data.tags
        if record.METHOD_IDENTITY in tags:
            continue
        for key, value in identity_tags(run.data.params["method"], identity).items():
            client.set_tag(run.info.run_id, key, value)
        client.set_tag(run.info.run_id, record.RUN_KEY, f"{tags[record.RUN_KEY]}-{identity}")
        n += 1
    return n
