"""Xero's rate limits, as the fake organisation enforces them (xero-api.md §8.3, §9).

Per tenant: 5 calls in flight, 60 calls per rolling 60 s, a daily budget per rolling 24 h (5000, or
e.g. 1000 for the Starter tier); for the whole app: 10,000 calls per rolling 60 s. Every window runs on
the sandbox clock, so with time_scale 10 a Xero minute lasts 6 real seconds.

Decisions where Xero's behaviour is not documented:

- Counters are kept even while limits are off, so the X-*-Remaining headers are always right; only the
  429 depends on `sandbox.limits_enabled`.
- A rejected call does not count against any window. A client that waits out Retry-After therefore
  gets in exactly then; a client that storms keeps being refused (and every refusal is in the call log).
- When several limits are exceeded at once, the one with the longest wait is reported, so a client that
  honours Retry-After is not refused again by the next limit straight away.
- Retry-After is in whole real seconds (the sandbox wait divided by time_scale, rounded up, at least 1).
  The concurrent limit has no window to wait for; it answers 1.
- Concurrency is the number of this tenant's calls in flight when this call arrived (itself included),
  from the sandbox's call log. Counting at arrival rather than at admission keeps the outcome
  deterministic when a burst is held up before admission by an injected delay (which stands for a slow
  answer: the earlier calls are still in flight from the client's point of view). Outside a request
  (in-process use) the current count, sandbox.in_flight, is used.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass

from flask import g, has_request_context, jsonify, request

MINUTE = 60.0
DAY = 24 * 3600.0

# X-Rate-Limit-Problem values. "minute" and "day" are Xero's; the other two are unverified (§14).
CONCURRENT = "concurrent"
PER_MINUTE = "minute"
PER_DAY = "day"
APP_MINUTE = "appminute"


@dataclass
class LimitSettings:
    concurrent: int = 5
    minute: int = 60
    day: int = 5000
    app_minute: int = 10000


class _Window:
    """Timestamps of admitted calls in a rolling window (sandbox clock)."""

    def __init__(self, length: float) -> None:
        self.length = length
        self.stamps: deque[float] = deque()

    def count(self, now: float) -> int:
        while self.stamps and self.stamps[0] <= now - self.length:
            self.stamps.popleft()
        return len(self.stamps)

    def wait(self, now: float, limit: int) -> float:
        """Sandbox seconds until the window holds fewer than `limit` calls."""
        excess = self.count(now) - limit
        if excess < 0:
            return 0.0
        return max(0.0, self.stamps[excess] + self.length - now)


class XeroLimiter:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self.settings = LimitSettings()
        self._scale = sandbox.clock.scale
        self._forget()

    def _forget(self) -> None:
        self._minute: dict[str, _Window] = {}
        self._day: dict[str, _Window] = {}
        self._app_minute = _Window(MINUTE)

    def reset(self) -> None:
        """Forget every counter and restore the default limits (sandbox reset)."""
        with self._lock:
            self.settings = LimitSettings()
            self._scale = self.sandbox.clock.scale
            self._forget()

    def limits_changed(self) -> None:
        """After POST /_sandbox/limits: a new time_scale starts fresh windows.

        Calls made at the old pace would otherwise fill a scaled minute for many real seconds.
        """
        with self._lock:
            if self.sandbox.clock.scale != self._scale:
                self._scale = self.sandbox.clock.scale
                self._forget()

    def configure(self, **numbers: int) -> LimitSettings:
        with self._lock:
            for name, value in numbers.items():
                setattr(self.settings, name, value)
            return LimitSettings(**asdict(self.settings))

    # --- per call --------------------------------------------------------------------------------
    def admit(self, tenant_id: str) -> tuple[int, dict, dict] | None:
        """Called once at the start of every accounting API call, after the token and tenant checks.

        Counts the call. Returns None to let it proceed, or (429, headers, body) to reject it with
        Retry-After and X-Rate-Limit-Problem when limits are enabled and one is exceeded.
        """
        in_flight = self._in_flight(tenant_id)
        with self._lock:
            now = self.sandbox.clock.now()
            minute, day = self._windows(tenant_id)
            if self.sandbox.limits_enabled:
                problem, wait = self._worst_problem(now, in_flight, minute, day)
                if problem is not None:
                    headers = self._remaining(now, minute, day)
                    headers["Retry-After"] = str(self._real_seconds(wait))
                    headers["X-Rate-Limit-Problem"] = problem
                    body = {"Title": "Too Many Requests", "Status": 429, "Detail": f"Rate limit exceeded: {problem}"}
                    return 429, headers, body
            for window in (minute, day, self._app_minute):
                window.stamps.append(now)
            return None

    def headers(self, tenant_id: str) -> dict:
        """X-DayLimit-Remaining, X-MinLimit-Remaining, X-AppMinLimit-Remaining for a response."""
        with self._lock:
            minute, day = self._windows(tenant_id)
            return self._remaining(self.sandbox.clock.now(), minute, day)

    # --- internals (called with self._lock held) -------------------------------------------------
    def _windows(self, tenant_id: str) -> tuple[_Window, _Window]:
        minute = self._minute.setdefault(tenant_id, _Window(MINUTE))
        day = self._day.setdefault(tenant_id, _Window(DAY))
        return minute, day

    def _worst_problem(self, now: float, in_flight: int, minute: _Window, day: _Window) -> tuple[str | None, float]:
        s = self.settings
        exceeded: list[tuple[float, str]] = []
        if in_flight > s.concurrent:
            exceeded.append((0.0, CONCURRENT))
        for problem, window, limit in (
            (PER_DAY, day, s.day),
            (PER_MINUTE, minute, s.minute),
            (APP_MINUTE, self._app_minute, s.app_minute),
        ):
            if window.count(now) >= limit:
                exceeded.append((window.wait(now, limit), problem))
        if not exceeded:
            return None, 0.0
        wait, problem = max(exceeded, key=lambda item: item[0])
        return problem, wait

    def _remaining(self, now: float, minute: _Window, day: _Window) -> dict:
        s = self.settings
        return {
            "X-DayLimit-Remaining": str(max(0, s.day - day.count(now))),
            "X-MinLimit-Remaining": str(max(0, s.minute - minute.count(now))),
            "X-AppMinLimit-Remaining": str(max(0, s.app_minute - self._app_minute.count(now))),
        }

    def _real_seconds(self, sandbox_wait: float) -> int:
        return max(1, math.ceil(self.sandbox.clock.real_seconds(sandbox_wait)))

    def _in_flight(self, tenant_id: str) -> int:
        call = g.get("call") if has_request_context() else None
        if call is not None and call.key.strip().lower() == tenant_id.strip().lower():
            # Counted when the call arrived, as Xero would: an injected delay before admission stands
            # for a slow answer, during which the other calls are still in flight.
            return call.in_flight
        return self.sandbox.in_flight("xero", tenant_id)


def control_path(bp, path: str) -> str:
    """`path` relative to the blueprint's url_prefix, so a route lands on `path` whatever the prefix."""
    prefix = (bp.url_prefix or "").rstrip("/")
    if not prefix:
        return path
    if not path.startswith(prefix + "/"):
        raise ValueError(f"cannot add {path} to a blueprint under {prefix}")
    return path[len(prefix) :]


def _find_limiter(sandbox) -> XeroLimiter:
    for value in vars(sandbox.xero).values():
        if isinstance(value, XeroLimiter):
            return value
    raise LookupError("the Xero world holds no XeroLimiter")


def register(bp, sandbox) -> None:
    """Adds the control route POST /_sandbox/xero/limits {"concurrent", "minute", "day", "app_minute"}.

    Any subset of the numbers may be given; the answer is the limits now in force. GET returns them too.
    """

    @bp.route(control_path(bp, "/_sandbox/xero/limits"), methods=["GET", "POST"])
    def xero_limits():
        limiter = _find_limiter(sandbox)
        if request.method == "GET":
            return jsonify(asdict(limiter.configure()))
        body = request.get_json(silent=True) or {}
        numbers = {}
        for name in ("concurrent", "minute", "day", "app_minute"):
            if name in body:
                value = body[name]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    return jsonify({"error": "bad_request", "message": f'"{name}" must be a positive integer'}), 400
                numbers[name] = value
        return jsonify(asdict(limiter.configure(**numbers)))
