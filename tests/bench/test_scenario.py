"""Gateway scenarios from TOML: defaults, overrides, and clear errors for bad keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scenario import Mix, Scenario, ScenarioError, load_scenario, parse_rates, with_overrides

GOOD = """
transport = "websocket"
connections = 8
sweep = [500, 1000, 2000]
duration = 5
warmup = 1.5
repetitions = 2
symbols = 2
p99_target_ms = 20

[mix]
limit = 0.6
market = 0.1
cancel = 0.3
crossing = 0.5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def test_a_full_scenario_file(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, GOOD))
    assert s == Scenario(transport="websocket", connections=8, sweep=(500.0, 1000.0, 2000.0),
                         duration=5.0, warmup=1.5, repetitions=2, symbols=2, p99_target_ms=20.0,
                         mix=Mix(limit=0.6, market=0.1, cancel=0.3, crossing=0.5))  # fmt: skip
    assert s.transports == ("websocket",)
    assert s.rates == (500.0, 1000.0, 2000.0)


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, ""))
    assert s == Scenario()
    assert s.transports == ("websocket", "rest")
    assert s.rates == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conections = 4", "unknown key 'conections' in .*did you mean 'connections'"),
        ("[mix]\nlimt = 1.0", r"unknown key 'limt' in \[mix\].*did you mean 'limit'"),
        ("bogus = 1", "unknown key 'bogus'.*the keys are: transport, connections"),
        ('connections = "4"', "connections must be a int, not '4'"),
        ("duration = true", "duration must be a int or number, not True"),
        ("connections = 0", r"--connections \(connections in a scenario file\) must be at least 1"),
        (
            'transport = "udp"',
            r"--transport \(transport in a scenario file\) must be one of websocket, rest",
        ),
        ("sweep = [500, -1]", r"offered rates \(--rate, --sweep\) must be positive"),
        ('sweep = ["fast"]', "sweep item must be a int or number"),
        ("[mix]\nlimit = 0.5\nmarket = 0.1\ncancel = 0.1", "must add up to 1, not 0.7"),
        ("[mix]\ncrossing = 2", "mix.crossing must lie between 0 and 1"),
        ("mix = 3", "mix must be a table"),
        ("duration = ", "is not valid TOML"),
    ],
)
def test_bad_scenarios_say_which_key_and_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, text))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"cannot read scenario .*nope\.toml"):
        load_scenario(tmp_path / "nope.toml")


def test_flags_override_the_file_and_are_checked(tmp_path: Path) -> None:
    s = with_overrides(load_scenario(write(tmp_path, GOOD)), connections=2, rate=None)
    assert s.connections == 2 and s.sweep == (500.0, 1000.0, 2000.0)
    with pytest.raises(
        ScenarioError, match=r"--repetitions \(repetitions in a scenario file\) must be at least 1"
    ):
        with_overrides(s, repetitions=0)


def test_sweep_flag() -> None:
    assert parse_rates("500,1000, 2000") == (500.0, 1000.0, 2000.0)
    with pytest.raises(ScenarioError, match="--sweep takes rates like"):
        parse_rates("500,lots")
