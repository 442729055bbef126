"""Xero's status lifecycle (xero-api.md §3.4), one test row per transition, and the map lookups."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sync.mappers.stage import XERO_STATUSES, stage_for_xero_status, xero_status_for_push, xero_status_for_stage
from sync.models import XeroStatus

PAID_AMOUNT = Decimal("10.00")

# (current in Xero, wanted by the stage, options) -> (push, status sent, record payment, refused, rule)
TABLE = [
    # (new) -> DRAFT / SUBMITTED / AUTHORISED: created with that status
    (None, "DRAFT", {}, (True, "DRAFT", False, False, "create")),
    (None, "SUBMITTED", {}, (True, "SUBMITTED", False, False, "create")),
    (None, "AUTHORISED", {}, (True, "AUTHORISED", False, False, "create")),
    # (new) -> PAID: only through a payment
    (None, "PAID", {}, (False, None, False, True, "paid_needs_payment")),
    (None, "PAID", {"record_payment_allowed": True}, (True, "AUTHORISED", True, False, "create_then_pay")),
    # (new) -> VOIDED / DELETED, or an unmapped stage: nothing to send
    (None, "VOIDED", {}, (False, None, False, False, "cancelled_before_sent")),
    (None, "DELETED", {}, (False, None, False, False, "cancelled_before_sent")),
    (None, "", {}, (False, None, False, False, "not_mapped")),
    # DRAFT -> SUBMITTED / AUTHORISED, SUBMITTED -> AUTHORISED / DRAFT
    ("DRAFT", "SUBMITTED", {}, (True, "SUBMITTED", False, False, "transition")),
    ("DRAFT", "AUTHORISED", {}, (True, "AUTHORISED", False, False, "transition")),
    ("SUBMITTED", "AUTHORISED", {}, (True, "AUTHORISED", False, False, "transition")),
    ("SUBMITTED", "DRAFT", {}, (True, "DRAFT", False, False, "transition")),
    # DRAFT edits, and "leave the status as it is"
    ("DRAFT", "DRAFT", {}, (True, "DRAFT", False, False, "update")),
    ("DRAFT", "", {}, (True, "DRAFT", False, False, "update")),
    ("DRAFT", "DRAFT", {"content_changed": False}, (False, None, False, False, "unchanged")),
    # DRAFT / SUBMITTED -> DELETED; voiding a draft means deleting it
    ("DRAFT", "DELETED", {}, (True, "DELETED", False, False, "delete")),
    ("SUBMITTED", "DELETED", {}, (True, "DELETED", False, False, "delete")),
    ("DRAFT", "VOIDED", {}, (True, "DELETED", False, False, "delete")),
    # DRAFT -> PAID: approve, then pay (or refuse)
    ("DRAFT", "PAID", {}, (False, None, False, True, "paid_needs_payment")),
    ("DRAFT", "PAID", {"record_payment_allowed": True}, (True, "AUTHORISED", True, False, "approve_then_pay")),
    # AUTHORISED: edits while nothing is allocated, never back to DRAFT/SUBMITTED
    ("AUTHORISED", "AUTHORISED", {}, (True, None, False, False, "update")),
    ("AUTHORISED", "", {"content_changed": False}, (False, None, False, False, "unchanged")),
    (
        "AUTHORISED",
        "AUTHORISED",
        {"amount_paid": PAID_AMOUNT},
        (False, None, False, True, "authorised_with_payments_locked"),
    ),
    ("AUTHORISED", "DRAFT", {}, (False, None, False, True, "approved_no_unapprove")),
    ("AUTHORISED", "SUBMITTED", {}, (False, None, False, True, "approved_no_unapprove")),
    # AUTHORISED -> VOIDED only without payments; -> DELETED is a void
    ("AUTHORISED", "VOIDED", {}, (True, "VOIDED", False, False, "void")),
    ("AUTHORISED", "DELETED", {}, (True, "VOIDED", False, False, "void")),
    ("AUTHORISED", "VOIDED", {"amount_paid": PAID_AMOUNT}, (False, None, False, True, "void_with_payments")),
    # AUTHORISED -> PAID never via Status: a payment of the amount due, or a refusal
    ("AUTHORISED", "PAID", {}, (False, None, False, True, "paid_needs_payment")),
    (
        "AUTHORISED",
        "PAID",
        {"record_payment_allowed": True, "content_changed": False},
        (False, None, True, False, "pay"),
    ),
    ("AUTHORISED", "PAID", {"record_payment_allowed": True}, (True, None, True, False, "pay")),
    # PAID: no edits, no void while paid, no way back by Status
    ("PAID", "PAID", {"content_changed": False}, (False, None, False, False, "unchanged")),
    ("PAID", "PAID", {}, (False, None, False, True, "paid_locked")),
    ("PAID", "", {}, (False, None, False, True, "paid_locked")),
    ("PAID", "VOIDED", {}, (False, None, False, True, "void_with_payments")),
    ("PAID", "AUTHORISED", {}, (False, None, False, True, "paid_reopen")),
    ("PAID", "DRAFT", {}, (False, None, False, True, "paid_reopen")),
    # VOIDED / DELETED: read-only
    ("VOIDED", "AUTHORISED", {}, (False, None, False, True, "read_only")),
    ("VOIDED", "VOIDED", {}, (False, None, False, True, "read_only")),
    ("VOIDED", "VOIDED", {"content_changed": False}, (False, None, False, False, "unchanged")),
    ("DELETED", "DRAFT", {}, (False, None, False, True, "read_only")),
]


@pytest.mark.parametrize(("current", "wanted", "options", "expected"), TABLE)
def test_each_transition_follows_xeros_status_rules(current, wanted, options, expected):
    decision = xero_status_for_push(current, wanted, **options)

    assert (decision.push, decision.status, decision.record_payment, decision.refused, decision.rule) == expected


@pytest.mark.parametrize(("current", "wanted", "options", "expected"), [row for row in TABLE if row[3][3]])
def test_every_refusal_tells_the_user_which_rule_and_what_to_do(current, wanted, options, expected):
    message = xero_status_for_push(current, wanted, **options).message

    assert len(message) > 40
    assert "Xero" in message


def test_a_refused_paid_stage_names_the_payment_setting():
    assert "record a Xero payment" in xero_status_for_push("AUTHORISED", "PAID").message


def test_editing_a_paid_invoice_quotes_xeros_own_refusal():
    assert "Invoice not of valid status for modification" in xero_status_for_push("PAID", "PAID").message


def test_the_mappers_statuses_are_the_models_statuses():
    assert list(XERO_STATUSES) == list(XeroStatus.values)


B24_TO_XERO = {
    "DT31_3:N": "DRAFT",
    "DT31_3:S": "AUTHORISED",
    "DT31_3:UC_REMIND": "AUTHORISED",
    "DT31_3:P": "PAID",
    "DT31_3:D": "VOIDED",
    "DT31_3:UC_HOLD": "",
}
XERO_TO_B24 = {
    "DRAFT": "DT31_3:N",
    "SUBMITTED": "DT31_3:N",
    "AUTHORISED": "DT31_3:S",
    "PAID": "DT31_3:P",
    "VOIDED": "DT31_3:D",
    "DELETED": "",
}


def test_a_stage_gives_its_mapped_status_and_an_unpushed_stage_gives_none():
    assert xero_status_for_stage("DT31_3:S", B24_TO_XERO) == "AUTHORISED"
    assert xero_status_for_stage("DT31_3:UC_HOLD", B24_TO_XERO) is None
    assert xero_status_for_stage("DT31_3:UNKNOWN", B24_TO_XERO) is None


def test_a_paid_invoice_moves_to_the_success_stage():
    assert (
        stage_for_xero_status("PAID", current_stage_id="DT31_3:S", xero_to_b24=XERO_TO_B24, b24_to_xero=B24_TO_XERO)
        == "DT31_3:P"
    )


def test_the_stage_is_left_alone_when_it_already_means_that_status_or_the_status_is_unmapped():
    kwargs = {"xero_to_b24": XERO_TO_B24, "b24_to_xero": B24_TO_XERO}

    assert stage_for_xero_status("AUTHORISED", current_stage_id="DT31_3:S", **kwargs) is None
    # "Reminder sent" also means AUTHORISED: moving it back to "Sent" would only churn.
    assert stage_for_xero_status("AUTHORISED", current_stage_id="DT31_3:UC_REMIND", **kwargs) is None
    assert stage_for_xero_status("DELETED", current_stage_id="DT31_3:N", **kwargs) is None
