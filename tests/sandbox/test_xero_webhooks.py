"""The fake Xero's webhooks: Intent to Receive, signed batches, retries, disabling, duplicates.

A tiny receiver runs in the test on a free port and checks every signature itself (the signing code
under test is not reused). Most tests drive the emitter in process, on a real sandbox core, the way the
Xero world does; the last ones go through the sandbox process's control API and its invoices.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sandbox.core import Sandbox
from sandbox.xero.webhooks import WebhookEmitter
from tests.sandbox.openapi import XeroClient

KEY = "8nV4wXq1Kp0Z+webhook/key=="
TENANT = "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f"
OTHER_TENANT = "aef86862-2015-4b6b-88bc-d89032cecc50"
INVOICE_ID = "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777"


class Receiver:
    """A webhook endpoint: 401 for a bad signature, else 200 with an empty body.

    `accept_everything` answers 200 whatever the signature (the mistake ITR must catch);
    `fail_next` answers 500 to that many correctly signed payloads first.
    """

    def __init__(self, key: str = KEY, accept_everything: bool = False) -> None:
        self.key = key
        self.accept_everything = accept_everything
        self.fail_next = 0
        self.received: list[dict] = []  # every request: raw body, headers, verified, answered status
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xero/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = base64.b64encode(hmac.new(receiver.key.encode(), raw, hashlib.sha256).digest()).decode()
                verified = hmac.compare_digest(expected, self.headers.get("x-xero-signature", ""))
                with receiver._lock:
                    if receiver.accept_everything:
                        status = 200
                    elif not verified:
                        status = 401
                    elif receiver.fail_next:
                        receiver.fail_next -= 1
                        status = 500
                    else:
                        status = 200
                    receiver.received.append(
                        {"raw": raw, "headers": dict(self.headers), "verified": verified, "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def payloads(self) -> list[dict]:
        """The parsed bodies of verified deliveries that carried events, in arrival order."""
        with self._lock:
            rows = list(self.received)
        return [json.loads(r["raw"]) for r in rows if r["verified"] and json.loads(r["raw"])["events"]]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            payloads = self.payloads()
            if len(payloads) >= count:
                return payloads
            time.sleep(0.02)
        raise AssertionError(f"expected {count} event deliveries within {timeout}s, got {len(self.payloads())}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def core():
    """A real sandbox core (clock, locks) for the emitter, outside the server process."""
    return Sandbox()


@pytest.fixture
def emitter(core):
    emitter = WebhookEmitter(core)
    yield emitter
    emitter.stop()


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# --- Intent to Receive ---------------------------------------------------------------------------
def test_intent_to_receive_passes_against_a_receiver_that_checks_signatures(emitter, receiver):
    outcome = emitter.configure(receiver.url, KEY)

    assert outcome["status"] == "OK", outcome
    probes = receiver.received
    assert len(probes) >= 2
    assert {p["verified"] for p in probes} == {True, False}, "ITR must send signed and mis-signed probes"
    for probe in probes:
        body = json.loads(probe["raw"])
        assert body["events"] == [] and body["firstEventSequence"] == 0 and body["lastEventSequence"] == 0
        assert body["entropy"]
    assert len({json.loads(p["raw"])["entropy"] for p in probes}) == len(probes)
    assert emitter.snapshot()["subscription"]["status"] == "OK"


def test_intent_to_receive_fails_against_a_receiver_that_answers_200_to_everything(emitter):
    lenient = Receiver(accept_everything=True)
    try:
        outcome = emitter.configure(lenient.url, KEY)
    finally:
        lenient.close()

    assert outcome["status"] == "FAILED"
    assert any("mis-signed" in reason and "expected 401" in reason for reason in outcome["itr"]["reasons"])


def test_intent_to_receive_fails_when_the_receiver_checks_another_key(emitter):
    wrong_key = Receiver(key="not-the-key")
    try:
        outcome = emitter.configure(wrong_key.url, KEY)
    finally:
        wrong_key.close()

    assert outcome["status"] == "FAILED"
    assert any("correctly signed" in reason and "expected 200" in reason for reason in outcome["itr"]["reasons"])


def test_intent_to_receive_fails_at_once_against_an_unreachable_url(emitter):
    closed = Receiver()
    closed.close()

    outcome = emitter.configure(closed.url, KEY)

    assert outcome["status"] == "FAILED"
    assert len(outcome["itr"]["probes"]) == 1 and "no answer" in outcome["itr"]["reasons"][0]


def test_an_inactive_subscription_delivers_nothing(emitter):
    lenient = Receiver(accept_everything=True)
    try:
        emitter.configure(lenient.url, KEY)
        probes = len(lenient.received)
        emitter.emit(TENANT, "INVOICE", "CREATE", INVOICE_ID)
        time.sleep(0.6)
        assert len(lenient.received) == probes
    finally:
        lenient.close()


# --- delivery ------------------------------------------------------------------------------------
def test_events_queued_together_arrive_as_one_signed_batch_across_tenants(emitter, receiver):
    emitter.configure(receiver.url, KEY)
    emitter.emit(TENANT, "INVOICE", "CREATE", INVOICE_ID)
    emitter.emit(OTHER_TENANT, "CONTACT", "UPDATE", "55d84274-a3da-4829-a7c0-0cab601b95cc")

    (payload,) = receiver.wait_for(1)

    assert (payload["firstEventSequence"], payload["lastEventSequence"]) == (1, 2)
    assert payload["entropy"]
    first, second = payload["events"]
    assert first == {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{INVOICE_ID}",
        "resourceId": INVOICE_ID,
        "eventDateUtc": first["eventDateUtc"],
        "eventType": "CREATE",
        "eventCategory": "INVOICE",
        "tenantId": TENANT,
        "tenantType": "ORGANISATION",
    }
    assert second["resourceUrl"].startswith("https://api.xero.com/api.xro/2.0/Contacts/")
    assert second["tenantId"] == OTHER_TENANT
    # ISO without a zone, with milliseconds, close to now
    stamp = time.mktime(time.strptime(first["eventDateUtc"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(stamp - time.time()) < 10 and len(first["eventDateUtc"]) == 23
    delivery = next(r for r in receiver.received if r["verified"] and json.loads(r["raw"])["events"])
    assert delivery["headers"]["Content-Type"] == "application/json"


def test_sequences_keep_increasing_from_one_batch_to_the_next(emitter, receiver):
    emitter.configure(receiver.url, KEY)
    emitter.emit(TENANT, "INVOICE", "CREATE", INVOICE_ID)
    receiver.wait_for(1)
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID)
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID)

    first, second = receiver.wait_for(2)

    assert (first["firstEventSequence"], first["lastEventSequence"]) == (1, 1)
    assert (second["firstEventSequence"], second["lastEventSequence"]) == (2, 3)


def test_a_failed_delivery_is_retried_until_the_receiver_accepts_it(core, emitter, receiver):
    core.clock.set_scale(10)  # back-off 1 s, 2 s ... of sandbox clock
    emitter.configure(receiver.url, KEY)
    receiver.fail_next = 2
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID)

    wait_until(lambda: any(d["status"] == 200 for d in emitter.snapshot()["deliveries"] if d["kind"] == "delivery"))

    attempts = [d for d in emitter.snapshot()["deliveries"] if d["kind"] == "delivery"]
    assert [d["status"] for d in attempts] == [500, 500, 200]
    assert [d["attempt"] for d in attempts] == [1, 2, 3]
    assert all(d["firstEventSequence"] == 1 and d["events"] == 1 for d in attempts)
    bodies = [r["raw"] for r in receiver.received if r["verified"] and json.loads(r["raw"])["events"]]
    assert len(bodies) == 3 and len(set(bodies)) == 1, "a retry resends the same signed payload"


def test_the_subscription_is_disabled_when_the_retry_window_passes(core, emitter, receiver):
    core.clock.set_scale(10)
    emitter.configure(receiver.url, KEY, retry_window_s=5)
    receiver.fail_next = 1000
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID)

    wait_until(lambda: emitter.snapshot()["subscription"]["status"] == "DISABLED")

    statuses = [d["status"] for d in emitter.snapshot()["deliveries"] if d["kind"] == "delivery"]
    assert len(statuses) >= 3 and set(statuses) == {500}
    received = len(receiver.received)
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID)
    time.sleep(0.5)
    assert len(receiver.received) == received, "a disabled subscription delivers nothing"

    receiver.fail_next = 0
    assert emitter.run_itr()["status"] == "OK", "passing ITR again re-enables it"
    failed_attempts = len(receiver.payloads())
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID)
    payload = receiver.wait_for(failed_attempts + 1)[-1]
    assert payload["firstEventSequence"] == 2


def test_the_duplicates_option_sends_every_payload_again(emitter, receiver):
    emitter.configure(receiver.url, KEY, duplicates=2)
    emitter.emit(TENANT, "INVOICE", "CREATE", INVOICE_ID)

    payloads = receiver.wait_for(3)

    assert len({json.dumps(p, sort_keys=True) for p in payloads}) == 1
    time.sleep(0.3)
    assert len(receiver.payloads()) == 3


def test_the_shuffle_option_puts_events_out_of_order(emitter, receiver):
    emitter.configure(receiver.url, KEY, shuffle=True)
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(30)]
    for resource_id in ids:
        emitter.emit(TENANT, "CONTACT", "UPDATE", resource_id)

    payloads = receiver.wait_for(1)
    wait_until(lambda: sum(len(p["events"]) for p in receiver.payloads()) == 30)

    delivered = [e["resourceId"] for p in receiver.payloads() for e in p["events"]]
    assert sorted(delivered) == ids and delivered != ids
    assert payloads[0]["firstEventSequence"] == 1


def test_reset_drops_pending_work_and_the_subscription(core, emitter, receiver):
    core.clock.set_scale(10)
    emitter.configure(receiver.url, KEY)
    receiver.fail_next = 1000
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID)
    wait_until(lambda: emitter.snapshot()["retrying"])

    emitter.reset()
    received = len(receiver.received)
    time.sleep(0.5)

    assert len(receiver.received) == received
    assert emitter.snapshot() == {
        "subscription": None,
        "itr": None,
        "pending_events": 0,
        "retrying": [],
        "last_sequence": 0,
        "deliveries": [],
    }


def test_stop_ends_the_delivery_thread(core, receiver):
    emitter = WebhookEmitter(core)
    emitter.configure(receiver.url, KEY)
    thread = emitter._thread
    assert thread is not None and thread.is_alive()

    emitter.stop()

    assert not thread.is_alive()


# --- through the sandbox process -----------------------------------------------------------------
def test_the_control_api_configures_itr_and_lists_deliveries(sandbox, receiver):
    url = f"{sandbox.base_url}/_sandbox/xero/webhooks"
    configured = requests.post(url, json={"url": receiver.url, "key": KEY}, timeout=10).json()
    assert configured["status"] == "OK" and configured["itr"]["reasons"] == []

    requests.post(
        f"{url}/events",
        json={"tenantId": TENANT, "eventCategory": "INVOICE", "eventType": "CREATE", "resourceId": INVOICE_ID},
        timeout=5,
    ).raise_for_status()
    (payload,) = receiver.wait_for(1)
    assert payload["events"][0]["resourceId"] == INVOICE_ID

    rerun = requests.post(f"{url}/itr", timeout=10).json()
    assert rerun["status"] == "OK"
    snapshot = requests.get(url, timeout=5).json()
    assert snapshot["subscription"]["status"] == "OK" and snapshot["subscription"]["url"] == receiver.url
    kinds = [d["kind"] for d in snapshot["deliveries"]]
    assert "delivery" in kinds and kinds.count("itr") >= 4
    assert requests.post(url, json={"url": "ftp://x", "key": KEY}, timeout=5).status_code == 400


def test_a_sandbox_reset_forgets_the_subscription(sandbox, receiver):
    sandbox.xero_webhooks(receiver.url, KEY)
    sandbox.reset()
    assert requests.get(f"{sandbox.base_url}/_sandbox/xero/webhooks", timeout=5).json()["subscription"] is None


def test_a_payment_entered_in_xero_is_announced_as_an_invoice_update(sandbox, receiver):
    xero = XeroClient.connect(sandbox)
    created = xero.put(
        "/Invoices",
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"Name": "Webhook Payer"},
                    "Status": "AUTHORISED",
                    "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 50, "AccountCode": "200"}],
                }
            ]
        },
    ).json()["Invoices"][0]
    sandbox.xero_webhooks(receiver.url, KEY)

    sandbox.xero_pay(created["InvoiceID"])

    (payload,) = receiver.wait_for(1)
    updates = [e for e in payload["events"] if e["resourceId"] == created["InvoiceID"]]
    assert [(e["eventCategory"], e["eventType"], e["tenantId"]) for e in updates] == [
        ("INVOICE", "UPDATE", xero.tenant_id)
    ]


def test_an_events_date_is_the_time_the_change_occurred_when_known(emitter, receiver):
    """eventDateUtc is "the date and time that event occurred" (xero-webhooks.yaml): for a write, the
    UpdatedDateUTC it gave the invoice, to the millisecond (sandbox/xero/world.py passes it)."""
    from datetime import UTC, datetime

    emitter.configure(receiver.url, KEY)
    changed = datetime(2026, 12, 6, 7, 15, 39, 902000, tzinfo=UTC)
    emitter.emit(TENANT, "INVOICE", "UPDATE", INVOICE_ID, occurred_at=changed)

    (payload,) = receiver.wait_for(1)

    assert payload["events"][0]["eventDateUtc"] == "2026-12-06T07:15:39.902"
