"""Drift between Bitrix24 and Xero: noticed, shown, accepted or restored; Xero's payment details.

- `xero_invoice_dict` gives Xero's invoice (integrations.xero.types.Invoice) as the plain
  PascalCase dict the pure comparison (sync.mappers.drift) reads.
- `drift_observe` is called by the pull engine for every linked invoice it reads (webhook, button,
  sweep): it compares Xero's version with the invoice JSON last pushed (`last_pushed_content`) and
  stores the differences on the link ("Changed in Xero" while non-empty), logging each new drift
  once. It also stores Xero's payment details (total, paid, due, fully paid on).
- `drift_accept` remembers Xero's version (its fingerprint) so automatic sync leaves it alone;
  `drift_restore` asks for a forced push from Bitrix24 (the button's path).
- `push_gate` is what the push engine asks before its "unchanged" skip: force a push (the user
  pressed the button and Xero differs; or Bitrix24 wins automatic sync), hold it (Xero's version
  accepted, or Xero wins automatic sync), or carry on as usual.
- `xero_current` reads Xero's current versions in bulk: IDs 50 a call, unitdp=4.
- `online_url_ensure` fetches Xero's online invoice link for an approved invoice when its page is opened.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from accounts.models import Portal
from integrations.common.errors import ExternalAPIError
from integrations.common.locks import LockTimeout, redis_lock
from integrations.xero.client import XeroClient
from integrations.xero.types import Invoice as XeroInvoice
from sync.mappers.drift import CONTACT, CONTENT, TOTALS, Difference, invoice_differences, xero_content_fingerprint
from sync.mappers.money import to_decimal
from sync.models import ContactLink, Direction, InvoiceLink, SyncLogEntry, SyncSettings, Trigger
from sync.services.locks import invoice_lock_name
from sync.services.log import sync_log_write

logger = logging.getLogger(__name__)

IDS_PER_CALL = 50
APPROVED = ("AUTHORISED", "PAID")
LOCKED = ("PAID", "VOIDED", "DELETED")
DRIFT_KINDS = (CONTENT, CONTACT, TOTALS)


def xero_invoice_dict(invoice: XeroInvoice) -> dict:
    """Xero's invoice as its JSON names it (what drift and payments read); lines when Xero sent them."""
    return dict(invoice.data)


def pushed_content(content: Mapping, element: XeroInvoice) -> dict:
    """What a push stores as `last_pushed_content`: the JSON sent (without Status) and the totals Xero
    computed for it, so a later change of either is noticed."""
    out = dict(content)
    out["_totals"] = {
        "SubTotal": element.sub_total,
        "TotalTax": element.total_tax,
        "Total": element.total,
    }
    contact = element.contact
    if contact is not None and contact.name and isinstance(out.get("Contact"), Mapping):
        out["Contact"] = {**out["Contact"], "Name": contact.name}
    return out


def differences_for(expected: Mapping, actual: Mapping) -> list[Difference]:
    """Content, contact and totals differences (status is the pull engine's business)."""
    totals = expected.get("_totals") if isinstance(expected.get("_totals"), Mapping) else None
    return [d for d in invoice_differences(expected, actual, expected_totals=totals) if d.kind in DRIFT_KINDS]


def payment_values(actual: Mapping) -> dict:
    paid_on = actual.get("FullyPaidOnDate")
    if hasattr(paid_on, "date") and callable(paid_on.date):
        paid_on = paid_on.date()
    return {
        "xero_total": _money(actual.get("Total")),
        "xero_amount_paid": _money(actual.get("AmountPaid")),
        "xero_amount_due": _money(actual.get("AmountDue")),
        "xero_fully_paid_on": paid_on or None,
    }


def _money(value: object) -> Decimal | None:
    return None if value is None else to_decimal(value).quantize(Decimal("0.01"))


# --- the pull side ----------------------------------------------------------------------------------


def drift_observe(*, portal: Portal, link: InvoiceLink, actual: Mapping, trigger: str) -> list[dict]:
    """Compare Xero's version with what we last pushed; store it on the link; log new drift once.
    Returns the differences now stored (empty = in step, or Xero's version accepted)."""
    seen = actual.get("UpdatedDateUTC")
    if link.xero_updated_at and seen and seen < link.xero_updated_at:
        return list(link.drift or [])  # an older version read late: what we know is newer
    values: dict = {**payment_values(actual)}
    _note_partial_payment(portal, link, values, trigger)
    if not actual.get("HasLines", True) or not link.last_pushed_content or actual.get("Status") == "DELETED":
        # A summary without lines (or a link pushed before drift was tracked): payments only.
        InvoiceLink.objects.filter(pk=link.pk).update(**values)
        _set(link, values)
        return list(link.drift or [])
    try:
        # Under the invoice's lock (taken without waiting): a push holding it has written to Xero and
        # not yet stored what it sent, so Xero's new version would look like drift against the old
        # one. That push settles the link itself; a real edit in Xero at that moment is found by the
        # next webhook, sweep or reconciliation.
        with redis_lock(invoice_lock_name(portal.pk, link.bitrix24_id), ttl_s=60, wait_s=0):
            link.refresh_from_db(fields=FRESH_FIELDS)
            return _compare_and_store(portal, link, actual, values, trigger)
    except LockTimeout:
        InvoiceLink.objects.filter(pk=link.pk).update(**values)
        _set(link, values)
        return list(link.drift or [])


FRESH_FIELDS = ["last_pushed_content", "xero_accepted_hash", "drift", "drift_xero_hash", "drift_detected_at"]


def _compare_and_store(portal: Portal, link: InvoiceLink, actual: Mapping, values: dict, trigger: str) -> list[dict]:
    differences = [d.as_dict() for d in differences_for(link.last_pushed_content, actual)]
    fingerprint = xero_content_fingerprint(actual)
    if differences and link.xero_accepted_hash and fingerprint == link.xero_accepted_hash:
        differences = []  # the version the user accepted: not drift
    new = bool(differences) and fingerprint != link.drift_xero_hash
    values.update(drift=differences, drift_xero_hash=fingerprint if differences else "")
    if new:
        values["drift_detected_at"] = timezone.now()
    elif not differences:
        values["drift_detected_at"] = None
    InvoiceLink.objects.filter(pk=link.pk).update(**values)
    _set(link, values)
    if new:
        sync_log_write(
            portal=portal,
            direction=Direction.PULL,
            trigger=trigger,
            outcome=SyncLogEntry.Outcome.CHANGED_IN_XERO,
            bitrix24_id=link.bitrix24_id,
            xero_id=str(link.xero_invoice_id or ""),
            invoice_number=link.xero_invoice_number,
            message="Changed in Xero: "
            + "; ".join(f"{d['label']} {d['bitrix24']!r} → {d['xero']!r}" for d in differences[:5]),
            details={"differences": differences},
        )
    return differences


def _note_partial_payment(portal: Portal, link: InvoiceLink, values: Mapping, trigger: str) -> None:
    """A payment in Xero that leaves something due: noted in the invoice's history (the stage map
    acts only on PAID, so without this a part payment would go unseen in Bitrix24)."""
    paid, due = values.get("xero_amount_paid"), values.get("xero_amount_due")
    before = link.xero_amount_paid or Decimal(0)
    if paid is None or due is None or paid <= before or due <= 0:
        return
    sync_log_write(
        portal=portal,
        direction=Direction.PULL,
        trigger=trigger,
        outcome=SyncLogEntry.Outcome.STATUS_CHANGED,
        bitrix24_id=link.bitrix24_id,
        xero_id=str(link.xero_invoice_id or ""),
        invoice_number=link.xero_invoice_number,
        message=f"Partly paid in Xero: {paid} paid, {due} due.",
        details={"amount_paid": str(paid), "amount_due": str(due)},
    )


def _set(link: InvoiceLink, values: Mapping) -> None:
    for name, value in values.items():
        setattr(link, name, value)


# --- the user's choice ------------------------------------------------------------------------------


def drift_accept(*, portal: Portal, link: InvoiceLink, user_id: int | None = None) -> None:
    """Keep Xero's version: automatic sync will not overwrite it (the button still can)."""
    InvoiceLink.objects.filter(pk=link.pk).update(
        xero_accepted_hash=link.drift_xero_hash, xero_accepted_at=timezone.now(), drift=[], drift_detected_at=None
    )
    sync_log_write(
        portal=portal,
        direction=Direction.PULL,
        trigger=Trigger.BUTTON,
        outcome=SyncLogEntry.Outcome.CHANGED_IN_XERO,
        bitrix24_id=link.bitrix24_id,
        xero_id=str(link.xero_invoice_id or ""),
        invoice_number=link.xero_invoice_number,
        message="Xero's version accepted: automatic sync leaves it as it is until Create / Edit on Xero is pressed.",
        details={"accepted_by": user_id, "differences": link.drift},
    )


def drift_restore(*, portal: Portal, link: InvoiceLink, user_id: int | None = None):
    """Bitrix24's version back into Xero: a user push (forced where Xero differs)."""
    from sync.services.buttons import invoices_push_request

    InvoiceLink.objects.filter(pk=link.pk).update(xero_accepted_hash="", xero_accepted_at=None)
    return invoices_push_request(
        portal=portal, invoice_ids=[link.bitrix24_id], requested_by=user_id, entity_type=link.bitrix24_entity_type
    )


# --- the push side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """What the push engine does with a known invoice before its "unchanged" skip.

    force: push even though the fingerprint is unchanged (Xero differs from Bitrix24).
    hold: do not push; `message` says why (Xero's version is kept).
    xero_status / amount_paid: Xero's current values when read (fresher than the link's).
    """

    force: bool = False
    hold: bool = False
    message: str = ""
    differences: tuple = ()
    xero_status: str | None = None
    amount_paid: Decimal | None = None
    current: Mapping | None = None


HOLD_ACCEPTED = (
    "Changed in Xero, and Xero's version was accepted: automatic sync leaves it as it is. "
    "Press Create / Edit on Xero to send Bitrix24's version."
)
HOLD_XERO_WINS = (
    "Changed in Xero, and this portal keeps changes made in Xero for automatic sync. "
    "Press Create / Edit on Xero (or Restore on the invoice page) to send Bitrix24's version."
)


def push_gate(
    *,
    link: InvoiceLink,
    content: Mapping,
    user_asked: bool,
    winner: str,
    current: Mapping | None,
) -> Gate:
    """Decide for one linked invoice. `current` is Xero's version read just now (for user pushes)."""
    if user_asked:
        if current is None:
            return Gate()
        # Xero against what we sent last (the lines exactly as sent, whatever the push chose to make
        # them exact); an invoice changed in Bitrix24 since is pushed anyway.
        differences = tuple(differences_for(link.last_pushed_content or content, current))
        return Gate(
            force=bool(differences),
            differences=differences,
            xero_status=str(current.get("Status") or "") or None,
            amount_paid=to_decimal(current.get("AmountPaid") or 0),
            current=current,
        )
    if link.xero_accepted_hash:
        return Gate(hold=True, message=HOLD_ACCEPTED)
    if link.drift:
        if winner == SyncSettings.DriftWinner.XERO:
            return Gate(hold=True, message=HOLD_XERO_WINS)
        return Gate(force=True)
    return Gate()


def xero_current(client: XeroClient, ids: Iterable[uuid.UUID | str]) -> dict[str, dict]:
    """Xero's current invoices by InvoiceID (lower-case str), 50 IDs a call, with 4-dp unit prices."""
    wanted = [str(i) for i in dict.fromkeys(str(i) for i in ids)]
    out: dict[str, dict] = {}
    for start in range(0, len(wanted), IDS_PER_CALL):
        for invoice in client.invoices_get(wanted[start : start + IDS_PER_CALL]):
            out[invoice.invoice_id.lower()] = xero_invoice_dict(invoice)
    return out


def online_url_ensure(*, portal: Portal, link: InvoiceLink | None, interactive: bool = True) -> str:
    """Xero's online invoice link (GET /Invoices/{id}/OnlineInvoice) for an approved invoice, fetched
    once when someone opens the invoice page and kept on the link: one call per invoice looked at,
    never a backfill over every invoice. "" when not approved, not connected, or Xero refused."""
    if link is None or not link.xero_invoice_id or link.last_xero_status not in APPROVED:
        return ""
    if link.xero_online_url:
        return link.xero_online_url
    from accounts.models import XeroConnection

    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        return ""
    try:
        url = XeroClient(connection, interactive=interactive).invoice_online_url(str(link.xero_invoice_id))
    except ExternalAPIError as exc:
        logger.info("online invoice for %s not available: %s", link.xero_invoice_id, exc)
        return ""
    if not url:
        return ""
    InvoiceLink.objects.filter(pk=link.pk).update(xero_online_url=url[:500])
    link.xero_online_url = url[:500]
    return link.xero_online_url


def contact_names(portal: Portal, ids: Iterable[str]) -> dict[str, str]:
    """Xero contact names we know by ContactID (for showing a contact difference)."""
    return {
        str(c.xero_contact_id).lower(): c.xero_name
        for c in ContactLink.objects.filter(portal=portal, xero_contact_id__in=[i for i in ids if i])
    }
