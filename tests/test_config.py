"""Sweep configuration: defaults, file, flags, and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config import DEFAULTS, build_sweep, parse_param_flags, parse_seeds, parse_sizes, read_config
from harness.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def test_quick_yaml_spells_out_the_defaults():
    assert yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text()) == DEFAULTS


def test_every_shipped_config_is_valid(registry):
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        sweep = build_sweep(registry, read_config(path))
        assert sweep.methods and sweep.datasets and sweep.seeds, path


def test_default_sweep_is_every_method_on_digits_three_seeds(registry):
    sweep = build_sweep(registry)
    assert sweep.methods == tuple(sorted(registry.methods))
    assert sweep.datasets == ("digits",)
    assert sweep.seeds == (0, 1, 2)
    assert sweep.params["kmeans"]["n_init"] == (20,)


def test_flags_override_the_file(registry, tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("datasets: [usps]\nseeds: 0-9\nparams: {kmeans: {n_init: 5, max_iter: 50}}\n")
    sweep = build_sweep(
        registry, read_config(cfg), {"seeds": "3", "params": parse_param_flags(["kmeans.n_init=7"])}
    )
    assert sweep.datasets == ("usps",)
    assert sweep.seeds == (3,)
    assert sweep.params["kmeans"]["n_init"] == (7,) and sweep.params["kmeans"]["max_iter"] == (50,)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0-9", tuple(range(10))),
        ("0,2,5-7", (0, 2, 5, 6, 7)),
        (3, (3,)),
        ([4, "1-2"], (4, 1, 2)),
        ("1,1,1", (1,)),
    ],
)
def test_parse_seeds(value, expected):
    assert parse_seeds(value) == expected


@pytest.mark.parametrize("value", ["9-0", "a", "-1", [True], 1.5, "", "0-"])
def test_parse_seeds_rejects(value):
    with pytest.raises(UsageError, match="seeds: expected"):
        parse_seeds(value)


def test_parse_sizes():
    assert parse_sizes("28,32") == (28, 32)
    assert parse_sizes(["native", 28]) == ("native", 28)
    for bad in ("0", "-4", "28.5", [0], "big", [True]):
        with pytest.raises(UsageError, match="sizes: expected positive integers"):
            parse_sizes(bad)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"method": ["kmeans"]},
            "unknown config key 'method' \\(did you mean 'methods'\\?\\); valid keys: experiment, methods",
        ),
        (
            {"methods": ["kmean"]},
            "unknown method 'kmean' \\(did you mean 'kmeans'\\?\\); installed methods: .*kmeans",
        ),
        (
            {"datasets": "mnst"},
            "unknown dataset 'mnst' \\(did you mean 'mnist'\\?\\); installed datasets: cifar10, coil20, digits",
        ),
        (
            {"params": {"kmeans": {"ninit": 3}}},
            "method 'kmeans' has no parameter 'ninit' \\(did you mean 'n_init'\\?\\)",
        ),
        ({"params": {"kmeans": {"n_init": 0}}}, "parameter 'n_init' must be an integer >= 1, got 0"),
        ({"params": {"kmeenz": {}}}, "unknown method 'kmeenz'"),
        ({"resize_filter": "cubic"}, "resize_filter: expected one of nearest, box, bilinear"),
        ({"device": "gpu"}, "device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
        ({"params": [1]}, "params: expected a mapping"),
    ],
)
def test_bad_config_names_key_value_and_valid_ones(registry, config, message):
    with pytest.raises(UsageError, match=message):
        build_sweep(registry, config)


def test_bad_yaml_names_file_and_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("methods: [kmeans\ndatasets: digits\n")
    with pytest.raises(UsageError, match="bad.yaml' is not valid YAML \\(line"):
        read_config(cfg)


def test_yaml_python_tags_are_refused(tmp_path):
    cfg = tmp_path / "evil.yaml"
    cfg.write_text("seeds: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        read_config(cfg)


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="cannot read config file .*nope.yaml"):
        read_config(tmp_path / "nope.yaml")


def test_param_flag_syntax():
    assert parse_param_flags(["kmeans.n_init=3", "kmeans.tol=1e-3"]) == {
        "kmeans": {"n_init": "3", "tol": "1e-3"}
    }
    with pytest.raises(UsageError, match="expected METHOD.NAME=VALUE"):
        parse_param_flags(["n_init=3"])


def test_tracking_uri_flag_then_file_then_mlflow_variable_then_default(registry, tmp_path, monkeypatch):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("tracking_uri: sqlite:///file.db\n")
    assert build_sweep(registry).tracking_uri == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert build_sweep(registry).tracking_uri == "sqlite:///env.db"
    assert build_sweep(registry, {"tracking_uri": None}).tracking_uri == "sqlite:///env.db"
    quick = read_config(ROOT / "configs" / "quick.yaml")  # the shipped default sweep leaves it to the rule
    assert build_sweep(registry, quick).tracking_uri == "sqlite:///env.db"
    assert build_sweep(registry, read_config(cfg)).tracking_uri == "sqlite:///file.db"
    flag = {"tracking_uri": "sqlite:///flag.db"}
    assert build_sweep(registry, read_config(cfg), flag).tracking_uri == "sqlite:///flag.db"
    with pytest.raises(UsageError, match="tracking_uri: expected a non-empty string, got 5"):
        build_sweep(registry, {"tracking_uri": 5})


def test_channels_are_checked(registry):
    from harness.config import build_sweep
    from harness.errors import UsageError

    assert build_sweep(registry, {"channels": "grey"}).channels == "grey"
    with pytest.raises(UsageError, match="channels: expected one of native, grey, got 'gray'"):
        build_sweep(registry, {"channels": "gray"})
