"""Method parameters: names checked, values coerced, nothing evaluated."""

from __future__ import annotations

import pytest

from harness import MethodResult, MethodSpec, Param
from harness.errors import UsageError
from harness.params import coerce, resolve

SPEC = MethodSpec(
    name="toy",
    fit_predict=lambda *a, **k: MethodResult(labels=None),
    params=(
        Param("maxiter", int, 20000, "iterations", low=1),
        Param("tol", float, 1e-3, "tolerance", low=0, high=1),
        Param("attention", bool, False, "gate"),
        Param("mode", str, "cae", "architecture", choices=("ae", "cae", "dae")),
        Param("ae_weights", str, None, "weights file", nullable=True),
    ),
)


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("maxiter", "2e4", 20000),
        ("maxiter", 300.0, 300),
        ("maxiter", "15", 15),
        ("tol", "0.01", 0.01),
        ("tol", 0, 0.0),
        ("attention", "False", False),  # the seed's argparse turned "False" into True
        ("attention", "true", True),
        ("attention", 1, True),
        ("mode", "dae", "dae"),
        ("ae_weights", "none", None),
        ("ae_weights", "w.h5", "w.h5"),
    ],
)
def test_coerce_accepts(name, given, expected):
    value = coerce("toy", SPEC.param(name), given)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("maxiter", 0, "'maxiter' must be an integer >= 1, got 0"),
        ("maxiter", "1.5", "must be an integer >= 1, got '1.5'"),
        ("maxiter", True, "must be an integer"),
        ("tol", "abc", "must be a number in \\[0, 1\\], got 'abc'"),
        ("tol", 2, "in \\[0, 1\\], got 2"),
        ("attention", "maybe", "must be true or false, got 'maybe'"),
        ("mode", "cea", "one of 'ae', 'cae', 'dae', got 'cea' \\(did you mean 'cae'\\?\\)"),
        ("mode", "__import__('os')", "one of 'ae', 'cae', 'dae'"),
    ],
)
def test_coerce_rejects_with_the_value_and_the_rule(name, given, message):
    with pytest.raises(UsageError, match=message):
        coerce("toy", SPEC.param(name), given)


def test_resolve_fills_defaults_and_names_unknown_parameters():
    assert resolve(SPEC, {"tol": "0.1"}) == {
        "maxiter": 20000,
        "tol": 0.1,
        "attention": False,
        "mode": "cae",
        "ae_weights": None,
    }
    with pytest.raises(
        UsageError,
        match="has no parameter 'max_iter' \\(did you mean 'maxiter'\\?\\); its parameters: maxiter, tol",
    ):
        resolve(SPEC, {"max_iter": 5})


OPEN = {
    "lr": Param("lr", float, 0.01, "learning rate", low=0, low_inclusive=False),
    "momentum": Param("momentum", float, 0.9, "momentum", low=0, high=1, high_inclusive=False),
    "share": Param("share", float, 0.5, "share", low=0, high=1, low_inclusive=False, high_inclusive=False),
    "below": Param("below", int, 1, "count", high=10, high_inclusive=False),
    "pretrain_lr": Param("pretrain_lr", float, None, "rate", low=0, low_inclusive=False, nullable=True),
}


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("lr", 0, "parameter 'lr' must be a number > 0, got 0"),
        ("lr", "0", "must be a number > 0, got '0'"),
        ("lr", -1e-3, "must be a number > 0, got -0.001"),
        ("momentum", 1, "must be a number in \\[0, 1\\), got 1"),
        ("share", 0.0, "must be a number in \\(0, 1\\), got 0.0"),
        ("share", "1", "must be a number in \\(0, 1\\), got '1'"),
        ("below", 10, "must be an integer < 10, got 10"),
        ("pretrain_lr", 0, "must be a number > 0 or none, got 0"),
    ],
)
def test_a_value_at_an_open_bound_is_refused_with_the_rule(name, given, message):
    with pytest.raises(UsageError, match=message):
        coerce("toy", OPEN[name], given)


@pytest.mark.parametrize(
    ("param", "given", "expected"),
    [
        (SPEC.param("tol"), 0, 0.0),  # closed on both sides: both bounds are valid values
        (SPEC.param("tol"), "1", 1.0),
        (SPEC.param("maxiter"), 1, 1),
        (OPEN["momentum"], 0, 0.0),  # the closed side of a half-open interval
        (OPEN["lr"], 1e-12, 1e-12),  # just inside an open bound
        (OPEN["share"], 0.999, 0.999),
        (OPEN["below"], 9, 9),
        (OPEN["pretrain_lr"], "none", None),
    ],
)
def test_a_value_at_a_closed_bound_or_inside_an_open_one_is_accepted(param, given, expected):
    value = coerce("toy", param, given)
    assert value == expected and type(value) is type(expected)
