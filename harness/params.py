"""Method parameters: check names and coerce values against what the plugin declared.

Values come typed from YAML or as strings from ``--param method.name=value``. Nothing is ever
evaluated as code: strings are parsed as numbers or booleans, never passed to ``eval``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.errors import UsageError, did_you_mean
from harness.types import MethodSpec, Param

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def describe(p: Param) -> str:
    """What a parameter accepts, in words (used in errors and in ``harness list``)."""
    if p.choices:
        text = "one of " + ", ".join(repr(c) for c in p.choices)
    elif p.type is bool:
        text = "true or false"
    else:
        text = {int: "an integer", float: "a number", str: "a string"}[p.type]
        if p.low is not None and p.high is not None:
            left, right = "[" if p.low_inclusive else "(", "]" if p.high_inclusive else ")"
            text += f" in {left}{p.low:g}, {p.high:g}{right}"
        elif p.low is not None:
            text += f" {'>=' if p.low_inclusive else '>'} {p.low:g}"
        elif p.high is not None:
            text += f" {'<=' if p.high_inclusive else '<'} {p.high:g}"
    return text + (" or none" if p.nullable else "")


def _fail(method: str, p: Param, value: Any) -> UsageError:
    return UsageError(f"method {method!r}: parameter {p.name!r} must be {describe(p)}, got {value!r}")


def coerce(method: str, p: Param, value: Any) -> Any:
    """Return ``value`` as the declared type, or raise a UsageError naming the value and the rule."""
    if p.nullable and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
        return None
    if value is None:
        raise _fail(method, p, value)
    if p.type is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _fail(method, p, value)
    if p.type is str:
        if not isinstance(value, str):
            raise _fail(method, p, value)
        if p.choices and value not in p.choices:
            raise UsageError(
                f"method {method!r}: parameter {p.name!r} must be {describe(p)}, got {value!r}"
                + did_you_mean(value, p.choices)
            )
        return value
    # numbers
    if isinstance(value, bool):
        raise _fail(method, p, value)
    if isinstance(value, str):
        try:
            number: float | int = float(value) if p.type is float else _parse_int(value)
        except ValueError:
            raise _fail(method, p, value) from None
    elif isinstance(value, int | float):
        number = value
    else:
        raise _fail(method, p, value)
    if p.type is int:
        if isinstance(number, float):
            if not number.is_integer():
                raise _fail(method, p, value)
            number = int(number)
    else:
        number = float(number)
        if not math.isfinite(number):
            raise _fail(method, p, value)
    if not _within(p, number):
        raise _fail(method, p, value)
    return number


def _within(p: Param, number: float) -> bool:
    if p.low is not None and (number < p.low if p.low_inclusive else number <= p.low):
        return False
    return p.high is None or (number <= p.high if p.high_inclusive else number < p.high)


def _parse_int(text: str) -> int:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)  # accepts "2e4", as DEC-keras' --maxiter did
        if not number.is_integer():
            raise
        return int(number)


def resolve(spec: MethodSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """All parameters of ``spec``: the declared defaults, overridden by ``given`` (validated)."""
    names = [p.name for p in spec.params]
    for key in given:
        if key not in names:
            valid = ", ".join(names) if names else "none"
            raise UsageError(
                f"method {spec.name!r} has no parameter {key!r}{did_you_mean(key, names)}; "
                f"its parameters: {valid}"
            )
    resolved = spec.defaults()
    for key, value in given.items():
        resolved[key] = coerce(spec.name, spec.param(key), value)
    return resolved
