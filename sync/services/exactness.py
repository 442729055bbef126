"""Exact or held, in the push (issue 11): the check the decide stage runs on every invoice to be sent.

- Xero's real tax rates (the organisation's TaxRates, effective rates, from the reference cache)
  and the pure `sync.mappers.exactness.make_exact` choose the lines that make Xero's Total and
  TotalTax equal Bitrix24's `opportunity` and `taxValue`; the body sent carries those lines.
- When no choice does, the invoice is **held**: nothing is sent (an update leaves Xero's last good
  version alone), the link carries the reason (so the list, the invoice page and "Needs attention"
  show it), the log entry says "Held: totals differ" with both amounts and the cause, and the job
  ends without retries (the next change in Bitrix24 brings the invoice back).
- A portal may allow a difference of at most N cents (`totals_tolerance_cents`): such an invoice
  goes as DRAFT only, with the difference in its log entry; never AUTHORISED (nor paid) with a gap.
- Below zero the invoice becomes a credit note (ACCRECCREDIT); sync.services.credit_notes sends it.
- Foreign currency with "Bitrix24's rate" chosen: CurrencyRate from crm.currency.list (Xero's rate is
  units of the invoice currency per 1 base unit; Bitrix24's AMOUNT is base units per AMOUNT_CNT).
- What Xero's limits shorten (sync.mappers.limits) is said on the log entry.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError, PermanentError, RetryableError
from sync.mappers.exactness import CAUSE_LABELS, Options, Verdict, make_exact
from sync.mappers.limits import truncation_notes
from sync.models import InvoiceLink, SyncLogEntry
from sync.services.credit_notes import refuse_kind_change
from sync.services.jobs import job_failed
from sync.services.xero_reference import XeroNotConnected, xero_reference

logger = logging.getLogger(__name__)

NOT_CHECKED = ("VOIDED", "DELETED")  # a status change that needs no amounts


def xero_rates(ctx) -> dict[str, Decimal]:
    """The organisation's effective tax rates by TaxType, once per pass."""
    rates = getattr(ctx, "_xero_rates", None)
    if rates is None:
        reference = xero_reference(ctx.portal)
        rates = {}
        for rate in reference.tax_rates:
            if rate.get("rate") is not None:
                rates[str(rate["tax_type"])] = Decimal(str(rate["rate"]))
        ctx._xero_rates = rates
    return rates


def known_tax_rates(portal) -> list[dict]:
    """The organisation's tax rates for naming them in errors; [] when they cannot be read now."""
    try:
        return list(xero_reference(portal).tax_rates)
    except (XeroNotConnected, ExternalAPIError):
        return []


def options_for(ctx) -> Options:
    settings = ctx.settings
    try:
        no_tax = ctx.mapping.tax_type_for(None)
    except Exception:  # noqa: BLE001 - the map has no entry for untaxed rows; Xero's own NONE then
        no_tax = "NONE"
    return Options(
        adjustment_account=settings.manual_amount_account_code,
        adjustment_tax_type=no_tax,
        force_exclusive=ctx.mapping.force_exclusive,
    )


def map_exact(ctx, item) -> bool:
    """Map stage, right after the invoice is mapped: its content becomes the lines that reproduce
    Bitrix24's figures (or, for an invoice that will be held, the closest ones), so what is
    fingerprinted, compared for drift and sent is one thing. False = the item was failed."""
    try:
        rates = xero_rates(ctx)
    except XeroNotConnected as exc:
        _fail(ctx, item, RetryableError(exc.message, system="xero"))
        return False
    except ExternalAPIError as exc:
        _fail(ctx, item, exc)
        return False
    verdict = make_exact(item.invoice, item.rows, item.content["LineItems"], rates, options_for(ctx))
    item.exactness = verdict
    content = item.content
    content["LineAmountTypes"] = verdict.amount_type
    content["LineItems"] = verdict.line_items
    if verdict.credit_note:
        content["Type"] = "ACCRECCREDIT"
    rate = bitrix24_currency_rate(ctx, item.invoice)
    if rate is not None:
        content["CurrencyRate"] = rate
    return True


def exactness_check(ctx, item) -> None:
    """A decide-stage check: send only an exact invoice; hold the others (see the module docstring)."""
    verdict: Verdict | None = getattr(item, "exactness", None)
    body = item.body
    if verdict is None or body is None or body.get("Status") in NOT_CHECKED:
        return
    if refuse_kind_change(ctx, item):
        return
    notes = [
        *verdict.notes,
        *truncation_notes(item.invoice, item.rows),
        *getattr(item, "truncation_notes", []),  # the client's name (push contacts stage)
    ]
    if not verdict.exact:
        tolerance = Decimal(ctx.settings.totals_tolerance_cents) / 100
        within = (
            tolerance
            and abs(verdict.xero.total - verdict.bitrix24.total) <= tolerance
            and abs(verdict.xero.tax - verdict.bitrix24.tax) <= tolerance
            and verdict.cause not in ("manual_amount", "tax_rate")
        )
        current = item.link.last_xero_status if item.link is not None and item.link.xero_invoice_id else ""
        if not within or current not in ("", "DRAFT", "SUBMITTED") or (item.decision and item.decision.record_payment):
            hold(ctx, item, verdict)
            return
        body["Status"] = "DRAFT"
        notes.insert(
            0,
            f"Sent as DRAFT only: {verdict.message.removeprefix('Held: totals differ. ')} The portal allows a "
            f"difference of up to {ctx.settings.totals_tolerance_cents} cents for drafts; approve it in Xero "
            "once checked.",
        )
    if body.get("CurrencyRate") is not None:
        notes.append(
            f"Sent with Bitrix24's exchange rate: {body['CurrencyRate']} {item.invoice.get('currencyId')} per 1 "
            "unit of the organisation's base currency."
        )
    if notes:
        item.gap_message = " ".join(notes)


def hold(ctx, item, verdict: Verdict) -> None:
    """Not sent; shown on the invoice, in the list and in "Needs attention"; not retried."""
    if item.finished:
        return
    entity_type = getattr(item, "entity_type", SMART_INVOICE)
    if item.link is None:
        item.link, _ = InvoiceLink.objects.get_or_create(
            portal=ctx.portal, bitrix24_entity_type=entity_type, bitrix24_id=item.invoice_id
        )
    item.finished = True
    ctx.report.failed += 1
    message = verdict.message
    if item.link.xero_invoice_id:
        message += " Xero keeps the version sent last."
    InvoiceLink.objects.filter(pk=item.link.pk).update(last_error=message[:4000], last_error_permanent=True)
    details = {
        "rule": "totals_differ",
        "cause": verdict.cause,
        "cause_label": CAUSE_LABELS.get(verdict.cause, verdict.cause),
        "bitrix24_total": str(verdict.bitrix24.total),
        "bitrix24_tax": str(verdict.bitrix24.tax),
        "xero_total": str(verdict.xero.total),
        "xero_tax": str(verdict.xero.tax),
        "difference": str(verdict.difference),
    }
    _log(ctx, item, SyncLogEntry.Outcome.HELD, message, details)
    if item.job is not None:
        job_failed(item.job, PermanentError(message, system="bitrix24", code="held"))


def bitrix24_currency_rate(ctx, invoice: dict) -> Decimal | None:
    """Bitrix24's rate as Xero's CurrencyRate, when the portal chose it and the invoice is foreign."""
    if ctx.settings.currency_rate_source != "bitrix24":
        return None
    code = str(invoice.get("currencyId") or "")
    base = _xero_base_currency(ctx)
    if not code or not base or code == base:
        return None
    rates = getattr(ctx, "_b24_currencies", None)
    if rates is None:
        try:
            listed = ctx.b24.currencies_list()
        except ExternalAPIError:
            listed = []
        rates = {currency.code: currency for currency in listed}
        ctx._b24_currencies = rates
    ours, theirs = rates.get(code), rates.get(base)
    if ours is None or theirs is None:
        return None
    try:
        # Base units of the portal's reporting currency per 1 unit of each; their ratio is the cross rate.
        if ours.amount is None or theirs.amount is None:
            return None
        per_unit = ours.amount / (ours.amount_cnt if ours.amount_cnt is not None else Decimal(1))
        base_per_unit = theirs.amount / (theirs.amount_cnt if theirs.amount_cnt is not None else Decimal(1))
        rate = (base_per_unit / per_unit).quantize(Decimal("0.000001"))
    except (InvalidOperation, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _xero_base_currency(ctx) -> str:
    base = getattr(ctx, "_xero_base", None)
    if base is None:
        base = ""
        try:
            organisation = ctx.xero.organisation_get()
            base = organisation.base_currency if organisation is not None else ""
        except ExternalAPIError:
            base = ""
        ctx._xero_base = base
    return base


def _log(ctx, item, outcome: str, message: str, details: dict) -> None:
    # Written now, not with the pass's batch: the job is failed right after, and an entry exists
    # before its job ends.
    from sync.services.log import sync_log_write_many
    from sync.services.push.outcomes import log_entry

    sync_log_write_many([log_entry(ctx, item, outcome, message, details)])


def _fail(ctx, item, error: ExternalAPIError) -> None:
    try:
        from sync.services.push.outcomes import fail
    except ImportError:  # the single-module push
        from sync.services.push import _fail as fail
    fail(ctx, item, error)
