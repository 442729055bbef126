"""The lines tried for an invoice, in the order `sync.mappers.exactness.make_exact` tries them.

Each candidate is a LineAmountTypes side and LineItems built from the Bitrix24 rows: the rows as
they are on each side of tax, then lines each on one of the two cents around the row's exact amount
chosen so their sums land on Bitrix24's (a small search), then lines whose amounts add up and whose
tax is set a cent from Xero's own rounding. Pure: the caller checks every candidate with
`xero_totals`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sync.mappers.money import CENT, ZERO, optional_decimal, quantize, to_decimal, unit_amount
from sync.mappers.xero_arithmetic import (
    EXCLUSIVE,
    HUNDRED,
    INCLUSIVE,
    NO_TAX,
    UNIT,
    Figures,
    Row,
    line_amount,
    line_tax,
)


@dataclass(frozen=True)
class Options:
    """The portal's choices that bear on exactness."""

    # A hand-entered amount is sent with the difference as one line to this account ("" = hold).
    adjustment_account: str = ""
    adjustment_tax_type: str = "NONE"
    force_exclusive: bool = False


def natural_side(rows: Sequence[Row], options: Options) -> str:
    if all(r.rate is None for r in rows):
        return NO_TAX
    taxed = [r for r in rows if r.rate]
    if options.force_exclusive or not taxed:
        return EXCLUSIVE
    return INCLUSIVE if all(r.included for r in taxed) else EXCLUSIVE


def candidates(rows: Sequence[Row], base_lines: Sequence[Mapping], goal: Figures, options: Options):
    """The representations tried, in order (see the module docstring)."""
    first = natural_side(rows, options)
    sides = [first] if first == NO_TAX else [first, INCLUSIVE if first == EXCLUSIVE else EXCLUSIVE]
    if options.force_exclusive and first != NO_TAX:
        sides = [EXCLUSIVE]
    for side in sides:
        yield side, [row_line(base, r, side) for base, r in zip(base_lines, rows, strict=True)]
    for side in sides:
        targets = _balanced_targets(rows, side, goal)
        if targets is not None:
            yield (
                side,
                [
                    _with_amounts(base, r, side, unit, amount)
                    for base, r, (amount, unit) in zip(base_lines, rows, targets, strict=True)
                ],
            )


def amount_candidates(rows: Sequence[Row], base_lines: Sequence[Mapping], goal: Figures, options: Options):
    """Lines whose amounts add up to Bitrix24's (subtotal when Exclusive, total when Inclusive);
    their tax is then set per line (override_taxes)."""
    first = natural_side(rows, options)
    if first == NO_TAX:
        return
    sides = [EXCLUSIVE] if options.force_exclusive else [first, INCLUSIVE if first == EXCLUSIVE else EXCLUSIVE]
    for side in sides:
        want = goal.subtotal if side == EXCLUSIVE else goal.total
        plain = [row_line(base, r, side) for base, r in zip(base_lines, rows, strict=True)]
        amounts = sum((_amount_of(line) for line in plain), ZERO)
        if amounts == want:
            yield side, plain
            continue
        targets = _balanced_targets(rows, side, goal, with_tax=False)
        if targets is not None:
            yield (
                side,
                [
                    _with_amounts(base, r, side, unit, amount)
                    for base, r, (amount, unit) in zip(base_lines, rows, targets, strict=True)
                ],
            )


def _amount_of(line: Mapping) -> Decimal:
    return line_amount(
        to_decimal(line.get("Quantity"), default=Decimal(1)),
        to_decimal(line.get("UnitAmount")),
        discount_rate=optional_decimal(line.get("DiscountRate")),
        discount_amount=optional_decimal(line.get("DiscountAmount")),
    )


def override_taxes(
    lines: list[dict], rows: Sequence[Row], side: str, want: Decimal, rates: Mapping[str, Decimal]
) -> tuple[list[dict], list[int]] | None:
    """Set TaxAmount on as few lines as needed, each one cent from Xero's own rounding and within a
    cent of the line's exact tax, so the lines' tax adds up to `want`; None when that cannot be."""
    computed = []
    for line, row in zip(lines, rows, strict=True):
        amount = _amount_of(line)
        rate = row.xero_rate
        exact = amount * rate / ((HUNDRED + rate) if side == INCLUSIVE else HUNDRED) if rate else ZERO
        computed.append((amount, rate, exact, line_tax(amount, rate, side)))
    short = int((want - sum((c[3] for c in computed), ZERO)) / CENT)
    if short == 0:
        return lines, []
    step = CENT if short > 0 else -CENT
    eligible = []
    for index, (_amount, rate, exact, tax) in enumerate(computed):
        moved = tax + step
        if rate and abs(moved - exact) < CENT:
            eligible.append((abs(moved - exact), index, moved))
    if len(eligible) < abs(short):
        return None
    eligible.sort()
    out = [dict(line) for line in lines]
    changed = []
    for _distance, index, moved in eligible[: abs(short)]:
        out[index]["TaxAmount"] = moved
        changed.append(rows[index].number)
    return out, sorted(changed)


def _exact_amount(row: Row, side: str) -> Decimal:
    return row.net if side == EXCLUSIVE else row.gross


def row_line(base: Mapping, row: Row, side: str) -> dict:
    """The row as it is: at `price` (Inclusive, NoTax) or at its exact tax-free unit price to 4 dp;
    in Xero's discount form when that lands on the same line amount."""
    unit = unit_amount(row.price * HUNDRED / row.factor if side == EXCLUSIVE else row.price)
    amount = line_amount(row.qty, unit)
    return _with_amounts(base, row, side, unit, amount)


def _with_amounts(base: Mapping, row: Row, side: str, unit: Decimal, amount: Decimal) -> dict:
    line = {key: value for key, value in base.items() if key not in ("UnitAmount", "DiscountRate", "DiscountAmount")}
    line["Quantity"] = row.qty
    line["UnitAmount"] = unit
    if side == NO_TAX:
        line["TaxType"] = base.get("TaxType") or "NONE"
    discounted = _discount_form(row, side, amount)
    if discounted is not None:
        line.update(discounted)
    return line


def _discount_form(row: Row, side: str, amount: Decimal) -> dict | None:
    """UnitAmount before discount with DiscountRate, when Xero's arithmetic on it gives `amount`."""
    undiscounted = row.netto if side == EXCLUSIVE else row.brutto
    if not row.discount_rate or not undiscounted or row.discount_type != 2:
        return None
    rate = row.discount_rate
    if rate != quantize(rate) or not ZERO < rate < HUNDRED:
        return None
    unit = unit_amount(undiscounted)
    if line_amount(row.qty, unit, discount_rate=rate) != amount:
        return None
    return {"UnitAmount": unit, "DiscountRate": rate}


def _reachable(row: Row, side: str) -> list[tuple[Decimal, Decimal]]:
    """(line amount, unit) pairs a 4-dp unit price gives for this row, nearest the row's exact amount:
    the closest at or below it and the closest at or above it (one pair when they coincide)."""
    exact = _exact_amount(row, side)
    if row.qty == 0:
        return [(ZERO.quantize(CENT), unit_amount(row.price))]
    centre = unit_amount(exact / row.qty)
    found = {line_amount(row.qty, centre + step * UNIT): centre + step * UNIT for step in range(-3, 4)}
    if side != EXCLUSIVE:
        found.setdefault(line_amount(row.qty, unit_amount(row.price)), unit_amount(row.price))
    below = [a for a in found if a <= exact]
    above = [a for a in found if a >= exact]
    picked = {max(below)} if below else set()
    if above:
        picked.add(min(above))
    return sorted(((a, found[a]) for a in picked), key=lambda pair: abs(pair[0] - exact))


def _balanced_targets(
    rows: Sequence[Row], side: str, goal: Figures, *, with_tax: bool = True
) -> list[tuple[Decimal, Decimal]] | None:
    """(line amount, unit) per row, each line on one of the reachable cents around the row's exact
    amount, whose sum and per-line tax sum are Bitrix24's (subtotal and tax when Exclusive, total
    and tax otherwise). A small search over (cents off the sum, cents off the tax)."""
    options = [_reachable(r, side) for r in rows]
    rate_of = [ZERO if side == NO_TAX or not with_tax else r.xero_rate for r in rows]
    near = [choices[0] for choices in options]
    want_sum = goal.subtotal if side == EXCLUSIVE else goal.total
    want_tax = ZERO if side == NO_TAX or not with_tax else goal.tax
    base_sum = sum((a for a, _u in near), ZERO)
    base_tax = sum((line_tax(a, rate, side) for (a, _u), rate in zip(near, rate_of, strict=True)), ZERO)
    need = (int((want_sum - base_sum) / CENT), int((want_tax - base_tax) / CENT))
    if need == (0, 0):
        return near
    if abs(need[0]) > 2 * len(rows) or abs(need[1]) > 2 * len(rows):
        return None
    lo_s, hi_s = min(0, need[0]) - 3, max(0, need[0]) + 3
    lo_t, hi_t = min(0, need[1]) - 3, max(0, need[1]) + 3
    # Reachable (cents off the sum, cents off the tax) -> the (row, option) switches taken.
    states: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {(0, 0): ()}
    for index, (choices, rate) in enumerate(zip(options, rate_of, strict=True)):
        if len(choices) < 2:
            continue
        base_amount = choices[0][0]
        base_line_tax = line_tax(base_amount, rate, side)
        for option, (amount, _unit) in enumerate(choices[1:], start=1):
            d_sum = int((amount - base_amount) / CENT)
            d_tax = int((line_tax(amount, rate, side) - base_line_tax) / CENT)
            for (s, t), taken in list(states.items()):
                if taken and taken[-1][0] == index:
                    continue  # one option per row
                key = (s + d_sum, t + d_tax)
                if key in states or not (lo_s <= key[0] <= hi_s and lo_t <= key[1] <= hi_t):
                    continue
                states[key] = (*taken, (index, option))
        if need in states:
            break
    found = states.get(need)
    if found is None:
        return None
    taken = found
    out = list(near)
    for index, option in taken:
        out[index] = options[index][option]
    return out
