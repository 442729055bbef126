"""Client-side throttles shared by every worker, so callers wait their turn instead of meeting 429s.

Xero, per tenant (xero-api.md §9): at most XERO_CONCURRENT_LIMIT calls in flight, XERO_MINUTE_LIMIT
per rolling minute, a rolling daily budget of which XERO_DAILY_RESERVE is kept for interactive (user
click) calls, and the app-wide XERO_APP_MINUTE_LIMIT across all tenants. Bitrix24, per portal: a
leaky bucket of BITRIX24_BURST draining at BITRIX24_DRAIN_PER_S (bitrix24-api.md, limits).

    with xero_slot(tenant_id):            # waits, or raises RateLimitedError(retry_after=...)
        data, status, headers = api.get_invoices(...)
    xero_observe(tenant_id, headers)      # adjusts to what Xero says is left
    ...
    except RateLimitException as exc:
        xero_penalize(tenant_id, retry_after)   # nobody calls this tenant until then

State lives in Redis and every decision is one atomic Lua script that reads Redis' own clock (TIME),
so all processes on all machines agree. Without Redis (REDIS_URL unset, the embedded mode) the same
interface runs on process-local state: correct for one process only, which is all that mode supports.

Units: every window is divided by RATE_LIMIT_TIME_SCALE so tests and benches can match the sandbox's
time_scale. Every `retry_after`, in (xero_penalize, bitrix24_penalize: what the API's Retry-After
says) and out (RateLimitedError.retry_after, ready to be a Celery countdown), is in real seconds:
a Retry-After header always is, the sandbox's included. Lease and max wait are real seconds too
(they bound real HTTP calls and real patience), never scaled.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from redis.exceptions import RedisError

from connector import metrics
from connector.coordination import redis_client
from integrations.common.errors import RateLimitedError, RetryableError

__all__ = [
    "bitrix24_penalize",
    "bitrix24_slot",
    "xero_observe",
    "xero_daily_usage",
    "xero_penalize",
    "xero_slot",
]

# While an interactive caller waits, background callers of the same tenant/portal stand back.
_WAITER_TTL_S = 2.0
_POLL_S = 0.02
# Clamp what an API may ask of us: a hostile or buggy Retry-After must not park a tenant forever.
_MAX_PENALTY_S = 24 * 3600.0


def _setting(name: str, default):
    return getattr(settings, name, default)


def _scale() -> float:
    return float(_setting("RATE_LIMIT_TIME_SCALE", 1.0)) or 1.0


def _lease_s() -> float:
    # A slot of a worker killed mid-call frees itself after this long; it must exceed the longest
    # call we allow (the client's read timeout of 60 s plus connect and transfer).
    return float(_setting("XERO_SLOT_LEASE_S", 120.0))


def _max_wait_default() -> float:
    return float(_setting("RATE_LIMIT_MAX_WAIT_S", 30.0))


@dataclass(frozen=True)
class _XeroLimits:
    concurrent: int
    minute: int
    day: int
    reserve: int
    app_minute: int
    minute_window_ms: int
    day_bucket_ms: int

    @classmethod
    def current(cls) -> _XeroLimits:
        scale = _scale()
        return cls(
            concurrent=int(_setting("XERO_CONCURRENT_LIMIT", 5)),
            minute=int(_setting("XERO_MINUTE_LIMIT", 60)),
            day=int(_setting("XERO_DAILY_LIMIT", 5000)),
            reserve=int(_setting("XERO_DAILY_RESERVE", 500)),
            app_minute=int(_setting("XERO_APP_MINUTE_LIMIT", 10000)),
            minute_window_ms=max(1, round(60_000 / scale)),
            day_bucket_ms=max(1, round(3_600_000 / scale)),
        )


@dataclass(frozen=True)
class _Bitrix24Limits:
    burst: float
    drain_per_ms: float

    @classmethod
    def current(cls) -> _Bitrix24Limits:
        return cls(
            burst=float(_setting("BITRIX24_BURST", 50)),
            drain_per_ms=float(_setting("BITRIX24_DRAIN_PER_S", 2.0)) * _scale() / 1000.0,
        )


# A decision: (granted, wait in real ms — 0 when unknown, which limit said no).
Decision = tuple[bool, int, str]

# ------------------------------------------------------------------------------------------------
# Redis implementation
# ------------------------------------------------------------------------------------------------

# KEYS: conc, minute, day, dayleft, penalty, waiters, app_minute
# ARGV: token, interactive, conc_limit, minute_limit, window_ms, day_limit, reserve, bucket_ms,
#       lease_ms, app_limit, waiter_ttl_ms
_XERO_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = ARGV[1]
local interactive = ARGV[2] == '1'
local conc_limit, minute_limit, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local day_limit, reserve, bucket_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local lease, app_limit, waiter_ttl = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])

local function deny(wait, why)
  if interactive then
    redis.call('ZADD', KEYS[6], now + waiter_ttl, token)
    redis.call('PEXPIRE', KEYS[6], waiter_ttl * 2)
  end
  return {0, math.max(0, math.ceil(wait)), why}
end

local penalty = redis.call('PTTL', KEYS[5])
if penalty > 0 then return deny(penalty, redis.call('GET', KEYS[5]) or 'penalty') end

redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
if not interactive and redis.call('ZCARD', KEYS[6]) > 0 then return deny(0, 'priority') end

-- Daily budget in hourly buckets; 25 of them cover any rolling 24 h (an over-count, never under).
local keep_back = reserve
if interactive then keep_back = 0 end
local bucket = math.floor(now / bucket_ms)
local day = redis.call('HGETALL', KEYS[3])
local used, oldest = 0, bucket
for i = 1, #day, 2 do
  local b = tonumber(day[i])
  if b < bucket - 24 then
    redis.call('HDEL', KEYS[3], day[i])
  else
    used = used + tonumber(day[i + 1])
    if b < oldest then oldest = b end
  end
end
if used >= day_limit - keep_back then return deny((oldest + 25) * bucket_ms - now, 'day') end
local left = tonumber(redis.call('GET', KEYS[4]) or '-1')
if left >= 0 and left <= keep_back then return deny(redis.call('PTTL', KEYS[4]), 'day') end

redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - window)
local app_n = redis.call('ZCARD', KEYS[7])
if app_n >= app_limit then
  local e = redis.call('ZRANGE', KEYS[7], app_n - app_limit, app_n - app_limit, 'WITHSCORES')
  return deny(tonumber(e[2]) + window - now + 1, 'app_minute')
end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[2])
if n >= minute_limit then
  local e = redis.call('ZRANGE', KEYS[2], n - minute_limit, n - minute_limit, 'WITHSCORES')
  return deny(tonumber(e[2]) + window - now + 1, 'minute')
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= conc_limit then return deny(0, 'concurrent') end

redis.call('ZADD', KEYS[1], now + lease, token)
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('ZADD', KEYS[2], now, token)
redis.call('PEXPIRE', KEYS[2], window * 2 + lease)
redis.call('ZADD', KEYS[7], now, token)
redis.call('PEXPIRE', KEYS[7], window * 2 + lease)
redis.call('HINCRBY', KEYS[3], tostring(bucket), 1)
redis.call('PEXPIRE', KEYS[3], bucket_ms * 26)
if left >= 0 then redis.call('DECR', KEYS[4]) end
redis.call('ZREM', KEYS[6], token)
return {1, 0, 'ok'}
"""

# The call was counted in the minute windows when it was admitted, before its request left; Xero
# counted it on arrival, somewhere between admission and now. Re-stamping the entry with the
# release time makes our window end no earlier than Xero's, so the 61st call can never reach Xero
# inside the same rolling minute as the 1st, whatever the network delays.
# KEYS: conc, minute, app_minute, waiters   ARGV: token
_XERO_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', now, ARGV[1])
redis.call('ZADD', KEYS[3], 'XX', now, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
"""

# Xero's count is the truth when ours drifted (a flushed Redis, calls made by another deployment
# with the same app): pad our window with placeholder entries until it agrees, and remember the
# day's remainder for an hour. Never loosens what we already hold.
# KEYS: minute, dayleft   ARGV: min_remaining (-1 = absent), day_remaining (-1), minute_limit,
#                               window_ms, bucket_ms
_XERO_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local min_left, day_left = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, window, bucket_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if min_left >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local ours = limit - redis.call('ZCARD', KEYS[1])
  for i = 1, ours - min_left do
    redis.call('ZADD', KEYS[1], now, 'observed:' .. now .. ':' .. i)
  end
  redis.call('PEXPIRE', KEYS[1], window * 2)
end
if day_left >= 0 then
  local known = tonumber(redis.call('GET', KEYS[2]) or '-1')
  if known < 0 or day_left < known then
    redis.call('SET', KEYS[2], day_left, 'PX', bucket_ms)
  end
end
return 1
"""

# KEYS: penalty   ARGV: ms, problem. Extends, never shortens, a block already in place.
_PENALIZE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
end
return 1
"""

# Leaky bucket: each call pours 1 in; it drains continuously. KEYS: bucket, penalty, waiters
# ARGV: burst, drain_per_ms, interactive, token, waiter_ttl_ms
_BITRIX24_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst, drain = tonumber(ARGV[1]), tonumber(ARGV[2])
local interactive = ARGV[3] == '1'
local token, waiter_ttl = ARGV[4], tonumber(ARGV[5])
local function deny(wait, why)
  if interactive then
    redis.call('ZADD', KEYS[3], now + waiter_ttl, token)
    redis.call('PEXPIRE', KEYS[3], waiter_ttl * 2)
  end
  return {0, math.max(0, math.ceil(wait)), why}
end
local penalty = redis.call('PTTL', KEYS[2])
if penalty > 0 then return deny(penalty, redis.call('GET', KEYS[2]) or 'penalty') end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if not interactive and redis.call('ZCARD', KEYS[3]) > 0 then return deny(0, 'priority') end
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0')
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts') or tostring(now))
level = math.max(0, level - (now - ts) * drain)
if level + 1 > burst then return deny((level + 1 - burst) / drain, 'burst') end
redis.call('HSET', KEYS[1], 'level', tostring(level + 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / drain) + 1000)
redis.call('ZREM', KEYS[3], token)
return {1, 0, 'ok'}
"""


class _RedisBackend:
    def __init__(self, client) -> None:
        self.client = client
        self.xero_acquire_script = client.register_script(_XERO_ACQUIRE)
        self.xero_release_script = client.register_script(_XERO_RELEASE)
        self.xero_observe_script = client.register_script(_XERO_OBSERVE)
        self.penalize_script = client.register_script(_PENALIZE)
        self.bitrix24_acquire_script = client.register_script(_BITRIX24_ACQUIRE)

    @staticmethod
    def _xero_keys(tenant_id: str) -> dict[str, str]:
        base = f"throttle:xero:{tenant_id}"
        return {
            "conc": f"{base}:concurrent",
            "minute": f"{base}:minute",
            "day": f"{base}:day",
            "dayleft": f"{base}:day-left",
            "penalty": f"{base}:penalty",
            "waiters": f"{base}:interactive-waiters",
            "app": "throttle:xero:app-minute",
        }

    def xero_acquire(self, tenant_id: str, token: str, interactive: bool) -> Decision:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        granted, wait_ms, why = self.xero_acquire_script(
            keys=[k["conc"], k["minute"], k["day"], k["dayleft"], k["penalty"], k["waiters"], k["app"]],
            args=[
                token,
                int(interactive),
                lim.concurrent,
                lim.minute,
                lim.minute_window_ms,
                lim.day,
                lim.reserve,
                lim.day_bucket_ms,
                int(_lease_s() * 1000),
                lim.app_minute,
                int(_WAITER_TTL_S * 1000),
            ],
        )
        return bool(granted), int(wait_ms), _text(why)

    def xero_release(self, tenant_id: str, token: str) -> None:
        k = self._xero_keys(tenant_id)
        self.xero_release_script(keys=[k["conc"], k["minute"], k["app"], k["waiters"]], args=[token])

    def xero_forget_waiter(self, tenant_id: str, token: str) -> None:
        self.client.zrem(self._xero_keys(tenant_id)["waiters"], token)

    def xero_observe(self, tenant_id: str, minute_left: int | None, day_left: int | None) -> None:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        self.xero_observe_script(
            keys=[k["minute"], k["dayleft"]],
            args=[_or_minus1(minute_left), _or_minus1(day_left), lim.minute, lim.minute_window_ms, lim.day_bucket_ms],
        )

    def xero_penalize(self, tenant_id: str, ms: int, problem: str) -> None:
        self.penalize_script(keys=[self._xero_keys(tenant_id)["penalty"]], args=[ms, problem])

    def xero_daily_usage(self, tenant_id: str) -> tuple[int, int | None]:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        seconds, micros = self.client.time()  # Redis' clock, as the scripts use
        bucket = (int(seconds) * 1000 + int(micros) // 1000) // lim.day_bucket_ms
        used = sum(int(n) for b, n in self.client.hgetall(k["day"]).items() if int(b) >= bucket - 24)
        left = self.client.get(k["dayleft"])
        return used, int(left) if left is not None else None

    @staticmethod
    def _bitrix24_keys(member_id: str) -> dict[str, str]:
        base = f"throttle:bitrix24:{member_id}"
        return {"bucket": f"{base}:bucket", "penalty": f"{base}:penalty", "waiters": f"{base}:interactive-waiters"}

    def bitrix24_acquire(self, member_id: str, token: str, interactive: bool) -> Decision:
        k, lim = self._bitrix24_keys(member_id), _Bitrix24Limits.current()
        granted, wait_ms, why = self.bitrix24_acquire_script(
            keys=[k["bucket"], k["penalty"], k["waiters"]],
            args=[lim.burst, repr(lim.drain_per_ms), int(interactive), token, int(_WAITER_TTL_S * 1000)],
        )
        return bool(granted), int(wait_ms), _text(why)

    def bitrix24_forget_waiter(self, member_id: str, token: str) -> None:
        self.client.zrem(self._bitrix24_keys(member_id)["waiters"], token)

    def bitrix24_penalize(self, member_id: str, ms: int, problem: str) -> None:
        self.penalize_script(keys=[self._bitrix24_keys(member_id)["penalty"]], args=[ms, problem])


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _or_minus1(value: int | None) -> int:
    return -1 if value is None else int(value)


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
            keep_back = 0 if interactive else lim.reserve
            bucket = int(now // lim.day_bucket_ms)
            st.day = {b: n for b, n in st.day.items() if b >= bucket - 24}
            if sum(st.day.values()) >= lim.day - keep_back:
                return deny((min(st.day) + 25) * lim.day_bucket_ms - now, "day")
            if st.day_left and st.day_left[1] <= now:
                st.day_left = None
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

    def xero_daily_usage(self, tenant_id: str) -> tuple[int, int | None]:
        lim = _XeroLimits.current()
        with self.lock:
            now, st = self._now_ms(), self.xero.get(tenant_id) or _LocalXeroTenant()
            bucket = int(now // lim.day_bucket_ms)
            used = sum(n for b, n in st.day.items() if b >= bucket - 24)
            left = st.day_left[0] if st.day_left and st.day_left[1] > now else None
        return used, left

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


_local = _LocalBackend()
_redis_backends: dict[int, _RedisBackend] = {}


def _backend() -> _RedisBackend | _LocalBackend:
    client = redis_client()
    if client is None:
        return _local
    backend = _redis_backends.get(id(client))
    if backend is None:
        backend = _redis_backends[id(client)] = _RedisBackend(client)
    return backend


# ------------------------------------------------------------------------------------------------
# Waiting
# ------------------------------------------------------------------------------------------------

# Limits that a short sleep cannot fix: give the caller a countdown at once.
_HOPELESS = {"day"}


def _wait_turn(acquire, forget_waiter, *, system: str, scope: str, max_wait: float | None) -> None:
    """Call `acquire` until it grants; sleep as long as it says (or poll when it cannot know).

    Raises RateLimitedError when the wait would pass `max_wait` (real seconds) or the day is spent,
    so a worker hands the job back with a countdown instead of sleeping on it.
    """
    max_wait = _max_wait_default() if max_wait is None else max_wait
    started = time.monotonic()
    deadline = started + max_wait
    try:
        while True:
            try:
                granted, wait_ms, why = acquire()
            except RedisError as exc:
                # Without the shared counters no worker may call: going ahead would storm the API.
                raise RetryableError(
                    f"The throttle for {scope} is unavailable (Redis): {exc}",
                    system=system,
                    code="throttle_unavailable",
                ) from exc
            if granted:
                metrics.observe(metrics.THROTTLE_WAIT, time.monotonic() - started, system)
                metrics.count(metrics.API_CALLS, system)
                return
            now, wait = time.monotonic(), wait_ms / 1000.0
            if why in _HOPELESS or now + wait > deadline:
                metrics.count(metrics.THROTTLE_REFUSED, system, why)
                raise RateLimitedError(
                    f"{system} {why} limit for {scope}: the next call may go in {max(wait, _POLL_S):.1f}s",
                    system=system,
                    code=why,
                    retry_after=max(wait, 1.0 / _scale(), _POLL_S),
                )
            # Jitter spreads the waiters of several processes so they do not stampede together.
            time.sleep(min(max(wait, _POLL_S), max(deadline - now, 0.0)) + random.uniform(0, _POLL_S))
    except BaseException:
        with contextlib.suppress(RedisError):  # the waiter entry expires on its own anyway
            forget_waiter()
        raise


# ------------------------------------------------------------------------------------------------
# Public interface
# ------------------------------------------------------------------------------------------------


@contextmanager
def xero_slot(tenant_id: str, *, interactive: bool = False, max_wait: float | None = None) -> Iterator[None]:
    """Hold one of the tenant's Xero call slots for the duration of one HTTP call.

    Waits (up to `max_wait` real seconds, default RATE_LIMIT_MAX_WAIT_S) for the concurrency,
    minute, daily and app limits; raises RateLimitedError(retry_after=real seconds) when that is not
    enough. Interactive calls go before background ones and may use the daily reserve.
    """
    backend, token = _backend(), uuid.uuid4().hex
    _wait_turn(
        lambda: backend.xero_acquire(tenant_id, token, interactive),
        lambda: backend.xero_forget_waiter(tenant_id, token),
        system="xero",
        scope=f"tenant {tenant_id}",
        max_wait=max_wait,
    )
    try:
        yield
    finally:
        backend.xero_release(tenant_id, token)


def xero_observe(tenant_id: str, headers: Mapping[str, str] | None) -> None:
    """Adjust the tenant's counters to X-MinLimit-Remaining / X-DayLimit-Remaining of a response."""
    if not headers:
        return
    minute_left = _int_header(headers, "X-MinLimit-Remaining")
    day_left = _int_header(headers, "X-DayLimit-Remaining")
    if minute_left is None and day_left is None:
        return
    _backend().xero_observe(tenant_id, minute_left, day_left)


def xero_penalize(tenant_id: str, retry_after: float, problem: str = "penalty") -> None:
    """Block every call to the tenant for `retry_after` real seconds (Xero's Retry-After after a 429)."""
    metrics.count(metrics.API_RATE_LIMITED, "xero")
    _backend().xero_penalize(tenant_id, _penalty_ms(retry_after), problem or "penalty")


@contextmanager
def bitrix24_slot(member_id: str, *, interactive: bool = False, max_wait: float | None = None) -> Iterator[None]:
    """Take one drop of the portal's leaky bucket before one HTTP call (a `batch` is one call).

    A context manager for symmetry with xero_slot; nothing is held after the call starts.
    Raises RateLimitedError(retry_after=real seconds) when the wait would pass `max_wait`.
    """
    backend, token = _backend(), uuid.uuid4().hex
    _wait_turn(
        lambda: backend.bitrix24_acquire(member_id, token, interactive),
        lambda: backend.bitrix24_forget_waiter(member_id, token),
        system="bitrix24",
        scope=f"portal {member_id}",
        max_wait=max_wait,
    )
    yield


def bitrix24_penalize(member_id: str, retry_after: float, problem: str = "penalty") -> None:
    """Block every call to the portal for `retry_after` real seconds (after QUERY_LIMIT_EXCEEDED)."""
    metrics.count(metrics.API_RATE_LIMITED, "bitrix24")
    _backend().bitrix24_penalize(member_id, _penalty_ms(retry_after), problem or "penalty")


def xero_daily_usage(tenant_id: str) -> tuple[int, int | None]:
    """(calls counted in the rolling day, X-DayLimit-Remaining as Xero last said or None), read-only
    (for metrics). Without Redis: this process's own count only."""
    return _backend().xero_daily_usage(tenant_id)


def _penalty_ms(retry_after: float) -> int:
    seconds = min(max(float(retry_after or 0), 0.0), _MAX_PENALTY_S)
    return max(1, int(seconds * 1000))


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:  # urllib3's HTTPHeaderDict is case-insensitive; a plain dict is not.
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None
