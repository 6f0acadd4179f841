"""Which methods may share a Ray worker process is what their spec declares (``shares_process``),
never a guess from the free-text ``framework`` string."""

from __future__ import annotations

import textwrap

from harness import ray_executor
from harness.cli import main
from harness.errors import ExitCode, UsageError

PLUGIN = """
from harness import MethodResult, MethodSpec, hookimpl

def fit_predict(x, *, n_clusters, seed, params, context):
    return MethodResult(labels=[0] * len(x))

@hookimpl
def harness_methods():
    return [
        MethodSpec("says_sklearn", fit_predict, framework="scikit-learn"),
        MethodSpec("declares_sharing", fit_predict, framework="my own", shares_process=True),
    ]
"""


def test_built_in_methods_declare_whether_they_share_worker_processes(registry):
    assert registry.method("kmeans").shares_process is True
    for deep in ("dec", "dlfc"):
        if deep in registry.methods:
            assert registry.method(deep).shares_process is False


def test_the_ray_executor_shares_processes_for_the_methods_that_declare_it(tmp_path, monkeypatch):
    (tmp_path / "sharing_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = {}

    class StopAtConnect:
        """Stands in for Ray: records what the CLI asked of it, then stops the sweep."""

        def __init__(self, settings, *, shared_process_methods, **options):
            seen["shared"] = set(shared_process_methods)

        def connect(self):
            raise UsageError("stopped before Ray starts")

        def shutdown(self):
            pass

    monkeypatch.setattr(ray_executor, "RayExecutor", StopAtConnect)
    code = main(
        [
            "run", "--plugin", "sharing_plugin", "--executor", "ray",
            "--methods", "kmeans,says_sklearn,declares_sharing", "--datasets", "digits", "--seeds", "0",
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        ]
    )  # fmt: skip
    assert code == ExitCode.USAGE_ERROR
    assert seen["shared"] == {"kmeans", "declares_sharing"}
