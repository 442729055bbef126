"""Stage <-> Xero status: lookups on the portal's map and the rules of Xero's status lifecycle.

The map itself (which stage means which status) is the user's, stored in StageMapping and
XeroStatusMapping and loaded by the caller into two dicts. The lifecycle rules are Xero's
(xero-api.md §3.4) and encoded once, in `xero_status_for_push`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sync.mappers.money import ZERO, to_decimal

DRAFT = "DRAFT"
SUBMITTED = "SUBMITTED"
AUTHORISED = "AUTHORISED"
PAID = "PAID"
VOIDED = "VOIDED"
DELETED = "DELETED"
XERO_STATUSES: tuple[str, ...] = (DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED, DELETED)

# Bitrix24 stage SEMANTICS (crm.status.list): null/"" in progress, "S" success, "F" failure.
IN_PROGRESS = ""
SUCCESS = "S"
FAILURE = "F"


def stage_semantics(stage: Mapping) -> str:
    """SEMANTICS of a crm.status.list entry as "", "S" or "F" (null and "" both mean in progress)."""
    value = (stage.get("SEMANTICS") or "").upper()
    return value if value in (SUCCESS, FAILURE) else IN_PROGRESS


def xero_status_for_stage(stage_id: str, b24_to_xero: Mapping[str, str]) -> str | None:
    """The Xero status a Bitrix24 stage asks for, or None when the stage is not pushed."""
    return b24_to_xero.get(stage_id) or None


def stage_for_xero_status(
    xero_status: str,
    *,
    current_stage_id: str,
    xero_to_b24: Mapping[str, str],
    b24_to_xero: Mapping[str, str],
) -> str | None:
    """The stage to move a Bitrix24 invoice to after Xero reports `xero_status`, or None to leave it.

    Left alone when the status is not mapped back, when the invoice is already on the target
    stage, or when its current stage already means this status (several stages may map to
    AUTHORISED; moving between them would only churn and echo back).
    """
    target = xero_to_b24.get(xero_status) or None
    if target is None or target == current_stage_id:
        return None
    if b24_to_xero.get(current_stage_id) == xero_status:
        return None
    return target


@dataclass(frozen=True)
class Decision:
    """What to do with an invoice in Xero, given its status there and the status its stage wants.

    push: send the invoice (create/update) with `status` (None = don't send a Status, keep Xero's).
    record_payment: afterwards record a payment of the amount due (Xero then sets PAID itself).
    refused: the wanted change breaks a Xero rule; `message` says which, for the user.
    Neither push, record_payment nor refused: nothing to do (`message` may still explain why).
    """

    push: bool
    status: str | None
    rule: str
    message: str = ""
    record_payment: bool = False
    refused: bool = False


def _noop(rule: str, message: str = "") -> Decision:
    return Decision(push=False, status=None, rule=rule, message=message)


def _refuse(rule: str, message: str) -> Decision:
    return Decision(push=False, status=None, rule=rule, message=message, refused=True)


PAYMENT_NEEDED = (
    "Xero marks an invoice PAID only when payments cover it, never by setting the status. Turn on "
    '"record a Xero payment when a stage maps to PAID" in the settings (with a payment account), '
    "or enter the payment in Xero."
)


def xero_status_for_push(
    current_xero_status: str | None,
    wanted_status: str | None,
    *,
    content_changed: bool = True,
    amount_paid: Decimal | str | int = ZERO,
    record_payment_allowed: bool = False,
) -> Decision:
    """Apply Xero's status lifecycle (xero-api.md §3.4) to one push.

    current_xero_status: the invoice's status in Xero, None/"" when it is not there yet.
    wanted_status: what the invoice's stage maps to, None/"" = "leave the status as it is".
    content_changed: whether lines, dates, contact... differ from what Xero has (by fingerprint).
    amount_paid: payments and credits allocated in Xero (AmountPaid + AmountCredited); while it is
      above zero Xero refuses edits and voiding.
    record_payment_allowed: the portal's "record a Xero payment when a stage maps to PAID" setting.
    """
    current = current_xero_status or None
    wanted = wanted_status or None
    has_payments = to_decimal(amount_paid) > 0

    if current is None:
        return _for_new_invoice(wanted, record_payment_allowed)

    if current in (VOIDED, DELETED):
        if wanted in (None, current) and not content_changed:
            return _noop("unchanged")
        return _refuse(
            "read_only",
            f"The invoice is {current} in Xero, and Xero allows no changes to {current.lower()} invoices. "
            "Create a new invoice in Bitrix24 if it is needed again.",
        )

    if current == PAID:
        if wanted in (None, PAID) and not content_changed:
            return _noop("unchanged")
        if wanted in (None, PAID):
            return _refuse(
                "paid_locked",
                'The invoice is PAID in Xero, and Xero refuses to edit paid invoices ("Invoice not of valid '
                'status for modification"). Make the change in Xero after removing the payment there.',
            )
        if wanted in (VOIDED, DELETED):
            return _refuse(
                "void_with_payments",
                "The invoice is PAID in Xero; Xero voids an invoice only after its payments are removed. "
                "Remove the payments in Xero first.",
            )
        return _refuse(
            "paid_reopen",
            f"The invoice is PAID in Xero and cannot be set back to {wanted}; it returns to AUTHORISED "
            "only when its payment is deleted in Xero.",
        )

    if current == AUTHORISED:
        return _for_authorised(wanted or AUTHORISED, content_changed, has_payments, record_payment_allowed)

    return _for_draft_or_submitted(current, wanted or current, content_changed, record_payment_allowed)


def _for_new_invoice(wanted: str | None, record_payment_allowed: bool) -> Decision:
    if wanted is None:
        return _noop("not_mapped", "The invoice's stage is not mapped to a Xero status, so it is not sent to Xero.")
    if wanted in (DRAFT, SUBMITTED, AUTHORISED):
        return Decision(push=True, status=wanted, rule="create")
    if wanted == PAID:
        if not record_payment_allowed:
            return _refuse("paid_needs_payment", PAYMENT_NEEDED)
        return Decision(
            push=True,
            status=AUTHORISED,
            record_payment=True,
            rule="create_then_pay",
            message="Created as AUTHORISED and paid in full, because Xero reaches PAID only through a payment.",
        )
    return _noop(
        "cancelled_before_sent",
        f"The invoice was cancelled ({wanted}) before it reached Xero, so there is nothing to send.",
    )


def _for_authorised(wanted: str, content_changed: bool, has_payments: bool, record_payment_allowed: bool) -> Decision:
    if wanted in (DRAFT, SUBMITTED):
        return _refuse(
            "approved_no_unapprove",
            f"The invoice is approved (AUTHORISED) in Xero and cannot go back to {wanted}. "
            "Keep it approved, or void it and create a new one.",
        )
    if wanted in (VOIDED, DELETED):
        if has_payments:
            return _refuse(
                "void_with_payments",
                "The invoice has payments or credits in Xero; Xero voids an invoice only after they are "
                "removed. Remove them in Xero first.",
            )
        message = "Approved invoices cannot be deleted in Xero, so it was voided instead." if wanted == DELETED else ""
        return Decision(push=True, status=VOIDED, rule="void", message=message)
    if has_payments and content_changed:
        return _refuse(
            "authorised_with_payments_locked",
            'The invoice has payments or credits in Xero, and Xero refuses to edit it ("This document cannot '
            'be edited"). Make the change in Xero, or remove the payments there first.',
        )
    if wanted == PAID:
        if not record_payment_allowed:
            return _refuse("paid_needs_payment", PAYMENT_NEEDED)
        return Decision(
            push=content_changed, status=None, record_payment=True, rule="pay", message="Paid the amount due in Xero."
        )
    if not content_changed:
        return _noop("unchanged")
    return Decision(push=True, status=None, rule="update")


def _for_draft_or_submitted(current: str, wanted: str, content_changed: bool, record_payment_allowed: bool) -> Decision:
    if wanted in (VOIDED, DELETED):
        message = f"{current} invoices cannot be voided in Xero, so it was deleted instead." if wanted == VOIDED else ""
        return Decision(push=True, status=DELETED, rule="delete", message=message)
    if wanted == PAID:
        if not record_payment_allowed:
            return _refuse("paid_needs_payment", PAYMENT_NEEDED)
        return Decision(
            push=True,
            status=AUTHORISED,
            record_payment=True,
            rule="approve_then_pay",
            message="Approved and paid in full, because Xero reaches PAID only through a payment.",
        )
    if wanted == current and not content_changed:
        return _noop("unchanged")
    # DRAFT -> SUBMITTED/AUTHORISED and SUBMITTED -> AUTHORISED are Xero's normal path; SUBMITTED ->
    # DRAFT is accepted by Xero as far as anyone reports (unverified in xero-api.md §3.4).
    return Decision(push=True, status=wanted, rule="update" if wanted == current else "transition")
