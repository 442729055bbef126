"""Exact or held: what Xero will compute for an invoice, and lines that make it equal Bitrix24's.

Xero never takes totals. It computes them (xero-api.md §2.2, Invoices in xero_accounting.yaml):

* LineAmount = Quantity x UnitAmount (UnitAmount at up to 4 dp with `unitdp=4`, Quantity at 4 dp)
  less DiscountRate % or DiscountAmount, rounded half up (away from zero) to the cent;
* TaxAmount per line from the tax type's *effective* rate, rounded half up per line: on
  Exclusive lines LineAmount x rate / 100, on Inclusive lines LineAmount x rate / (100 + rate)
  (the tax is extracted from the line); NoTax lines carry none;
* SubTotal, TotalTax and Total are the sums of the rounded lines.

Bitrix24 works the other way round: a row's `price` is its final unit price with tax
(bitrix24-api.md §1.4), the invoice's `opportunity` is sum(price x quantity) rounded once and
`taxValue` the sum of each row's tax rounded once. With quantities at 4 dp the two roundings
disagree by a cent or more on many invoices, and a row whose tax is not included has an exact
tax-free price with more than 2 dp.

So the lines are chosen per invoice, and every choice is checked with `xero_totals` (the one
place Xero's arithmetic lives here) against Bitrix24's amount and tax:

1. the rows as they are, on their own side of tax (Inclusive at `price` when every taxed row
   includes tax, else Exclusive at the exact tax-free unit price to 4 dp), then the other side;
2. if neither lands on Bitrix24's figures: each line rounded to one of the two cents around the
   row's exact amount, chosen so that the lines add up to Bitrix24's total and their per-line tax
   to Bitrix24's tax (a small search; the unit price to 4 dp then lands each line on its cent).

Nothing else is ever sent. When no choice reproduces both figures the invoice is *held*, with both
amounts and the cause in words (`Verdict.message`): a hand-entered amount, a tax type whose real
rate differs from the row's, or rounding (naming the rows whose exact amounts carry fractions of a
cent). The caller decides what a hold means (not sent; Xero keeps its last good version).

An invoice whose total is below zero becomes a credit note (ACCRECCREDIT): the same lines with
the sign turned, so Xero's credit note is positive; Xero's rounding is symmetric (away from zero).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sync.mappers.money import CENT, ZERO, money, optional_decimal, plain, quantize, to_decimal, unit_amount

EXCLUSIVE = "Exclusive"
INCLUSIVE = "Inclusive"
NO_TAX = "NoTax"
UNIT = Decimal("0.0001")
HUNDRED = Decimal(100)

# Causes of a hold (stable codes for counting; the message says it in words).
CAUSE_MANUAL = "manual_amount"
CAUSE_TAX_RATE = "tax_rate"
CAUSE_ROUNDING = "rounding"
CAUSE_PRECISION = "precision"
HELD_PREFIX = "Held: totals differ."
CAUSE_LABELS = {
    CAUSE_MANUAL: "amount entered by hand",
    CAUSE_TAX_RATE: "tax type's rate differs",
    CAUSE_ROUNDING: "rounding",
    CAUSE_PRECISION: "unit price needs more than 4 dp",
}


# --- Xero's arithmetic ------------------------------------------------------------------------------


def line_amount(
    qty: Decimal, unit: Decimal, *, discount_rate: Decimal | None = None, discount_amount: Decimal | None = None
) -> Decimal:
    """Xero's LineAmount: quantity x unit less the discount, rounded half up to the cent."""
    gross = qty * unit
    if discount_rate:
        gross = gross * (HUNDRED - discount_rate) / HUNDRED
    elif discount_amount:
        gross = gross - discount_amount
    return quantize(gross)


def line_tax(amount: Decimal, rate: Decimal, amount_type: str) -> Decimal:
    """Xero's TaxAmount of one line, rounded half up per line."""
    if amount_type == NO_TAX or not rate:
        return ZERO.quantize(CENT)
    if amount_type == INCLUSIVE:
        return quantize(amount * rate / (HUNDRED + rate))
    return quantize(amount * rate / HUNDRED)


@dataclass(frozen=True)
class Figures:
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    def same(self, other: Figures) -> bool:
        return (self.total, self.tax) == (other.total, other.tax)


def xero_totals(line_items: Sequence[Mapping], amount_type: str, rates: Mapping[str, Decimal]) -> Figures:
    """SubTotal, TotalTax and Total Xero computes for these LineItems; `rates` are the organisation's
    effective rates by TaxType (a TaxType missing there counts as 0%)."""
    lines = tax = ZERO
    for line in line_items:
        amount = line_amount(
            to_decimal(line.get("Quantity"), default=Decimal(1)),
            to_decimal(line.get("UnitAmount")),
            discount_rate=optional_decimal(line.get("DiscountRate")),
            discount_amount=optional_decimal(line.get("DiscountAmount")),
        )
        lines += amount
        if amount_type != NO_TAX and line.get("TaxAmount") is not None:
            tax += money(line["TaxAmount"])  # an override Xero keeps (LineItem.TaxAmount)
            continue
        rate = ZERO if amount_type == NO_TAX else to_decimal(rates.get(line.get("TaxType") or "", ZERO))
        tax += line_tax(amount, rate, amount_type)
    if amount_type == INCLUSIVE:
        return Figures(subtotal=money(lines - tax), tax=money(tax), total=money(lines))
    return Figures(subtotal=money(lines), tax=money(tax), total=money(lines + tax))


# --- Bitrix24's rows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One Bitrix24 product row, with its exact amounts (before any rounding)."""

    number: int  # 1-based, as the user sees the rows
    name: str
    qty: Decimal
    price: Decimal  # final unit price, with tax (Bitrix24's `price`)
    rate: Decimal | None  # Bitrix24's taxRate; None = no tax
    included: bool
    netto: Decimal  # before discount, without tax (priceNetto)
    brutto: Decimal  # before discount, with tax (priceBrutto)
    discount_type: int
    discount_rate: Decimal
    tax_type: str  # the Xero TaxType the map gives
    xero_rate: Decimal  # that tax type's effective rate in Xero

    @property
    def factor(self) -> Decimal:
        return HUNDRED + (self.rate or ZERO)

    @property
    def gross(self) -> Decimal:
        return self.price * self.qty

    @property
    def net(self) -> Decimal:
        return self.gross * HUNDRED / self.factor

    def label(self) -> str:
        return f'row {self.number} "{self.name}"' if self.name else f"row {self.number}"


def read_rows(rows: Sequence[Mapping], tax_types: Sequence[str], rates: Mapping[str, Decimal]) -> list[Row]:
    out = []
    for index, (row, tax_type) in enumerate(zip(rows, tax_types, strict=True)):
        out.append(
            Row(
                number=index + 1,
                name=str(row.get("productName") or "").strip()[:60],
                qty=to_decimal(row.get("quantity"), default=Decimal(1)),
                price=to_decimal(row.get("price")),
                rate=optional_decimal(row.get("taxRate")),
                included=row.get("taxIncluded") == "Y",
                netto=to_decimal(row.get("priceNetto")),
                brutto=to_decimal(row.get("priceBrutto")),
                discount_type=_int(row.get("discountTypeId")) or 2,
                discount_rate=to_decimal(row.get("discountRate")),
                tax_type=tax_type,
                xero_rate=to_decimal(rates.get(tax_type, ZERO)),
            )
        )
    return out


def rows_totals(rows: Sequence[Row]) -> Figures:
    """What Bitrix24 computes from the rows: the exact sums, each rounded once."""
    total = money(sum((r.gross for r in rows), ZERO))
    tax = money(sum((r.gross - r.net for r in rows), ZERO))
    return Figures(subtotal=total - tax, tax=tax, total=total)


def bitrix24_figures(invoice: Mapping) -> Figures:
    """The invoice's own amount and tax (opportunity, taxValue)."""
    total = money(invoice.get("opportunity"))
    tax = money(invoice.get("taxValue"))
    return Figures(subtotal=total - tax, tax=tax, total=total)


# --- the verdict ------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """Exact: `line_items`/`amount_type` reproduce `bitrix24`. Held: `cause` and `message` say why."""

    exact: bool
    bitrix24: Figures
    xero: Figures
    amount_type: str = EXCLUSIVE
    line_items: list[dict] = field(default_factory=list)
    credit_note: bool = False
    cause: str = ""
    message: str = ""
    notes: list[str] = field(default_factory=list)  # said on the log entry when pushed

    @property
    def difference(self) -> Decimal:
        return self.xero.total - self.bitrix24.total


@dataclass(frozen=True)
class Options:
    """The portal's choices that bear on exactness."""

    # A hand-entered amount is sent with the difference as one line to this account ("" = hold).
    adjustment_account: str = ""
    adjustment_tax_type: str = "NONE"
    force_exclusive: bool = False


def make_exact(
    invoice: Mapping,
    rows: Sequence[Mapping],
    base_lines: Sequence[Mapping],
    rates: Mapping[str, Decimal],
    options: Options = Options(),
) -> Verdict:
    """Choose LineAmountTypes and LineItems for `rows` so Xero's totals equal Bitrix24's.

    `base_lines` are the mapped lines (Description, ItemCode, AccountCode, TaxType: everything
    but the amounts), one per row; `rates` the organisation's effective rates by TaxType.
    """
    target = bitrix24_figures(invoice)
    parsed = read_rows(rows, [str(line.get("TaxType") or "") for line in base_lines], rates)
    credit = target.total < 0 or (target.total == 0 and rows_totals(parsed).total < 0)
    sign = Decimal(-1) if credit else Decimal(1)
    if credit:
        target = Figures(-target.subtotal, -target.tax, -target.total)
        parsed = [_negated(r) for r in parsed]
    own = rows_totals(parsed)
    notes: list[str] = []

    mismatched = [r for r in parsed if (r.rate or ZERO) != r.xero_rate]
    manual = str(invoice.get("isManualOpportunity") or "N") == "Y" and not own.same(target)
    adjustment = ZERO
    if manual and options.adjustment_account:
        adjustment = target.total - own.total
        notes.append(
            f"The amount was entered by hand in Bitrix24 ({_amount(sign * target.total)}); the rows add up to "
            f"{_amount(sign * own.total)}, so the difference of {_amount(sign * adjustment)} is sent as an "
            f"adjustment line to account {options.adjustment_account}."
        )
        target = Figures(own.subtotal + adjustment, own.tax, own.total + adjustment)
        goal = own
    else:
        goal = target

    best: tuple[str, list[dict], Figures] | None = None
    if not mismatched:
        for amount_type, lines in _candidates(parsed, base_lines, goal, options):
            if adjustment:
                lines = [*lines, _adjustment_line(adjustment, options)]
            figures = xero_totals(lines, amount_type, rates)
            if figures.same(target):
                return Verdict(
                    exact=True,
                    bitrix24=_signed(target, sign),
                    xero=_signed(figures, sign),
                    amount_type=amount_type,
                    line_items=lines,
                    credit_note=credit,
                    notes=notes,
                )
            if best is None or abs(figures.total - target.total) < abs(best[2].total - target.total):
                best = (amount_type, lines, figures)
        for amount_type, lines in _amount_candidates(parsed, base_lines, goal, options):
            overridden = _override_taxes(lines, parsed, amount_type, goal.tax, rates)
            if overridden is None:
                continue
            lines, changed = overridden
            if adjustment:
                lines = [*lines, _adjustment_line(adjustment, options)]
            figures = xero_totals(lines, amount_type, rates)
            if figures.same(target):
                notes.append(
                    f"Xero's tax on {_plural(len(changed), 'line')} ({', '.join(map(str, changed[:10]))}"
                    f"{' ...' if len(changed) > 10 else ''}) is set a cent from its own per-line rounding, "
                    "within a cent of the line's exact tax, so the invoice's tax equals Bitrix24's."
                )
                return Verdict(
                    exact=True,
                    bitrix24=_signed(target, sign),
                    xero=_signed(figures, sign),
                    amount_type=amount_type,
                    line_items=lines,
                    credit_note=credit,
                    notes=notes,
                )
    if best is None:
        amount_type = _natural_side(parsed, options)
        lines = [_line(base, r, amount_type) for base, r in zip(base_lines, parsed, strict=True)]
        best = (amount_type, lines, xero_totals(lines, amount_type, rates))
    verdict = Verdict(
        exact=False,
        bitrix24=_signed(target, sign),
        xero=_signed(best[2], sign),
        amount_type=best[0],
        line_items=best[1],
        credit_note=credit,
        notes=notes,
    )
    verdict.cause, why = _cause(parsed, own, target, manual and not adjustment, mismatched, rates)
    verdict.message = (
        f"{HELD_PREFIX} Bitrix24 shows {_amount(verdict.bitrix24.total)} (tax {_amount(verdict.bitrix24.tax)}); "
        f"Xero would compute {_amount(verdict.xero.total)} (tax {_amount(verdict.xero.tax)}), a difference of "
        f"{_amount(verdict.xero.total - verdict.bitrix24.total)}. {why}"
    )
    return verdict


def _signed(figures: Figures, sign: Decimal) -> Figures:
    return Figures(sign * figures.subtotal, sign * figures.tax, sign * figures.total)


def _negated(row: Row) -> Row:
    from dataclasses import replace

    return replace(row, price=-row.price, netto=-row.netto, brutto=-row.brutto)


def _adjustment_line(amount: Decimal, options: Options) -> dict:
    return {
        "Description": "Adjustment: the invoice amount was entered by hand in Bitrix24",
        "Quantity": Decimal(1),
        "UnitAmount": amount,
        "AccountCode": options.adjustment_account,
        "TaxType": options.adjustment_tax_type,
    }


def _natural_side(rows: Sequence[Row], options: Options) -> str:
    if all(r.rate is None for r in rows):
        return NO_TAX
    taxed = [r for r in rows if r.rate]
    if options.force_exclusive or not taxed:
        return EXCLUSIVE
    return INCLUSIVE if all(r.included for r in taxed) else EXCLUSIVE


def _candidates(rows: Sequence[Row], base_lines: Sequence[Mapping], goal: Figures, options: Options):
    """The representations tried, in order (see the module docstring)."""
    first = _natural_side(rows, options)
    sides = [first] if first == NO_TAX else [first, INCLUSIVE if first == EXCLUSIVE else EXCLUSIVE]
    if options.force_exclusive and first != NO_TAX:
        sides = [EXCLUSIVE]
    for side in sides:
        yield side, [_line(base, r, side) for base, r in zip(base_lines, rows, strict=True)]
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


def _amount_candidates(rows: Sequence[Row], base_lines: Sequence[Mapping], goal: Figures, options: Options):
    """Lines whose amounts add up to Bitrix24's (subtotal when Exclusive, total when Inclusive);
    their tax is then set per line (_override_taxes)."""
    first = _natural_side(rows, options)
    if first == NO_TAX:
        return
    sides = [EXCLUSIVE] if options.force_exclusive else [first, INCLUSIVE if first == EXCLUSIVE else EXCLUSIVE]
    for side in sides:
        want = goal.subtotal if side == EXCLUSIVE else goal.total
        plain = [_line(base, r, side) for base, r in zip(base_lines, rows, strict=True)]
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


def _override_taxes(
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _exact_amount(row: Row, side: str) -> Decimal:
    return row.net if side == EXCLUSIVE else row.gross


def _line(base: Mapping, row: Row, side: str) -> dict:
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


# --- the cause in words -----------------------------------------------------------------------------


def _cause(
    rows: Sequence[Row],
    own: Figures,
    target: Figures,
    manual: bool,
    mismatched: Sequence[Row],
    rates: Mapping[str, Decimal],
) -> tuple[str, str]:
    if manual:
        return CAUSE_MANUAL, (
            f"The amount was entered by hand in Bitrix24 ({_amount(target.total)}, tax {_amount(target.tax)}) and "
            f"is not what the rows add up to ({_amount(own.total)}, tax {_amount(own.tax)}). Let Bitrix24 "
            "calculate the amount from the rows, or choose an adjustment account in Setup to send the "
            "difference as a line."
        )
    if mismatched:
        listed = "; ".join(
            f"{r.label()} has {_rate(r.rate)} but its Xero tax type {r.tax_type or '(none)'} is {plain(r.xero_rate)}%"
            for r in mismatched[:5]
        )
        more = f" (and {len(mismatched) - 5} more rows)" if len(mismatched) > 5 else ""
        return CAUSE_TAX_RATE, (
            f"Rule: each row's tax rate must equal its Xero tax type's rate. {listed}{more}. Fix the tax map in Setup."
        )
    fractional = [r for r in rows if r.gross != quantize(r.gross) or (r.rate and r.net != quantize(r.net))]
    if any(abs(r.qty) > 100 and r.gross != quantize(r.gross) for r in rows):
        big = [r for r in rows if abs(r.qty) > 100 and r.gross != quantize(r.gross)]
        return CAUSE_PRECISION, (
            "Rule: Xero keeps unit prices to 4 decimal places, so a line of a large quantity moves in steps "
            f"of more than a cent and cannot land on Bitrix24's amount: {_rows_list(big)}."
        )
    return CAUSE_ROUNDING, (
        "Rule: Bitrix24 adds the rows' exact amounts and rounds the invoice once; Xero rounds every line "
        "and its tax to the cent. No choice of lines within a cent of each row gives both Bitrix24's "
        f"total and tax. Rows with fractions of a cent: {_rows_list(fractional) or 'none'}."
    )


def _rows_list(rows: Sequence[Row]) -> str:
    shown = ", ".join(f"{r.label()} ({plain(r.qty)} x {_amount(r.price)} = {plain(r.gross)})" for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _rate(rate: Decimal | None) -> str:
    return "no tax rate" if rate is None else f"{plain(rate)}% tax"


def _amount(value: Decimal) -> str:
    return f"{money(value):,}"


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
