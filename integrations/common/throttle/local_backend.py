"""The process-local backend (embedded mode, no Redis): the same rules on in-memory state."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from integrations.common.throttle.limits import (
    _WAITER_TTL_S,
    Decision,
    _Bitrix24Limits,
    _lease_s,
    _org_limit,
    _reserve_for,
    _room_wait_ms,
    _XeroLimits,
)

# ------------------------------------------------------------------------------------------------
# Process-local implementation (embedded mode, no Redis): the same rules on in-memory state.
# Single process only — two processes would each believe they own the whole budget.
# ------------------------------------------------------------------------------------------------


@dataclass
class _LocalXeroTenant:
    in_flight: dict[str, float] = field(default_factory=dict)  # token -> lease expiry (ms)
    minute: dict[str, float] = field(default_factory=dict)  # token -> time counted (ms)
    day: dict[int, int] = field(default_factory=dict)  # hour bucket -> calls
    day_left: tuple[int, float] | None = None  # (remaining, valid until ms)
    penalty_until: float = 0.0
    penalty_problem: str = ""
    waiters: dict[str, float] = field(default_factory=dict)


@dataclass
class _LocalBucket:
    level: float = 0.0
    ts: float | None = None
    penalty_until: float = 0.0
    penalty_problem: str = ""
    waiters: dict[str, float] = field(default_factory=dict)


class _LocalBackend:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.xero: dict[str, _LocalXeroTenant] = {}
        self.app_minute: deque[float] = deque()
        self.bitrix24: dict[str, _LocalBucket] = {}

    @staticmethod
    def _now_ms() -> float:
        return time.monotonic() * 1000

    def xero_acquire(self, tenant_id: str, token: str, interactive: bool) -> Decision:
        lim = _XeroLimits.current()
        with self.lock:
            now, st = self._now_ms(), self.xero.setdefault(tenant_id, _LocalXeroTenant())

            def deny(wait: float, why: str) -> Decision:
                if interactive:
                    st.waiters[token] = now + _WAITER_TTL_S * 1000
                return False, max(0, int(wait + 0.999)), why

            if st.penalty_until > now:
                return deny(st.penalty_until - now, st.penalty_problem or "penalty")
            st.waiters = {t: exp for t, exp in st.waiters.items() if exp > now}
            if not interactive and st.waiters:
                return deny(0, "priority")
            bucket = int(now // lim.day_bucket_ms)
            st.day = {b: n for b, n in st.day.items() if b >= bucket - 24}
            if st.day_left and st.day_left[1] <= now:
                st.day_left = None
            used = sum(st.day.values())
            org_limit = _org_limit(lim, used, st.day_left[0] if st.day_left else None)
            keep_back = 0 if interactive else _reserve_for(lim, org_limit)
            if used >= lim.day - keep_back:
                return deny((min(st.day) + 25) * lim.day_bucket_ms - now, "day")
            if st.day_left and st.day_left[0] <= keep_back:
                return deny(st.day_left[1] - now, "day")
            while self.app_minute and self.app_minute[0] <= now - lim.minute_window_ms:
                self.app_minute.popleft()
            if len(self.app_minute) >= lim.app_minute:
                return deny(self.app_minute[-lim.app_minute] + lim.minute_window_ms - now + 1, "app_minute")
            st.minute = {t: at for t, at in st.minute.items() if at > now - lim.minute_window_ms}
            if len(st.minute) >= lim.minute:
                times = sorted(st.minute.values())
                return deny(times[len(times) - lim.minute] + lim.minute_window_ms - now + 1, "minute")
            st.in_flight = {t: exp for t, exp in st.in_flight.items() if exp > now}
            if len(st.in_flight) >= lim.concurrent:
                return deny(0, "concurrent")
            st.in_flight[token] = now + _lease_s() * 1000
            st.minute[token] = now
            self.app_minute.append(now)
            st.day[bucket] = st.day.get(bucket, 0) + 1
            if st.day_left:
                st.day_left = (st.day_left[0] - 1, st.day_left[1])
            st.waiters.pop(token, None)
            return True, 0, "ok"

    def xero_release(self, tenant_id: str, token: str) -> None:
        with self.lock:
            st = self.xero.setdefault(tenant_id, _LocalXeroTenant())
            st.in_flight.pop(token, None)
            if token in st.minute:  # re-stamped with the release time, as in _XERO_RELEASE
                st.minute[token] = self._now_ms()
            st.waiters.pop(token, None)

    def xero_forget_waiter(self, tenant_id: str, token: str) -> None:
        with self.lock:
            self.xero.setdefault(tenant_id, _LocalXeroTenant()).waiters.pop(token, None)

    def xero_observe(self, tenant_id: str, minute_left: int | None, day_left: int | None) -> None:
        lim = _XeroLimits.current()
        with self.lock:
            now, st = self._now_ms(), self.xero.setdefault(tenant_id, _LocalXeroTenant())
            if minute_left is not None:
                st.minute = {t: at for t, at in st.minute.items() if at > now - lim.minute_window_ms}
                for i in range(lim.minute - len(st.minute) - minute_left):
                    st.minute[f"observed:{now}:{i}"] = now
            if day_left is not None and (not st.day_left or st.day_left[1] <= now or day_left < st.day_left[0]):
                st.day_left = (day_left, now + lim.day_bucket_ms)

    def xero_room_wait(self, tenant_id: str, calls: int) -> float:
        lim = _XeroLimits.current()
        with self.lock:
            now, st = self._now_ms(), self.xero.get(tenant_id) or _LocalXeroTenant()
            stamps = [at for at in st.minute.values() if at > now - lim.minute_window_ms]
            penalty = max(0.0, st.penalty_until - now)
        return max(penalty, _room_wait_ms(stamps, now, calls, lim)) / 1000.0

    def xero_daily_usage(self, tenant_id: str) -> tuple[int, int | None]:
        lim = _XeroLimits.current()
        with self.lock:
            now, st = self._now_ms(), self.xero.get(tenant_id) or _LocalXeroTenant()
            bucket = int(now // lim.day_bucket_ms)
            used = sum(n for b, n in st.day.items() if b >= bucket - 24)
            left = st.day_left[0] if st.day_left and st.day_left[1] > now else None
        return used, left

    def xero_recent_usage(self, tenant_id: str) -> tuple[int, float]:
        lim = _XeroLimits.current()
        with self.lock:
            now, st = self._now_ms(), self.xero.get(tenant_id) or _LocalXeroTenant()
            bucket = int(now // lim.day_bucket_ms)
            calls = st.day.get(bucket, 0) + st.day.get(bucket - 1, 0)
        return calls, 1.0 + (now - bucket * lim.day_bucket_ms) / lim.day_bucket_ms

    def xero_penalize(self, tenant_id: str, ms: int, problem: str) -> None:
        with self.lock:
            st = self.xero.setdefault(tenant_id, _LocalXeroTenant())
            until = self._now_ms() + ms
            if until > st.penalty_until:
                st.penalty_until, st.penalty_problem = until, problem

    def bitrix24_acquire(self, member_id: str, token: str, interactive: bool) -> Decision:
        lim = _Bitrix24Limits.current()
        with self.lock:
            now, b = self._now_ms(), self.bitrix24.setdefault(member_id, _LocalBucket())

            def deny(wait: float, why: str) -> Decision:
                if interactive:
                    b.waiters[token] = now + _WAITER_TTL_S * 1000
                return False, max(0, int(wait + 0.999)), why

            if b.penalty_until > now:
                return deny(b.penalty_until - now, b.penalty_problem or "penalty")
            b.waiters = {t: exp for t, exp in b.waiters.items() if exp > now}
            if not interactive and b.waiters:
                return deny(0, "priority")
            level = max(0.0, b.level - (now - (b.ts if b.ts is not None else now)) * lim.drain_per_ms)
            if level + 1 > lim.burst:
                return deny((level + 1 - lim.burst) / lim.drain_per_ms, "burst")
            b.level, b.ts = level + 1, now
            b.waiters.pop(token, None)
            return True, 0, "ok"

    def bitrix24_forget_waiter(self, member_id: str, token: str) -> None:
        with self.lock:
            self.bitrix24.setdefault(member_id, _LocalBucket()).waiters.pop(token, None)

    def bitrix24_penalize(self, member_id: str, ms: int, problem: str) -> None:
        with self.lock:
            b = self.bitrix24.setdefault(member_id, _LocalBucket())
            until = self._now_ms() + ms
            if until > b.penalty_until:
                b.penalty_until, b.penalty_problem = until, problem
