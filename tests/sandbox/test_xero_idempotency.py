"""Idempotency-Key on the fake Xero's writes: replay, mismatch, scope, length, expiry, concurrency.

The store is driven in process on a real sandbox core for the rules, and through the sandbox process
with a connected client for what a connector sees.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sandbox.core import Sandbox
from sandbox.xero.idempotency import IdempotencyError, IdempotencyStore
from tests.sandbox.openapi import XeroClient

TENANT = "tenant-a"
BODY = b'{"Invoices":[{"Type":"ACCREC"}]}'


@pytest.fixture
def core():
    return Sandbox()


@pytest.fixture
def store(core):
    return IdempotencyStore(core)


def run(store, key, answer=(200, {"Invoices": [{"InvoiceID": "1"}]}), tenant=TENANT, method="PUT", body=BODY):
    """One guarded write: returns (replayed answer or None, how many times the write really ran)."""
    with store.guard(tenant, key, method, "/Invoices", body) as replay:
        if replay.response is not None:
            return replay.response, 0
        replay.remember(*answer)
        return None, 1


# --- in process ----------------------------------------------------------------------------------
def test_without_a_key_every_request_runs(store):
    assert run(store, None) == (None, 1)
    assert run(store, None) == (None, 1)
    assert run(store, "") == (None, 1)


def test_a_retry_of_the_same_request_gets_the_first_answer_and_runs_nothing(store):
    first = (200, {"Invoices": [{"InvoiceID": "1"}]})
    assert run(store, "k1", first) == (None, 1)

    replayed, ran = run(store, "k1", (200, {"Invoices": [{"InvoiceID": "2"}]}))

    assert (replayed, ran) == (first, 0)
    replayed[1]["Invoices"].clear()
    assert run(store, "k1")[0] == first, "a caller changing a replayed body must not change the stored one"


@pytest.mark.parametrize(
    "change", [{"body": b'{"Invoices":[{"Type":"ACCPAY"}]}'}, {"method": "POST"}], ids=["other body", "other method"]
)
def test_the_same_key_for_a_different_request_is_refused(store, change):
    run(store, "k1")

    with pytest.raises(IdempotencyError, match="already been used for a different request"):
        run(store, "k1", **change)


def test_the_same_key_for_another_path_is_refused(store):
    run(store, "k1")

    with pytest.raises(IdempotencyError), store.guard(TENANT, "k1", "PUT", "/Contacts", BODY):
        pass


def test_keys_are_scoped_per_tenant(store):
    run(store, "k1", tenant="tenant-a")

    assert run(store, "k1", tenant="tenant-b") == (None, 1)


def test_a_key_longer_than_128_characters_is_refused(store):
    assert run(store, "x" * 128) == (None, 1)

    with pytest.raises(IdempotencyError, match="Idempotency-Key must be 128 characters or fewer"):
        run(store, "x" * 129)


def test_a_validation_error_is_replayed_but_a_server_error_is_not(store):
    refusal = (400, {"Type": "ValidationException"})
    run(store, "bad", refusal)
    assert run(store, "bad") == (refusal, 0)

    run(store, "flaky", (500, {"Message": "boom"}))
    assert run(store, "flaky") == (None, 1), "the retry of a 5xx must really run"
    run(store, "throttled", (429, {}))
    assert run(store, "throttled") == (None, 1)


def test_a_write_that_raised_leaves_the_key_free(store):
    with pytest.raises(RuntimeError), store.guard(TENANT, "k1", "PUT", "/Invoices", BODY):
        raise RuntimeError("handler crashed")

    assert run(store, "k1", body=b"anything else") == (None, 1)


def test_answers_are_forgotten_after_24_hours_of_sandbox_clock(core, store):
    core.clock.set_scale(24 * 3600 * 10)  # a day lasts 0.1 s
    run(store, "k1")

    time.sleep(0.15)

    assert run(store, "k1") == (None, 1)


def test_a_duplicate_arriving_while_the_first_runs_waits_and_replays(store):
    started, finished = threading.Event(), threading.Event()

    def first():
        with store.guard(TENANT, "k1", "PUT", "/Invoices", BODY) as replay:
            started.set()
            time.sleep(0.3)
            replay.remember(200, {"Invoices": [{"InvoiceID": "1"}]})
            finished.set()

    def duplicate():
        started.wait()
        with store.guard(TENANT, "k1", "PUT", "/Invoices", BODY) as replay:
            return finished.is_set(), replay.response

    with ThreadPoolExecutor(2) as pool:
        pool.submit(first)
        waited, response = pool.submit(duplicate).result(timeout=5)

    assert waited, "the duplicate entered before the first answer was stored"
    assert response == (200, {"Invoices": [{"InvoiceID": "1"}]})


def test_reset_forgets_every_key(store):
    run(store, "k1")
    store.reset()
    assert run(store, "k1", body=b"another") == (None, 1)


# --- through the sandbox process -----------------------------------------------------------------
def invoice(reference: str = "B24-1") -> dict:
    return {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"Name": "Idempotent Ltd"},
                "Date": "2026-01-05",
                "DueDate": "2026-02-05",
                "Reference": reference,
                "Status": "DRAFT",
                "LineItems": [{"Description": "Consulting", "Quantity": 2, "UnitAmount": 150, "AccountCode": "200"}],
            }
        ]
    }


@pytest.fixture
def xero(sandbox):
    return XeroClient.connect(sandbox)


def invoice_count(xero) -> int:
    return len(xero.get("/Invoices", params={"page": 1}).json()["Invoices"])


def test_a_replayed_invoice_put_returns_the_same_invoice_and_creates_no_duplicate(sandbox, xero):
    first = xero.put("/Invoices", json=invoice(), headers={"Idempotency-Key": "inv:1:hash"})
    again = xero.put("/Invoices", json=invoice(), headers={"Idempotency-Key": "inv:1:hash"})

    assert first.status_code == again.status_code == 200
    assert again.json()["Invoices"] == first.json()["Invoices"]
    assert invoice_count(xero) == 1
    invoice_id = first.json()["Invoices"][0]["InvoiceID"]
    assert str(sandbox.state()).count(invoice_id) == 1, "the sandbox's state holds the invoice once"


def test_without_a_key_the_same_put_creates_two_invoices(sandbox, xero):
    xero.put("/Invoices", json=invoice())
    xero.put("/Invoices", json=invoice())

    assert invoice_count(xero) == 2


def test_a_reused_key_with_another_body_is_refused_with_400(sandbox, xero):
    xero.put("/Invoices", json=invoice("B24-1"), headers={"Idempotency-Key": "inv:1"})

    refused = xero.put("/Invoices", json=invoice("B24-2"), headers={"Idempotency-Key": "inv:1"})

    assert refused.status_code == 400
    assert "different request" in refused.text
    assert invoice_count(xero) == 1


def test_a_key_over_128_characters_is_refused_with_400(sandbox, xero):
    refused = xero.put("/Invoices", json=invoice(), headers={"Idempotency-Key": "k" * 129})

    assert refused.status_code == 400
    assert "128 characters or fewer" in refused.text
    assert invoice_count(xero) == 0


def test_concurrent_duplicates_create_one_invoice(sandbox, xero):
    with ThreadPoolExecutor(3) as pool:
        responses = list(
            pool.map(lambda _: xero.put("/Invoices", json=invoice(), headers={"Idempotency-Key": "burst"}), range(3))
        )

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len({r.json()["Invoices"][0]["InvoiceID"] for r in responses}) == 1
    assert invoice_count(xero) == 1
