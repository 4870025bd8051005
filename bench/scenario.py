"""Gateway load scenarios: what to send, how fast, for how long, from flags or a TOML file.

A scenario file is flat TOML with one optional ``[mix]`` table::

    transport = "websocket"     # "websocket", "rest" or "both"
    connections = 4             # one account per connection
    rate = 2000                 # offered orders/s (open loop); omit for closed loop
    sweep = [500, 1000, 2000]   # offered rates to sweep (open loop); reports the knee
    window = 16                 # closed loop: requests in flight per connection
    duration = 10.0             # measured seconds per repetition
    warmup = 2.0                # seconds sent before measuring, excluded from the figures
    repetitions = 3             # medians and spread over these
    symbols = 1                 # listed contracts the orders spread over
    p99_target_ms = 10.0        # the knee is the highest rate whose p99 stays under this

    [mix]                       # fractions of requests; they must add up to 1
    limit = 0.55
    market = 0.05
    cancel = 0.40
    crossing = 0.2              # fraction of limit orders priced to trade at once

Unknown keys, wrong types and impossible values raise :class:`ScenarioError` naming the key.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

TRANSPORTS = ("websocket", "rest", "both")


class ScenarioError(ValueError):
    """A scenario that cannot be run: the message names the key and what is wrong."""


@dataclass(frozen=True)
class Mix:
    """Fractions of requests by kind; ``crossing`` is a fraction of the limit orders."""

    limit: float = 0.55
    market: float = 0.05
    cancel: float = 0.40
    crossing: float = 0.2

    def check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ScenarioError(f"mix.{f.name} must lie between 0 and 1, not {value}")
        total = self.limit + self.market + self.cancel
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ScenarioError(
                f"mix.limit + mix.market + mix.cancel must add up to 1, not {total:g}"
            )


@dataclass(frozen=True)
class Scenario:
    """One gateway load scenario (see the module docstring for the keys)."""

    transport: str = "both"
    connections: int = 4
    rate: float | None = None
    sweep: tuple[float, ...] = ()
    window: int = 16
    duration: float = 10.0
    warmup: float = 2.0
    repetitions: int = 3
    symbols: int = 1
    p99_target_ms: float = 10.0
    mix: Mix = field(default_factory=Mix)

    @property
    def transports(self) -> tuple[str, ...]:
        return ("websocket", "rest") if self.transport == "both" else (self.transport,)

    @property
    def rates(self) -> tuple[float, ...]:
        """Offered rates to run open loop: the sweep, or the one rate, or none."""
        if self.sweep:
            return self.sweep
        return (self.rate,) if self.rate else ()

    def check(self) -> Scenario:
        """Return the scenario if it can run; raise :class:`ScenarioError` otherwise."""
        if self.transport not in TRANSPORTS:
            raise ScenarioError(
                f"{_named('transport')} must be one of {', '.join(TRANSPORTS)}, "
                f"not {self.transport!r}"
            )
        for name in ("connections", "window", "repetitions", "symbols"):
            if getattr(self, name) < 1:
                raise ScenarioError(f"{_named(name)} must be at least 1, not {getattr(self, name)}")
        if self.duration <= 0:
            raise ScenarioError(f"{_named('duration')} must be positive, not {self.duration}")
        if self.warmup < 0:
            raise ScenarioError(f"{_named('warmup')} must not be negative, not {self.warmup}")
        if self.p99_target_ms <= 0:
            raise ScenarioError(
                f"{_named('p99_target_ms')} must be positive, not {self.p99_target_ms}"
            )
        for rate in (*self.sweep, *([self.rate] if self.rate is not None else [])):
            if rate <= 0:
                raise ScenarioError(f"offered rates (--rate, --sweep) must be positive, not {rate}")
        self.mix.check()
        return self

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sweep"] = list(self.sweep)
        return out


def _named(key: str) -> str:
    """A scenario setting as both its flag and its key in a scenario file name it."""
    return f"--{key.replace('_', '-')} ({key} in a scenario file)"


_TYPES: dict[str, tuple[type, ...]] = {
    "transport": (str,),
    "connections": (int,),
    "rate": (int, float),
    "sweep": (list,),
    "window": (int,),
    "duration": (int, float),
    "warmup": (int, float),
    "repetitions": (int,),
    "symbols": (int,),
    "p99_target_ms": (int, float),
}
_MIX_KEYS = tuple(f.name for f in fields(Mix))


def _unknown(key: str, known: tuple[str, ...], where: str) -> ScenarioError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ScenarioError(f"unknown key {key!r} in {where}{hint}; the keys are: {', '.join(known)}")


def _typed(key: str, value: Any, types: tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, types):
        names = " or ".join("number" if t is float else t.__name__ for t in types)
        raise ScenarioError(f"{key} must be a {names}, not {value!r}")
    return value


def parse_scenario(data: dict[str, Any], where: str = "the scenario") -> Scenario:
    """Build a checked :class:`Scenario` from parsed TOML."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "mix":
            if not isinstance(value, dict):
                raise ScenarioError(
                    "mix must be a table: [mix] with limit, market, cancel, crossing"
                )
            mix: dict[str, float] = {}
            for mix_key, fraction in value.items():
                if mix_key not in _MIX_KEYS:
                    raise _unknown(mix_key, _MIX_KEYS, f"[mix] of {where}")
                mix[mix_key] = float(_typed(f"mix.{mix_key}", fraction, (int, float)))
            values["mix"] = Mix(**mix)
            continue
        if key not in _TYPES:
            raise _unknown(key, (*_TYPES, "mix"), where)
        value = _typed(key, value, _TYPES[key])
        if key == "sweep":
            value = tuple(float(_typed("sweep item", v, (int, float))) for v in value)
        elif key in ("rate", "duration", "warmup", "p99_target_ms"):
            value = float(value)
        values[key] = value
    return Scenario(**values).check()


def load_scenario(path: Path) -> Scenario:
    """Read a scenario from a TOML file; raise :class:`ScenarioError` with the file named."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from exc
    return parse_scenario(data, str(path))


def parse_rates(text: str) -> tuple[float, ...]:
    """Parse ``--sweep 500,1000,2000`` into offered rates."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as exc:  # an empty entry too: "500,,1000" is a typo, not two rates
        raise ScenarioError(f"--sweep takes rates like 500,1000,2000, not {text!r}") from exc


def with_overrides(scenario: Scenario, **overrides: Any) -> Scenario:
    """Return ``scenario`` with every override that is not ``None`` applied, checked."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(scenario, **given).check()


#: Smoke-run sizes: a few seconds in all.
QUICK = {"duration": 1.0, "warmup": 0.3, "repetitions": 1, "sweep": (100.0, 200.0)}
