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


STAMPED = "test.stamped"
"""On a run whose identity a test set by hand: later calls leave it as it is."""


def _fresh_runs(uri: str, experiment: str) -> tuple[MlflowClient, list]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], f"tags.`{record.KIND}` = 'job'", max_results=5000)
    return client, [run for run in runs if STAMPED not in run.data.tags]


def stamp(uri: str, experiment: str, identity: str) -> int:
    """Tag every job run of ``experiment`` not stamped before as made by method code ``identity``
    (in place of the identity the run side recorded), its run key holding that identity (so the
    same sweep runs again); returns how many runs were tagged."""
    client, runs = _fresh_runs(uri, experiment)
    for run in runs:
        for key, value in identity_tags(run.data.params["method"], identity).items():
            client.set_tag(run.info.run_id, key, value)
        client.set_tag(run.info.run_id, record.RUN_KEY, f"{run.data.tags[record.RUN_KEY]}-{identity}")
        client.set_tag(run.info.run_id, STAMPED, identity)
    return len(runs)


def strip(uri: str, experiment: str) -> int:
    """Remove the identity and defaults tags from the runs not stamped before, as a run recorded
    before harness wrote them would be; returns how many runs were stripped."""
    client, runs = _fresh_runs(uri, experiment)
    for run in runs:
        for key in (*record.IDENTITY_TAGS, record.DATA_DIGEST, record.PARAM_DEFAULTS):
            if key in run.data.tags:
                client.delete_tag(run.info.run_id, key)
    return len(runs)
