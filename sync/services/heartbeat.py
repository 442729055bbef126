"""A pass's heartbeat: how the sweeper tells a live worker from a killed one within seconds.

A pass that claims jobs names itself (`holder`, stored on its job rows) and, while it runs, a
daemon thread refreshes the Redis key `sync:alive:<holder>` (TTL ALIVE_TTL_S) and the TTL of the
per-invoice Redis locks it holds, every BEAT_S. A worker killed with -9 stops beating: within
ALIVE_TTL_S its key and its locks expire, and the sweeper (sync.services.jobs.jobs_requeue_stuck)
releases its jobs at once instead of waiting for their lease. Locks can therefore have a short TTL
and still never expire under a live holder, however long a pass waits on a throttle.

The thread touches Redis only (never the database). Without Redis (embedded mode) there is no
heartbeat and no holder: leases alone decide, as before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid

from redis.exceptions import LockError, RedisError

from connector.coordination import redis_client

logger = logging.getLogger(__name__)

ALIVE_TTL_S = 15.0
BEAT_S = 4.0
# The TTL of a per-invoice lock held under a heartbeat: renewed every BEAT_S, so only a dead holder
# lets it run out.
LOCK_TTL_S = 20.0


def _key(holder: str) -> str:
    return f"sync:alive:{holder}"


class Heartbeat:
    def __init__(self) -> None:
        self.client = redis_client()
        self.holder = uuid.uuid4().hex if self.client is not None else ""
        self.locks: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def __enter__(self) -> Heartbeat:
        if self.client is not None:
            self._beat()
            self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.holder[:8]}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=BEAT_S + 1)
        if self.client is not None:
            with contextlib.suppress(RedisError):
                self.client.delete(_key(self.holder))

    def keep(self, lock) -> None:
        """Renew this redis-py Lock with every beat while the pass lives."""
        if lock is not None:
            with self._guard:
                self.locks.append(lock)

    def _run(self) -> None:
        while not self._stop.wait(BEAT_S):
            self._beat()

    def _beat(self) -> None:
        try:
            self.client.set(_key(self.holder), "1", px=int(ALIVE_TTL_S * 1000))
        except RedisError as exc:
            logger.warning("heartbeat %s: %s", self.holder[:8], exc)
            return
        with self._guard:
            locks = list(self.locks)
        for lock in locks:
            try:
                lock.reacquire()
            except (LockError, RedisError) as exc:
                logger.warning("heartbeat %s: lock %s not renewed: %s", self.holder[:8], lock.name, exc)


def holders_alive(holders: set[str]) -> set[str] | None:
    """Which of these holders still beat; None when Redis cannot tell (then nobody is presumed dead)."""
    client = redis_client()
    if client is None or not holders:
        return set(holders) if holders else set()
    ordered = sorted(holders)
    try:
        values = client.mget([_key(h) for h in ordered])
    except RedisError:
        return None
    return {holder for holder, value in zip(ordered, values, strict=True) if value is not None}
