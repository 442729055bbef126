"""Money parsing and rounding: Bitrix24 sends numbers as JSON floats or strings; none may drift."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sync.mappers.money import money, optional_decimal, plain, quantize, to_decimal, unit_amount


def test_a_float_from_bitrix24_becomes_the_decimal_it_was_written_as():
    assert to_decimal(90909.09) == Decimal("90909.09")
    assert to_decimal(0.1) + to_decimal(0.2) == Decimal("0.3")


def test_strings_ints_and_decimals_parse_to_the_same_value():
    assert to_decimal("33.33") == to_decimal(33.33) == Decimal("33.33")
    assert to_decimal(7) == Decimal(7)


def test_nothing_means_zero_unless_a_value_is_required():
    assert to_decimal(None) == to_decimal("") == Decimal(0)
    with pytest.raises(ValueError, match="required"):
        to_decimal(None, default=None)


def test_a_missing_tax_rate_stays_none_rather_than_zero_percent():
    assert optional_decimal(None) is None
    assert optional_decimal("") is None
    assert optional_decimal(0) == Decimal(0)


@pytest.mark.parametrize("bad", [True, "abc", "NaN", "Infinity", [1]])
def test_values_that_are_not_amounts_are_refused(bad):
    with pytest.raises(ValueError, match="not a number"):
        to_decimal(bad)


def test_rounding_is_half_up_away_from_zero_like_xero():
    assert quantize(Decimal("0.125")) == Decimal("0.13")
    assert quantize(Decimal("-0.125")) == Decimal("-0.13")
    assert money("8.9955") == Decimal("9.00")
    assert unit_amount(43.4347826) == Decimal("43.4348")


def test_plain_drops_trailing_zeros_and_exponents():
    assert plain(Decimal("10.50")) == "10.5"
    assert plain(Decimal("1E+2")) == "100"
    assert plain(Decimal("-0.00")) == "0"
