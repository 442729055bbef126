"""Xero's outbound webhooks: Intent to Receive, signed batched delivery, retries, disabling (§7).

One subscription per sandbox, as in Xero (one per app, covering every connected organisation).

- `configure` stores the URL and key and runs Intent to Receive at once: a shuffled series of empty
  payloads (sequences 0), half signed with the key and half with a wrong one. The receiver must answer
  200 with an empty body to every signed probe and 401 to every mis-signed one, and set no cookies;
  otherwise the subscription is FAILED and delivers nothing.
- `emit` only queues (callers may hold the world's lock). A daemon thread gathers the events queued
  within BATCH_WINDOW_S (across tenants) into one POST, signs the exact body bytes
  (x-xero-signature = base64 HMAC-SHA256 with the key as UTF-8) and sends it with a 5 s timeout.
- Anything but 200, or no answer, is retried with back-off on the sandbox clock (1 s, 2 s, 4 s ... up
  to an hour) until `retry_window_s` (24 h) has passed since the first attempt; then the subscription
  is DISABLED and its undelivered events are dropped, as Xero does. Re-running ITR re-enables it.
- For tests of the receiver: `duplicates` sends every delivered payload that many extra times;
  `shuffle` puts the events inside each payload out of order (the sequence numbers stay the batch's).

The thread never takes `sandbox.lock`, and nothing is held while a request is on the wire; a reset
bumps a generation number so an answer arriving for dropped work is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import string
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from sandbox.core import OUTBOUND

BATCH_WINDOW_S = 0.2  # real seconds
TIMEOUT_S = 5.0  # Xero gives receivers 5 s
DAY = 24 * 3600.0
MAX_BACKOFF_S = 3600.0  # sandbox seconds
ITR_PROBES = 4
LOG_SIZE = 1000
RESOURCE_PATHS = {
    "INVOICE": "Invoices",
    "CONTACT": "Contacts",
    "CREDITNOTE": "CreditNotes",
    "PREPAYMENT": "Prepayments",
}
API_BASE = "https://api.xero.com/api.xro/2.0"

OK = "OK"
FAILED = "FAILED"
DISABLED = "DISABLED"
PENDING = "PENDING"


def sign(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def _entropy() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


def _payload(events: list[dict], first: int, last: int) -> bytes:
    body = {"events": events, "firstEventSequence": first, "lastEventSequence": last, "entropy": _entropy()}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


@dataclass
class Subscription:
    url: str
    key: str
    status: str = PENDING
    duplicates: int = 0
    shuffle: bool = False
    retry_window_s: float = DAY
    reason: str = ""

    def public(self) -> dict:
        return {
            "url": self.url,
            "status": self.status,
            "duplicates": self.duplicates,
            "shuffle": self.shuffle,
            "retry_window_s": self.retry_window_s,
            "reason": self.reason,
        }


@dataclass
class _Batch:
    body: bytes
    signature: str
    first: int
    last: int
    events: int
    generation: int
    attempts: int = 0
    first_attempt: float | None = None  # sandbox clock
    next_attempt: float = 0.0  # sandbox clock


@dataclass
class _Answer:
    status: int | None
    body: bytes = b""
    cookies: bool = False
    error: str = ""
    elapsed_s: float = 0.0


@dataclass
class _Queued:
    event: dict
    queued_at: float = field(default_factory=time.monotonic)


class WebhookEmitter:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._clear()

    def _clear(self) -> None:
        self._generation = getattr(self, "_generation", 0) + 1
        self._subscription: Subscription | None = None
        self._itr: dict | None = None
        self._pending: list[_Queued] = []
        self._retries: list[_Batch] = []
        self._log: deque[dict] = deque(maxlen=LOG_SIZE)
        self._sequence = 0

    # --- interface used by the Xero world --------------------------------------------------------
    def reset(self) -> None:
        """Forget the subscription and pending deliveries."""
        with self._cond:
            self._clear()
            self._cond.notify_all()

    def configure(
        self, url: str, key: str, duplicates: int = 0, shuffle: bool = False, retry_window_s: float = DAY
    ) -> dict:
        """Set the delivery URL and signing key, run Intent to Receive against it; return the outcome."""
        with self._cond:
            self._generation += 1
            self._pending.clear()
            self._retries.clear()
            self._subscription = Subscription(url, key, PENDING, duplicates, shuffle, retry_window_s)
        return self.run_itr()

    def run_itr(self) -> dict:
        """Intent to Receive against the current subscription; OK activates it, anything else fails it."""
        with self._cond:
            subscription = self._subscription
            generation = self._generation
        if subscription is None:
            raise LookupError("no webhook subscription is configured")
        result = self._intent_to_receive(subscription, generation)
        with self._cond:
            if generation == self._generation and subscription is self._subscription:
                subscription.status = result["status"]
                subscription.reason = "; ".join(result["reasons"])
                self._itr = result
        self._ensure_worker()
        return {"url": subscription.url, "status": result["status"], "itr": result}

    def emit(
        self, tenant_id: str, category: str, event_type: str, resource_id: str, occurred_at: datetime | None = None
    ) -> None:
        """Record a change (category INVOICE/CONTACT, type CREATE/UPDATE) for batched, signed delivery.

        eventDateUtc is "the date and time that event occurred" (xero-webhooks.yaml): the change's own
        time, the UpdatedDateUTC the change gave the resource, when the caller knows it (to the
        millisecond, as both are written); else the moment of the call."""
        when = occurred_at.astimezone(UTC) if occurred_at is not None else datetime.now(UTC)
        event = {
            "resourceUrl": f"{API_BASE}/{RESOURCE_PATHS.get(category, category.title() + 's')}/{resource_id}",
            "resourceId": resource_id,
            "eventDateUtc": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "eventType": event_type,
            "eventCategory": category,
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
        }
        with self._cond:
            if self._subscription is None or self._subscription.status != OK:
                return  # an inactive subscription delivers nothing, and nothing is kept for later
            self._pending.append(_Queued(event))
            self._cond.notify_all()
        self._ensure_worker()

    def snapshot(self) -> dict:
        with self._cond:
            return {
                "subscription": self._subscription.public() if self._subscription else None,
                "itr": self._itr,
                "pending_events": len(self._pending),
                "retrying": [
                    {"firstEventSequence": b.first, "lastEventSequence": b.last, "attempts": b.attempts}
                    for b in self._retries
                ],
                "last_sequence": self._sequence,
                "deliveries": list(self._log),
            }

    def stop(self, timeout: float = TIMEOUT_S + 1) -> None:
        """End the delivery thread (it finishes the request on the wire, if any)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- Intent to Receive -----------------------------------------------------------------------
    def _intent_to_receive(self, subscription: Subscription, generation: int) -> dict:
        signed_flags = [True] * (ITR_PROBES // 2) + [False] * (ITR_PROBES - ITR_PROBES // 2)
        random.shuffle(signed_flags)
        probes, reasons = [], []
        for number, signed in enumerate(signed_flags, start=1):
            body = _payload([], 0, 0)
            signature = sign(subscription.key if signed else secrets.token_urlsafe(24), body)
            answer = _post(subscription.url, body, signature)
            problem = _itr_problem(signed, answer)
            probes.append({"signed": signed, "status": answer.status, "ok": problem is None, "error": answer.error})
            if problem:
                kind = "correctly signed" if signed else "mis-signed"
                reasons.append(f"probe {number} ({kind}): {problem}")
            self._record("itr", generation, answer, 0, 0, 0, 1)
            if answer.status is None:
                break  # unreachable: the remaining probes would only wait out the same timeout
        return {"status": FAILED if reasons else OK, "probes": probes, "reasons": reasons}

    # --- delivery thread -------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        with self._cond:
            if self._stopping or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name="xero-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = None
                while batch is None:
                    if self._stopping:
                        return
                    batch, wait = self._next_batch()
                    if batch is None:
                        self._cond.wait(wait)
                subscription = self._subscription
            self._deliver(batch, subscription)

    def _next_batch(self) -> tuple[_Batch | None, float]:
        """A batch due now, or how long (real seconds) to sleep before looking again. Lock held."""
        subscription = self._subscription
        if subscription is None or subscription.status != OK:
            return None, 1.0
        now = self.sandbox.clock.now()
        waits = [0.5]  # look again regularly: the time scale may change
        for batch in self._retries:
            if batch.next_attempt <= now:
                self._retries.remove(batch)
                return batch, 0.0
            waits.append(self.sandbox.clock.real_seconds(batch.next_attempt - now))
        if self._pending:
            window = BATCH_WINDOW_S + float(self.sandbox.delivery["delay_s"])  # POST /_sandbox/delivery
            ripe_in = self._pending[0].queued_at + window - time.monotonic()
            if ripe_in <= 0:
                return self._take_pending(subscription), 0.0
            waits.append(ripe_in)
        return None, max(0.01, min(waits))

    def _take_pending(self, subscription: Subscription) -> _Batch:
        events = [queued.event for queued in self._pending]
        self._pending.clear()
        if subscription.shuffle or self.sandbox.delivery["reorder"]:
            random.shuffle(events)
        first = self._sequence + 1
        self._sequence += len(events)
        body = _payload(events, first, self._sequence)
        return _Batch(body, sign(subscription.key, body), first, self._sequence, len(events), self._generation)

    def _deliver(self, batch: _Batch, subscription: Subscription) -> None:
        answer = _post(subscription.url, batch.body, batch.signature)
        with self._cond:
            if batch.generation != self._generation:
                return  # reset or reconfigured while the request was on the wire
            now = self.sandbox.clock.now()
            batch.attempts += 1
            if batch.first_attempt is None:
                batch.first_attempt = now
            self._record("delivery", batch.generation, answer, batch.first, batch.last, batch.events, batch.attempts)
            if answer.status == 200:
                duplicates = subscription.duplicates + int(self.sandbox.delivery["duplicates"])
            elif now - batch.first_attempt >= subscription.retry_window_s:
                self._disable(subscription, batch)
                return
            else:
                backoff = min(2.0 ** (batch.attempts - 1), MAX_BACKOFF_S)
                batch.next_attempt = now + backoff
                self._retries.append(batch)
                return
        for _ in range(duplicates):
            again = _post(subscription.url, batch.body, batch.signature)
            with self._cond:
                if batch.generation != self._generation:
                    return
                self._record("duplicate", batch.generation, again, batch.first, batch.last, batch.events, 1)

    def _disable(self, subscription: Subscription, batch: _Batch) -> None:
        """Lock held. Xero gives up after its retry window and drops what it could not deliver."""
        subscription.status = DISABLED
        subscription.reason = (
            f"events {batch.first}-{batch.last} undelivered after {batch.attempts} attempts "
            f"over {subscription.retry_window_s:g} s"
        )
        self._pending.clear()
        self._retries.clear()

    def _record(self, kind: str, generation: int, answer: _Answer, first: int, last: int, events: int, attempt: int):
        with self._cond:
            if generation != self._generation:
                return
            self._log.append(
                {
                    "kind": kind,
                    "time": time.time(),
                    "sandbox_time": self.sandbox.clock.now(),
                    "status": answer.status,
                    "error": answer.error,
                    "elapsed_s": round(answer.elapsed_s, 3),
                    "firstEventSequence": first,
                    "lastEventSequence": last,
                    "events": events,
                    "attempt": attempt,
                }
            )


def _post(url: str, body: bytes, signature: str) -> _Answer:
    started = time.monotonic()
    headers = {"Content-Type": "application/json", "x-xero-signature": signature, "User-Agent": "Xero-Webhooks"}
    try:
        with OUTBOUND.running():
            response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        return _Answer(None, error=error, elapsed_s=time.monotonic() - started)
    cookies = "set-cookie" in {name.lower() for name in response.headers}
    return _Answer(response.status_code, response.content, cookies, elapsed_s=time.monotonic() - started)


def _itr_problem(signed: bool, answer: _Answer) -> str | None:
    if answer.status is None:
        return f"no answer ({answer.error})"
    if answer.cookies:
        return "the response sets a cookie"
    if signed and answer.status != 200:
        return f"expected 200, got {answer.status}"
    if signed and answer.body:
        return "expected an empty body with the 200"
    if not signed and answer.status != 401:
        return f"expected 401, got {answer.status}"
    return None
