"""Bitrix24's request-rate limit: a leaky bucket per portal (docs §3.1).

Every HTTP request to the REST API adds one to the portal's counter (a `batch` is one request);
the counter drains by 2 per second on the sandbox clock; a request that would take it past 50
is refused with 503 QUERY_LIMIT_EXCEEDED and does not count, so a client that backs off gets
through again as soon as the bucket has drained a little.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.bitrix24.world import B24Error, Bitrix24World, on_reset

DRAIN_PER_SECOND = 2.0
BURST = 50


@dataclass
class Bucket:
    level: float = 0.0
    at: float = 0.0


@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["rate_buckets"] = {}


def admit(world: Bitrix24World, portal: str) -> None:
    """Count one request for the portal, or raise 503 QUERY_LIMIT_EXCEEDED when limits are on."""
    sandbox = world.sandbox
    if not sandbox.limits_enabled:
        return
    now = sandbox.clock.now()
    with sandbox.lock:
        buckets = world.data.setdefault("rate_buckets", {})
        bucket = buckets.get(portal)
        if bucket is None:
            bucket = buckets[portal] = Bucket(0.0, now)
        bucket.level = max(0.0, bucket.level - (now - bucket.at) * DRAIN_PER_SECOND)
        bucket.at = now
        if bucket.level + 1 > BURST:
            raise B24Error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        bucket.level += 1
