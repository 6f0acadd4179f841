"""DLFC parameters: the seed's names and meanings, validated and coerced by the core."""

from __future__ import annotations

import pytest

from harness.config import build_sweep, parse_param_flags
from harness.errors import UsageError
from harness.params import resolve


@pytest.fixture(scope="module")
def spec(registry):
    return registry.method("dlfc")


def test_the_seeds_parameters_with_their_defaults(spec):
    # The seed's train.py flags, by name; learning_rate gets a usable default (the seed had none).
    assert spec.defaults() == {
        "mode": "cae",
        "attention": False,
        "include_layer": None,
        "batch_size": 256,
        "ae_iterations": 300,
        "learning_rate": 1.0,
        "cluster_iterations": 15000,
        "interval_updation": 140,
        "tolerance_threshold": 0.001,
        "ae_weights": None,
        "stack_seeds": "auto",
    }
    assert spec.input == "image" and spec.framework == "pytorch"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("False", False),
        ("false", False),
        ("0", False),
        ("no", False),
        ("True", True),
        ("true", True),
        ("1", True),
    ],
)
def test_attention_is_a_real_boolean(spec, given, expected):
    # The seed's argparse type=bool made "-att False" switch attention ON.
    assert resolve(spec, {"attention": given})["attention"] is expected


def test_flags_become_typed_values(spec):
    flags = parse_param_flags(
        [
            "dlfc.mode=dae",
            "dlfc.include_layer=64",
            "dlfc.cluster_iterations=2e4",
            "dlfc.learning_rate=0.1",
            "dlfc.ae_weights=../shared/models/dlfc/mnist_ae_with_attention.h5",
            "dlfc.tolerance_threshold=0.01",
        ]
    )["dlfc"]
    got = resolve(spec, flags)
    assert got["mode"] == "dae" and got["include_layer"] == 64 and got["cluster_iterations"] == 20000
    assert got["learning_rate"] == 0.1 and got["tolerance_threshold"] == 0.01
    assert got["ae_weights"].endswith("mnist_ae_with_attention.h5")
    assert resolve(spec, {"ae_weights": "none", "include_layer": "null"})["ae_weights"] is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"mode": "cea"},
            "parameter 'mode' must be one of 'cae', 'dae', 'ae', got 'cea' (did you mean 'cae'?)",
        ),
        ({"attention": "maybe"}, "parameter 'attention' must be true or false, got 'maybe'"),
        ({"batch_size": "0"}, "parameter 'batch_size' must be an integer >= 1, got '0'"),
        ({"tolerance_threshold": "2"}, "parameter 'tolerance_threshold' must be a number in [0, 1], got '2'"),
        ({"learning_rate": "fast"}, "parameter 'learning_rate' must be a number > 0, got 'fast'"),
        ({"learning_rate": "0"}, "parameter 'learning_rate' must be a number > 0, got '0'"),
        (
            {"interval": "140"},
            "method 'dlfc' has no parameter 'interval' (did you mean 'interval_updation'?)",
        ),
    ],
)
def test_bad_values_name_the_parameter_and_what_is_valid(spec, given, message):
    with pytest.raises(UsageError) as info:
        resolve(spec, given)
    assert message in str(info.value)


def test_a_learning_rate_of_zero_is_a_usage_error_before_anything_runs(tmp_path, capsys):
    # the seed's SGD would accept 0 and spend every epoch changing nothing
    from harness.cli import main

    argv = ["run", "--tracking-uri", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}", "--methods", "dlfc"]
    assert main([*argv, "--datasets", "digits", "--dry-run", "--param", "dlfc.learning_rate=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: ") and "\n" not in err
    assert "parameter 'learning_rate' must be a number > 0, got '0'" in err
    assert not (tmp_path / "store").exists()


def test_yaml_values_and_sizes_below_the_minimum(registry):
    sweep = build_sweep(
        registry, {"methods": ["dlfc"], "datasets": ["digits"], "params": {"dlfc": {"attention": True}}}
    )
    assert sweep.params["dlfc"]["attention"] == (True,)
    with pytest.raises(UsageError, match="method 'dlfc' needs input images of at least 4 px, got 2"):
        build_sweep(registry, {"methods": ["dlfc"], "datasets": ["digits"], "sizes": [2]})


def test_registering_the_plugin_does_not_import_torch():
    # The registry is built in every worker (k-means ones too): torch must load lazily.
    import subprocess
    import sys

    code = "import sys; from harness.plugins import load_registry; load_registry().method('dlfc'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
