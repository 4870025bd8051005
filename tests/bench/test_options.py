"""Benchmark options: lists of positive numbers and bounded values, refused by name."""

from __future__ import annotations

import pytest

from bench.options import OptionError, at_least, positive, positive_list


def test_a_list_of_positive_numbers() -> None:
    assert positive_list("50,200, 500", "--subscribers", int, "counts") == [50, 200, 500]
    assert positive_list("2000", "--rate", float, "rates") == [2000.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "--rate takes rates like 500,2000, not 'abc'"),
        ("500,,1000", "--rate takes rates like 500,2000, not '500,,1000'"),
        ("500,", "--rate takes rates like 500,2000, not '500,'"),
        ("-5", "--rate takes positive numbers (rates like 500,2000), not '-5'"),
        ("0,10", "--rate takes positive numbers"),
        ("inf", "--rate takes positive numbers"),
    ],
)
def test_a_bad_list_names_the_option(text: str, message: str) -> None:
    with pytest.raises(OptionError) as err:
        positive_list(text, "--rate", float, "rates like 500,2000")
    assert str(err.value).startswith(message)


def test_bounds_and_defaults() -> None:
    assert at_least(None, "--repetitions", 1, 3) == 3
    assert at_least(None, "--processes", 1, default=None) is None
    assert at_least(0, "--seed", 0, 1) == 0
    assert positive(None, "--duration", 10.0) == 10.0
    assert positive(0.5, "--duration", 10.0) == 0.5
    with pytest.raises(OptionError, match=r"^--processes must be at least 1, not 0$"):
        at_least(0, "--processes", 1, default=None)  # an explicit 0 is not "the default"
    with pytest.raises(OptionError, match=r"^--duration must be positive, not 0$"):
        positive(0.0, "--duration", 10.0)
