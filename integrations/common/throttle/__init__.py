"""Client-side throttles shared by every worker, so callers wait their turn instead of meeting 429s.

Xero, per tenant (xero-api.md §9): at most XERO_CONCURRENT_LIMIT calls in flight, XERO_MINUTE_LIMIT
per rolling minute, a rolling daily budget of which XERO_DAILY_RESERVE_SHARE (at most
XERO_DAILY_RESERVE calls) of the organisation's limit is kept for interactive (user click) calls, and the app-wide XERO_APP_MINUTE_LIMIT across all tenants. Bitrix24, per portal: a
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

Layout: limits.py (settings and units), backend.py (the interface), redis_backend.py and
local_backend.py (its two implementations), this module (choosing one, waiting, the public calls).
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from redis.exceptions import RedisError

from connector import metrics
from connector.coordination import redis_client
from integrations.common.errors import RateLimitedError, RetryableError
from integrations.common.throttle.backend import ThrottleBackend
from integrations.common.throttle.limits import (
    _MAX_PENALTY_S,
    _POLL_S,
    _max_wait_default,
    _reserve_for,
    _scale,
    _XeroLimits,
)
from integrations.common.throttle.local_backend import _LocalBackend
from integrations.common.throttle.redis_backend import _RedisBackend

__all__ = [
    "bitrix24_penalize",
    "bitrix24_slot",
    "xero_observe",
    "xero_daily_reserve",
    "xero_daily_usage",
    "xero_recent_usage",
    "xero_room_wait",
    "xero_penalize",
    "xero_slot",
]

_local = _LocalBackend()
_redis_backends: dict[int, _RedisBackend] = {}


def _backend() -> ThrottleBackend:
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


def xero_room_wait(tenant_id: str, calls: int) -> float:
    """Real seconds until `calls` more calls fit in the tenant's rolling minute (and any penalty is
    over); 0 when they fit now. Read-only, a hint: it admits nothing, so a caller that then calls
    still goes through xero_slot. Lets a background pass that would spend most of its time waiting
    on the minute budget hand its work to a later task instead of holding a worker meanwhile."""
    return _backend().xero_room_wait(tenant_id, calls)


def xero_daily_usage(tenant_id: str) -> tuple[int, int | None]:
    """(calls counted in the rolling day, X-DayLimit-Remaining as Xero last said or None), read-only
    (for metrics). Without Redis: this process's own count only."""
    return _backend().xero_daily_usage(tenant_id)


def xero_daily_reserve(org_limit: int) -> int:
    """Calls of an organisation's daily limit `org_limit` that background work leaves for clicks —
    the figure xero_slot enforces, so budget pacing can aim at the same one."""
    return _reserve_for(_XeroLimits.current(), org_limit)


def xero_recent_usage(tenant_id: str) -> tuple[int, float]:
    """(calls counted in the current and the previous hourly bucket of the daily budget, how many
    hours those two buckets cover, between 1 and 2): the tenant's recent spending pace, read-only
    (sync/services/xero_budget.py projects the day's budget from it)."""
    return _backend().xero_recent_usage(tenant_id)


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
