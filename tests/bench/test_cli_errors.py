"""Bad ``cfx bench`` options: one line naming the option, exit code 2, nothing run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("feed --subscribers abc", "--subscribers takes counts like 50,200,500, not 'abc'"),
        ("feed --subscribers 0", "--subscribers takes positive numbers"),
        ("feed --rate -5", "--rate takes positive numbers"),
        ("feed --rate -5,10", "--rate takes positive numbers"),
        ("feed --duration 0", "--duration must be positive, not 0"),
        ("feed --processes 0", "--processes must be at least 1, not 0"),
        ("feed --repetitions 0", "--repetitions must be at least 1, not 0"),
        ("feed --warmup -1", "--warmup must be at least 0, not -1"),
        ("feed --url http://127.0.0.1:9", "--url needs --token"),
        ("recovery --sizes abc", "--sizes takes journal lengths like 10000,100000, not 'abc'"),
        ("recovery --sizes -100", "--sizes takes positive numbers"),
        ("recovery --repetitions 0", "--repetitions must be at least 1, not 0"),
        ("engine --quick --books 0", "--books must be at least 1, not 0"),
        ("engine --quick --seed -1", "--seed must be at least 0, not -1"),
        ("engine --quick --commands -10", "--commands must be at least 1, not -10"),
        ("engine --commands 0", "--commands must be at least 1, not 0"),
        ("engine --quick --repeats 0", "--repeats must be at least 1, not 0"),
        ("gateway --sweep abc", "--sweep takes rates like 500,1000,2000, not 'abc'"),
        ("gateway --sweep 500,,1000", "--sweep takes rates like 500,1000,2000, not '500,,1000'"),
        ("gateway --url http://127.0.0.1:9", "--url needs --token"),
        (
            "gateway --p99-target-ms 0",
            "--p99-target-ms (p99_target_ms in a scenario file) must be positive, not 0",
        ),
        ("gateway --duration 0", "--duration (duration in a scenario file) must be positive"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(args: str, message: str) -> None:
    result = runner.invoke(app, args.split(), env={"CFX_ADMIN_TOKEN": ""})
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_the_feed_rate_is_offered_commands() -> None:
    result = runner.invoke(app, ["feed", "--help"], env={"COLUMNS": "200"})
    assert "Offered commands/s" in result.output and "Book updates/s" not in result.output
