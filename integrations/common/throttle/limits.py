"""The throttles' settings, read at call time (tests and benches change them), and their units."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

# While an interactive caller waits, background callers of the same tenant/portal stand back.
_WAITER_TTL_S = 2.0
_POLL_S = 0.02
# Clamp what an API may ask of us: a hostile or buggy Retry-After must not park a tenant forever.
_MAX_PENALTY_S = 24 * 3600.0


def _room_wait_ms(stamps: list[float], now: float, calls: int, lim: _XeroLimits) -> float:
    """Real ms until `calls` more calls fit in a rolling minute holding calls at `stamps` (ms)."""
    calls = max(1, min(int(calls), lim.minute))
    over = len(stamps) + calls - lim.minute
    if over <= 0:
        return 0.0
    return max(0.0, sorted(stamps)[over - 1] + lim.minute_window_ms - now + 1)


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
    reserve: int  # the most kept back for clicks, whatever the organisation's limit
    reserve_share: float  # the share of the organisation's learnt limit kept back for clicks
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
            reserve_share=float(_setting("XERO_DAILY_RESERVE_SHARE", 0.10)),
            app_minute=int(_setting("XERO_APP_MINUTE_LIMIT", 10000)),
            minute_window_ms=max(1, round(60_000 / scale)),
            day_bucket_ms=max(1, round(3_600_000 / scale)),
        )


def _org_limit(lim: _XeroLimits, used: int, day_left: int | None) -> int:
    """The organisation's daily limit: XERO_DAILY_LIMIT, or less when Xero's remaining count says so
    (a Starter organisation answers 990 after our 10 calls: its day holds 1,000). Mirrored in the Redis
    script; sync/services/xero_budget.py learns it the same way."""
    return lim.day if day_left is None else min(lim.day, used + day_left)


def _reserve_for(lim: _XeroLimits, org_limit: int) -> int:
    """Calls kept back for clicks: XERO_DAILY_RESERVE_SHARE of the organisation's limit, at most
    XERO_DAILY_RESERVE. An absolute reserve sized for the 5,000 tier would stop a Starter
    organisation's (1,000) background work half-way. Mirrored in the Redis script."""
    return max(0, min(lim.reserve, int(org_limit * lim.reserve_share + 0.5)))


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
