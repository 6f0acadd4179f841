"""The contract kit over every registered plugin: the built-ins are held to what a third party's
plugin is (methods at small budgets, datasets where their files are present)."""

from __future__ import annotations

import pytest
from harness_test_fixtures import shared_data_dir

from harness.data import DataError
from harness.plugins import load_registry
from harness.testing import check_dataset, check_method

REGISTRY = load_registry()

BUDGETS = {
    "kmeans": {"n_init": 2},
    "dec": {"pretrain_epochs": 2, "maxiter": 6, "update_interval": 3, "n_init": 2, "threads": 1},
    # stacked on a CPU too, so that the batch really is the vmapped model and not a loop of fit_predict
    "dlfc": {"ae_iterations": 2, "cluster_iterations": 6, "interval_updation": 3, "stack_seeds": "always"},
}


@pytest.mark.parametrize("name", sorted(REGISTRY.methods))
def test_every_method_keeps_the_contract(name):
    check_method(REGISTRY.method(name), params=BUDGETS.get(name, {}))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.data] if spec.checksums else [])
        for name, (spec, _) in sorted(REGISTRY.datasets.items())
    ],
)
def test_every_dataset_agrees_with_its_spec(name):
    spec, provider = REGISTRY.datasets[name]
    root = shared_data_dir()
    try:
        spec.fetch(root, False)
    except DataError as exc:
        pytest.skip(f"files absent: {exc}")
    check_dataset(spec, root, plugin=provider.plugin)
