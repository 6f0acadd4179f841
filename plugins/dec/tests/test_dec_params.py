"""DEC's parameters: presets as DEC-keras had them, overrides, validation, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.errors import UsageError
from harness.params import resolve as resolve_params
from harness_dec import PARAMS, harness_methods
from harness_dec.presets import FALLBACK, resolve


def _params(**given):
    return {p.name: p.default for p in PARAMS} | given


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("mnist", ("mnist", "variance_scaling", "sgd", 1.0, 300, 140)),
        ("fmnist", ("fmnist", "variance_scaling", "sgd", 1.0, 300, 140)),
        ("coil20", ("coil20", "variance_scaling", "sgd", 1.0, 300, 140)),
        ("usps", ("usps", "glorot_uniform", "adam", 1e-3, 50, 30)),
        ("digits", ("usps", "glorot_uniform", "adam", 1e-3, 50, 30)),
    ],
)
def test_auto_preset_follows_dec_keras(dataset, expected):
    r = resolve(_params(), dataset)
    assert (
        r.preset,
        r.init,
        r.pretrain_optimizer,
        r.pretrain_lr,
        r.pretrain_epochs,
        r.update_interval,
    ) == expected


def test_datasets_dec_keras_never_had_get_the_documented_fallback():
    assert resolve(_params(), "something-new").preset == FALLBACK == "usps"


def test_each_preset_value_can_be_overridden_and_is_recorded():
    r = resolve(_params(preset="mnist", pretrain_epochs=7, update_interval=9, init="glorot_uniform"), "usps")
    assert (r.preset, r.init, r.pretrain_epochs, r.update_interval) == ("mnist", "glorot_uniform", 7, 9)
    assert r.tags()["dec.resolved.pretrain_epochs"] == "7" and r.tags()["dec.resolved.preset"] == "mnist"


def test_switching_optimizer_takes_that_optimizers_learning_rate():
    assert resolve(_params(pretrain_optimizer="adam"), "mnist").pretrain_lr == 1e-3
    assert resolve(_params(pretrain_optimizer="sgd"), "usps").pretrain_lr == 1.0
    assert resolve(_params(pretrain_optimizer="sgd", pretrain_lr=0.1), "usps").pretrain_lr == 0.1


def test_spec_declares_dec_keras_cli_parameters():
    (spec,) = harness_methods()
    defaults = spec.defaults()
    assert spec.name == "dec" and spec.input == "flat" and spec.framework == "keras"
    for name in ("batch_size", "maxiter", "pretrain_epochs", "update_interval", "tol", "ae_weights"):
        assert name in defaults
    assert (defaults["batch_size"], defaults["maxiter"], defaults["tol"], defaults["n_init"]) == (
        256,
        20000,
        0.001,
        20,
    )
    assert resolve_params(spec, {"maxiter": "2e4"})["maxiter"] == 20000  # as DEC-keras' --maxiter 2e4


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"preset": "mnst"},
            "parameter 'preset' must be one of 'auto', 'mnist'.*got 'mnst' \\(did you mean 'mnist'\\?\\)",
        ),
        (
            {"backend": "pytorch"},
            "parameter 'backend' must be one of 'auto', 'tensorflow', 'jax', 'torch'.*got 'pytorch'",
        ),
        ({"pretrain_epochs": 0}, "parameter 'pretrain_epochs' must be an integer >= 1 or none, got 0"),
        ({"tol": 2}, "parameter 'tol' must be a number in \\[0, 1\\], got 2"),
        ({"lr": 0}, "parameter 'lr' must be a number > 0, got 0"),
        ({"pretrain_lr": "0"}, "parameter 'pretrain_lr' must be a number > 0 or none, got '0'"),
        (
            {"init": "he_normal"},
            "parameter 'init' must be one of 'auto', 'glorot_uniform', 'variance_scaling'",
        ),
        (
            {"update_intervall": 3},
            "has no parameter 'update_intervall' \\(did you mean 'update_interval'\\?\\)",
        ),
    ],
)
def test_bad_values_name_the_value_and_the_valid_ones(given, message):
    (spec,) = harness_methods()
    with pytest.raises(UsageError, match=message):
        resolve_params(spec, given)


@pytest.mark.parametrize("flag", ["dec.lr=0", "dec.pretrain_lr=0"])
def test_a_learning_rate_of_zero_is_a_usage_error_before_anything_runs(tmp_path, capsys, flag):
    # a learning rate of 0 would train nothing and still spend the full time (--dry-run: if the
    # check ever goes, this test fails in seconds instead of training)
    from harness.cli import main

    argv = ["run", "--tracking-uri", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}", "--methods", "dec"]
    assert main([*argv, "--datasets", "digits", "--dry-run", "--param", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: ") and "must be a number > 0" in err and "\n" not in err
    assert not (tmp_path / "store").exists()


def test_registering_the_plugin_does_not_import_keras():
    # The registry is built in every worker process, k-means ones included.
    code = "import sys, harness_dec; harness_dec.harness_methods(); print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_auto_backend_is_keras_backend_when_the_user_set_it(monkeypatch):
    from harness_dec import runtime

    monkeypatch.delitem(sys.modules, "keras", raising=False)  # a fresh job process: nothing chosen yet
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert runtime.resolve_backend("auto") == "torch"
    assert runtime.resolve_backend("tensorflow") == "tensorflow"  # an explicit parameter wins
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    with pytest.raises(ValueError, match="KERAS_BACKEND is 'theano'.*valid: tensorflow, jax, torch"):
        runtime.resolve_backend("auto")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="asks for jax, which is not installed"):
        runtime.resolve_backend("auto")
    monkeypatch.delenv("KERAS_BACKEND")
    with pytest.raises(RuntimeError, match="none of tensorflow, jax, torch is installed"):
        runtime.resolve_backend("auto")
