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
