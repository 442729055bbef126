"""Access to Redis, which carries the broker, the locks and the shared throttles.

One connection pool per process. Returns None when REDIS_URL is not set (the embedded single-process
mode); callers then fall back to process-local coordination.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30)


def redis_client() -> redis.Redis | None:
    url = settings.REDIS_URL
    return _client_for(url) if url else None
