"""Command-line values of the benchmarks: checked up front, refused with the option named.

A benchmark's ``main`` catches :class:`OptionError`, prints ``error: <message>`` and exits
with code 2, the way ``--sweep`` and the gateway scenario keys are refused
(:mod:`bench.scenario`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar, overload

N = TypeVar("N", int, float)


class OptionError(ValueError):
    """A command-line value a benchmark cannot run with: the message names the option."""


def positive_list(text: str, option: str, kind: Callable[[str], N], example: str) -> list[N]:
    """Parse ``--option 500,2000``: comma-separated positive numbers, no empty entries."""
    try:
        values = [kind(part) for part in text.split(",")]
    except ValueError as exc:
        raise OptionError(f"{option} takes {example}, not {text!r}") from exc
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise OptionError(f"{option} takes positive numbers ({example}), not {text!r}")
    return values


@overload
def at_least(value: N | None, option: str, low: N, default: N) -> N: ...
@overload
def at_least(value: N | None, option: str, low: N, default: None) -> N | None: ...
def at_least(value: N | None, option: str, low: N, default: N | None) -> N | None:
    """Return ``value``, or ``default`` if it was not given; refuse a value below ``low``."""
    if value is None:
        return default
    if value < low:
        raise OptionError(f"{option} must be at least {low:g}, not {value:g}")
    return value


def positive(value: N | None, option: str, default: N) -> N:
    """Return ``value``, or ``default`` if it was not given; refuse a value that is not above 0."""
    if value is None:
        return default
    if not value > 0:
        raise OptionError(f"{option} must be positive, not {value:g}")
    return value
