"""What both fakes share: the clock the limits run on, the call log, injected faults, the lock.

Everything lives in memory and is guarded by one re-entrant lock; the server is threaded, so a
handler takes `sandbox.lock` around any read-modify-write of the world.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field


class Clock:
    """Wall time for the rate limits, optionally running faster (time_scale 10: a minute lasts 6 s).

    Data timestamps (UpdatedDateUTC, updatedTime) use real wall time; only limit windows and token
    lifetimes use this clock, so scaling never produces timestamps in the future.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scale = 1.0
        self._real_origin = time.time()
        self._scaled_origin = self._real_origin

    def now(self) -> float:
        with self._lock:
            return self._scaled_origin + (time.time() - self._real_origin) * self._scale

    @property
    def scale(self) -> float:
        return self._scale

    def set_scale(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be positive")
        with self._lock:
            now_real = time.time()
            self._scaled_origin = self._scaled_origin + (now_real - self._real_origin) * self._scale
            self._real_origin = now_real
            self._scale = scale

    def real_seconds(self, sandbox_seconds: float) -> float:
        """How long a sandbox-clock duration lasts in real time (for Retry-After and sleeps)."""
        return sandbox_seconds / self._scale


class OutboundDeliveries:
    """Counts the sandbox's own outbound POSTs (Bitrix24 events, Xero webhooks) while they run, so
    a test can wait until nothing is still arriving at the app before its database is wiped."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0

    @contextlib.contextmanager
    def running(self):
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout=timeout)


OUTBOUND = OutboundDeliveries()


# Neither service promises order or exactly-once delivery: Bitrix24 sends events from a queue
# (api-reference/events/index.md) and never retries, so a sweep must catch what is lost; Xero
# retries a delivery it did not see answered for up to 24 h, so a handled payload can come again
# (xero-api.md §7.4), and the sequence numbers are per payload, not a global order. With
# `duplicates` every notification is sent that many extra times, `delay_s` holds each back, and
# `reorder` lets them overtake one another (a random extra delay up to max(delay_s, 0.1 s) per
# Bitrix24 event; events shuffled inside each Xero payload).
DELIVERY_DEFAULTS = {"delay_s": 0.0, "duplicates": 0, "reorder": False}


@dataclass
class Fault:
    system: str
    method: str  # HTTP method or "*"
    target: str  # a path (suffix match) or a Bitrix24 REST method name
    status: int | None
    times: int
    delay_s: float = 0.0
    body: dict | None = None
    after: bool = False  # apply the request first, then fail its answer (the caller never hears)
    query: str = ""  # when set, only requests whose decoded query string contains it
    retry_after: float | None = None  # a Retry-After header on the injected answer
    # A 3xx fault redirects here: Bitrix24 answers 302 to the portal's new address after a domain
    # change (settings/how-to-call-rest-api/change-domen.md).
    location: str | None = None

    def matches(self, system: str, method: str, path: str, target: str, query: str = "") -> bool:
        if self.system != system or self.times <= 0:
            return False
        if self.method not in ("*", method):
            return False
        if self.query and self.query not in query:
            return False
        want = self.target
        return want in ("*", target) or path == want or path.endswith(want) or target.lower() == want.lower()


@dataclass
class CallRecord:
    id: int
    system: str
    method: str
    path: str
    target: str
    key: str  # xero tenant id / bitrix24 member id ("" when unknown)
    started: float  # real unix time
    sandbox_started: float  # on the limits clock
    in_flight: int  # calls in flight for (system, key) when this one started, itself included
    status: int | None = None
    finished: float | None = None
    fault: bool = False

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "system": self.system,
            "method": self.method,
            "path": self.path,
            "target": self.target,
            "key": self.key,
            "status": self.status,
            "time": self.started,
            "started": self.started,
            "finished": self.finished,
            "sandbox_time": self.sandbox_started,
            "in_flight": self.in_flight,
            "fault": self.fault,
        }


@dataclass
class Sandbox:
    lock: threading.RLock = field(default_factory=threading.RLock)
    clock: Clock = field(default_factory=Clock)
    limits_enabled: bool = False
    calls: list[CallRecord] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    base_url: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _in_flight: dict[tuple[str, str], int] = field(default_factory=dict)
    _log_lock: threading.Lock = field(default_factory=threading.Lock)
    # The two worlds are attached by sandbox.app.create_app.
    xero: object = None
    bitrix24: object = None
    strict: object = None  # sandbox.xero.strict.StrictXero when SANDBOX_XERO_STRICT is set
    # How outbound notifications (Bitrix24 events, Xero webhooks) travel: POST /_sandbox/delivery.
    delivery: dict = field(default_factory=lambda: dict(DELIVERY_DEFAULTS))

    # --- call log ------------------------------------------------------------------------------
    def call_started(self, system: str, method: str, path: str, target: str, key: str) -> CallRecord:
        with self._log_lock:
            slot = (system, key)
            self._in_flight[slot] = self._in_flight.get(slot, 0) + 1
            record = CallRecord(
                id=next(self._ids),
                system=system,
                method=method,
                path=path,
                target=target,
                key=key,
                started=time.time(),
                sandbox_started=self.clock.now(),
                in_flight=self._in_flight[slot],
            )
            self.calls.append(record)
            return record

    def call_finished(self, record: CallRecord, status: int) -> None:
        with self._log_lock:
            if record.finished is not None:
                return
            record.status = status
            record.finished = time.time()
            slot = (record.system, record.key)
            self._in_flight[slot] = max(0, self._in_flight.get(slot, 1) - 1)

    def in_flight(self, system: str, key: str) -> int:
        with self._log_lock:
            return self._in_flight.get((system, key), 0)

    def rekey_call(self, record: CallRecord, key: str) -> None:
        """Move a call to the right tenant/portal once the handler knows it (e.g. from the token)."""
        with self._log_lock:
            if record.key == key:
                return
            old = (record.system, record.key)
            self._in_flight[old] = max(0, self._in_flight.get(old, 1) - 1)
            new = (record.system, key)
            self._in_flight[new] = self._in_flight.get(new, 0) + 1
            record.key = key
            record.in_flight = self._in_flight[new]

    # --- faults --------------------------------------------------------------------------------
    def take_fault(self, system: str, method: str, path: str, target: str, query: str = "") -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(system, method, path, target, query):
                    fault.times -= 1
                    return fault
            return None

    def reset(self) -> None:
        with self.lock:
            self.limits_enabled = False
            self.delivery = dict(DELIVERY_DEFAULTS)
            self.clock.set_scale(1.0)
            self.faults.clear()
            with self._log_lock:
                self.calls.clear()
            self.xero.reset()
            self.bitrix24.reset()
