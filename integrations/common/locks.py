"""A named mutual-exclusion lock across all workers (Redis), or within one process (embedded mode).

Redis: redis-py's Lock — `SET name token NX PX ttl` to take it, a compare-and-delete script to give
it back, so a holder whose lease ran out never releases its successor's lock (style §B.3). The TTL
must outlast the work done under the lock; it exists only so that a killed worker cannot hold the
lock forever.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import LockError

from connector.coordination import redis_client


class LockTimeout(Exception):
    """Somebody else held the lock for longer than we were willing to wait."""


_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@contextmanager
def redis_lock(name: str, *, ttl_s: float, wait_s: float) -> Iterator[object]:
    """Hold the lock `name` for the block; wait up to `wait_s` for it, else raise LockTimeout.
    Yields redis-py's Lock (None in embedded mode), whose TTL a heartbeat may renew (reacquire)."""
    client = redis_client()
    if client is None:
        with _local_guard:
            lock = _local_locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=wait_s):
            raise LockTimeout(name)
        try:
            yield None
        finally:
            lock.release()
        return

    # thread_local=False: the token is kept on the Lock object, which only this call uses.
    lock = client.lock(name, timeout=ttl_s, blocking_timeout=wait_s, sleep=0.02, thread_local=False)
    if not lock.acquire():
        raise LockTimeout(name)
    try:
        yield lock
    finally:
        # If the lease ran out (and maybe someone took the lock), it is not ours to release any more.
        with contextlib.suppress(LockError):
            lock.release()
