"""Fingerprints for "skip unchanged" and echo suppression, and the Idempotency-Key built on them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sync.mappers.canonical import canonical_hash, idempotency_key, invoice_pull_fingerprint, invoice_push_fingerprint
from sync.mappers.invoice import MappingSettings, invoice_to_xero

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS = MappingSettings(tax_types={"15": "OUTPUT2", None: "NONE"}, bitrix24_domain="acme.bitrix24.com")
MEMBER_ID = "a223c6b3710f85df22e9377d6c4f7553"


def gst_invoice() -> dict:
    data = json.loads((FIXTURES / "invoice_gst_exclusive.json").read_text())
    item = data["crm.item.get"]["result"]["item"]
    rows = data["crm.item.productrow.list"]["result"]["productRows"]
    return invoice_to_xero(item, rows, {"ContactID": "b3a1c9de-2f44-4c1e-9a0b-5d6e7f809102"}, SETTINGS)


def test_the_hash_ignores_key_order():
    assert canonical_hash({"a": 1, "b": {"c": "x", "d": [1, 2]}}) == canonical_hash(
        {"b": {"d": [1, 2], "c": "x"}, "a": 1}
    )


def test_the_hash_ignores_how_a_number_is_written():
    assert canonical_hash({"UnitAmount": Decimal("19.9900")}) == canonical_hash({"UnitAmount": Decimal("19.99")})
    assert (
        canonical_hash({"Quantity": 3})
        == canonical_hash({"Quantity": 3.0})
        == canonical_hash({"Quantity": Decimal("3.0000")})
    )


def test_a_number_and_the_same_digits_as_text_hash_differently():
    assert canonical_hash({"InvoiceNumber": "42"}) != canonical_hash({"InvoiceNumber": 42})


def test_the_hash_depends_on_list_order():
    assert canonical_hash({"l": [1, 2]}) != canonical_hash({"l": [2, 1]})


def test_mapping_the_same_invoice_twice_gives_the_same_push_fingerprint():
    assert invoice_push_fingerprint(gst_invoice()) == invoice_push_fingerprint(gst_invoice())


def test_a_changed_line_changes_the_push_fingerprint():
    changed = gst_invoice()
    changed["LineItems"][1]["Quantity"] = Decimal("4")

    assert invoice_push_fingerprint(changed) != invoice_push_fingerprint(gst_invoice())


def test_fields_xero_adds_on_its_side_do_not_change_the_push_fingerprint():
    echoed = gst_invoice()
    echoed["InvoiceID"] = "6a3c1c2e-6d31-4c1b-9b0e-1f2a3b4c5d6e"
    echoed["Total"] = Decimal("1391.47")
    echoed["Contact"] = {**echoed["Contact"], "HasValidationErrors": False}
    for number, line in enumerate(echoed["LineItems"]):
        line["LineItemID"] = f"0b1d0f8e-1111-4a55-9c1e-00000000050{number}"
        line["UnitAmount"] = float(line["UnitAmount"])  # the SDK sends floats

    assert invoice_push_fingerprint(echoed) == invoice_push_fingerprint(gst_invoice())


def test_a_status_change_changes_the_push_fingerprint():
    approved = {**gst_invoice(), "Status": "AUTHORISED"}

    assert invoice_push_fingerprint(approved) != invoice_push_fingerprint(gst_invoice())


def test_the_pull_fingerprint_changes_with_the_status_or_the_amount_paid_only():
    base = invoice_pull_fingerprint("AUTHORISED", Decimal("0.00"), stage_id="DT31_3:S")

    assert base == invoice_pull_fingerprint("AUTHORISED", 0, stage_id="DT31_3:S")
    assert base != invoice_pull_fingerprint("AUTHORISED", Decimal("100.00"), stage_id="DT31_3:S")
    assert base != invoice_pull_fingerprint("PAID", Decimal("0.00"), stage_id="DT31_3:S")


def test_the_idempotency_key_is_deterministic_short_enough_and_new_for_new_content():
    first = invoice_push_fingerprint(gst_invoice())
    key = idempotency_key(MEMBER_ID, 42, first)

    assert key == idempotency_key(MEMBER_ID, 42, first)
    assert len(key) <= 128
    assert key != idempotency_key(MEMBER_ID, 42, canonical_hash({"other": 1}))
    assert key != idempotency_key(MEMBER_ID, 43, first)


def test_an_overlong_idempotency_key_is_hashed_down_to_xeros_limit():
    key = idempotency_key("m" * 100, "31:42", "f" * 64)

    assert len(key) <= 128
    assert key == idempotency_key("m" * 100, "31:42", "f" * 64)
    assert key != idempotency_key("m" * 100, "31:43", "f" * 64)
