"""Method parameters: check names and coerce values against what the plugin declared.

Values come typed from YAML or as strings from ``--param method.name=value``. Nothing is ever
evaluated as code: strings are parsed as numbers or booleans, never passed to ``eval``.

A parameter may take several values (a YAML list, or ``--param dec.update_interval=30,140``):
the sweep then runs each value as a configuration of its own (:func:`resolve_grid`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
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


def split_values(text: str) -> list[str]:
    """The values of one ``--param`` flag: split at commas outside double quotes, so that a
    string holding a comma is written quoted (``note="a,b"``); one value stays one."""
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader([text], skipinitialspace=True, strict=True))
    except csv.Error:
        raise UsageError(f'--param: cannot split {text!r} into values (quote a value as "a,b")') from None


def resolve_grid(spec: MethodSpec, given: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Every parameter of ``spec`` with the values it takes in a sweep: its default alone, or
    the given value(s), each validated, repeats dropped (``2,2.0`` of an integer is one value).

    A list (or tuple) gives several values. A parameter outside the run key cannot take several:
    its values would be jobs with one run key, the same job run twice.
    """
    names = [p.name for p in spec.params]
    singles = {k: v for k, v in given.items() if not _is_list(v)}
    resolved = resolve(spec, singles)  # unknown names and bad single values raise here
    grid: dict[str, tuple[Any, ...]] = {k: (v,) for k, v in resolved.items()}
    for key, values in given.items():
        if not _is_list(values):
            continue
        if key not in names:
            resolve(spec, {key: None})  # raises the unknown-parameter error
        p = spec.param(key)
        if not values:
            raise UsageError(f"method {spec.name!r}: parameter {key!r} got an empty list; give it a value")
        coerced = tuple(dict.fromkeys(coerce(spec.name, p, v) for v in values))
        if len(coerced) > 1 and not p.in_run_key:
            raise UsageError(
                f"method {spec.name!r}: parameter {key!r} cannot change a result (it is outside the run "
                f"key), so it takes one value, got {list(values)!r}"
            )
        grid[key] = coerced
    return grid


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)
