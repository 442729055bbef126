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

So the lines are chosen per invoice (the candidates are built in `exact_lines.py`), and every choice
is checked with `xero_totals` (`xero_arithmetic.py`, the one place Xero's arithmetic lives here)
against Bitrix24's amount and tax:

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
from dataclasses import dataclass, field, replace
from decimal import Decimal

from sync.mappers.exact_lines import Options, amount_candidates, candidates, natural_side, override_taxes, row_line
from sync.mappers.money import ZERO, money, plain, quantize
from sync.mappers.xero_arithmetic import EXCLUSIVE, Figures, Row, bitrix24_figures, read_rows, rows_totals, xero_totals

DEFAULT_OPTIONS = Options()  # frozen: safe to share as the default

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


def make_exact(
    invoice: Mapping,
    rows: Sequence[Mapping],
    base_lines: Sequence[Mapping],
    rates: Mapping[str, Decimal],
    options: Options = DEFAULT_OPTIONS,
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
        for amount_type, lines in candidates(parsed, base_lines, goal, options):
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
        for amount_type, lines in amount_candidates(parsed, base_lines, goal, options):
            overridden = override_taxes(lines, parsed, amount_type, goal.tax, rates)
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
        amount_type = natural_side(parsed, options)
        lines = [row_line(base, r, amount_type) for base, r in zip(base_lines, parsed, strict=True)]
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
    return replace(row, price=-row.price, netto=-row.netto, brutto=-row.brutto)


def _adjustment_line(amount: Decimal, options: Options) -> dict:
    return {
        "Description": "Adjustment: the invoice amount was entered by hand in Bitrix24",
        "Quantity": Decimal(1),
        "UnitAmount": amount,
        "AccountCode": options.adjustment_account,
        "TaxType": options.adjustment_tax_type,
    }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


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
