"""Decimal money helpers. Floats never hold money here.

Bitrix24 returns numbers as JSON numbers (parsed to float by most clients) or as strings ("90909.09");
Xero's SDK gives Decimals. Every value goes through `to_decimal`, which converts a float via `str()`:
the shortest repr round-trips, so 90909.09 becomes Decimal("90909.09"), not 90909.089999999996...
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
UNIT_AMOUNT_EXP = Decimal("0.0001")  # Xero keeps UnitAmount and Quantity to 4 dp with unitdp=4
QUANTITY_EXP = Decimal("0.0001")
ZERO = Decimal("0")


def to_decimal(value: object, *, default: Decimal | None = ZERO) -> Decimal:
    """Parse a number as Bitrix24 or Xero sends it into an exact Decimal.

    None and "" give `default` (zero unless told otherwise; pass default=None to get a ValueError).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise ValueError("a number is required, got nothing")
        return default
    if isinstance(value, bool):  # bool is an int subclass; True is never an amount
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
        if not parsed.is_finite():
            raise ValueError(f"not a number: {value!r}")
        return parsed
    raise ValueError(f"not a number: {value!r}")


def optional_decimal(value: object) -> Decimal | None:
    """Like to_decimal, but None/"" stay None (a tax rate of null means "no tax", not 0%)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return to_decimal(value)


def quantize(value: Decimal, exp: Decimal = CENT) -> Decimal:
    """Round half up (away from zero on .5), the way Xero rounds line and tax amounts."""
    return value.quantize(exp, rounding=ROUND_HALF_UP)


def money(value: object) -> Decimal:
    return quantize(to_decimal(value), CENT)


def unit_amount(value: object) -> Decimal:
    return quantize(to_decimal(value), UNIT_AMOUNT_EXP)


def quantity(value: object) -> Decimal:
    return quantize(to_decimal(value, default=Decimal(1)), QUANTITY_EXP)


def plain(value: Decimal) -> str:
    """A fixed-point string without exponent or trailing zeros: 10.50 -> "10.5", 1E+2 -> "100"."""
    if value.is_zero():
        return "0"  # also folds "-0" and "0E-8"
    text = format(value.normalize(), "f")
    return text
