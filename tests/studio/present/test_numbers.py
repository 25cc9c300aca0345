"""A missing value reads "n/a" wherever a number is written, never 0."""

from __future__ import annotations

import pytest

from studio.present.numbers import MISSING, byte_size, milliseconds, number, per_second


@pytest.mark.parametrize(("value", "text"), [(None, "n/a"), (0.0, "0.000 ms"), (1.23456, "1.235 ms"),
                                             (150.0, "150.0 ms")])
def test_milliseconds_keep_the_digits_that_mean_something(value, text):
    assert milliseconds(value) == text


def test_missing_values_are_never_zero():
    assert number(None, ".3f") == per_second(None) == MISSING == "n/a"
    assert number(None, ".1f", "-") == "-"
    assert per_second(1234.56) == "1,234.6"


@pytest.mark.parametrize(("size", "text"), [(512, "512 B"), (1536, "1.50 KiB"), (3 * 2**30, "3.00 GiB")])
def test_sizes_take_the_largest_binary_unit(size, text):
    assert byte_size(size) == text
