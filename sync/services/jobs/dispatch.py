"""Sending the processor tasks: the broker connection, coalesced dispatches per (portal, kind).

PostgreSQL is the source of truth, Celery the fast path (style B.2): a job row is durable before
any message is sent, a lost message only delays it until the sweeper (sync.services.jobs.sweep)
notices, and a processor task claims *all* due jobs of its (portal, kind), so one message can serve
many jobs. That is what makes dispatch coalescing safe: we may skip sending a message, never a job.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from connector.coordination import redis_client
from sync.models import SyncJob

logger = logging.getLogger(__name__)

# The processor task of each kind, looked up by name so this module never imports the engines.
PROCESSOR_TASKS: dict[str, str] = {
    SyncJob.Kind.PUSH_INVOICE: "sync.tasks.push.push_invoices_task",
    SyncJob.Kind.PULL_STATUS: "sync.tasks.pull.pull_statuses_task",
    # The "Update from Xero" button's job; pull_recent_task(portal_id) claims it (trigger from the job).
    SyncJob.Kind.SWEEP_XERO: "sync.tasks.pull.pull_recent_task",
    # Imports from Xero run every due import job of the portal (sync.tasks.imports).
    SyncJob.Kind.IMPORT_CONTACTS: "sync.tasks.imports.imports_pending_task",
    SyncJob.Kind.IMPORT_ITEMS: "sync.tasks.imports.imports_pending_task",
}

# Coalescing window: at most one immediate and one trailing dispatch per (portal, kind) per window.
DISPATCH_WINDOW_MS = 200
# Delayed dispatches (retries) are bucketed so fifty jobs failing together schedule one message.
RETRY_DISPATCH_BUCKET_S = 5


# Publishing must not hang a webhook when the broker is down: one connection attempt, short socket
# timeouts, no kombu retries. https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
_PUBLISH_TIMEOUT_S = 1.0
_PUBLISH_TRANSPORT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": _PUBLISH_TIMEOUT_S,
    "socket_timeout": _PUBLISH_TIMEOUT_S,
    "max_retries": 0,
    "retry_on_timeout": False,
}


# --- sending tasks --------------------------------------------------------------------------------


class _PublishConnections(threading.local):
    """One broker connection per thread (and process: a forked child starts with none), reused
    across sends. Opening a connection and declaring the queue cost more than the rest of an
    event request together (measured: ~60% of a Bitrix24 event's time under gunicorn); kombu
    caches the declaration per connection, so a kept connection declares once. Any error drops
    it: the next send opens a fresh one, with the same short timeouts."""

    def __init__(self) -> None:
        self.pid = 0
        self.by_url: dict[str, Any] = {}

    def get(self, app) -> Any:
        if self.pid != os.getpid():
            self.pid, self.by_url = os.getpid(), {}
        url = app.conf.broker_url or ""
        conn = self.by_url.get(url)
        if conn is None:
            conn = app.connection_for_write(
                connect_timeout=_PUBLISH_TIMEOUT_S, transport_options=_PUBLISH_TRANSPORT_OPTIONS
            )
            self.by_url[url] = conn
        return conn

    def has(self, app) -> bool:
        return self.pid == os.getpid() and (app.conf.broker_url or "") in self.by_url

    def drop(self, app) -> None:
        conn = self.by_url.pop(app.conf.broker_url or "", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.release()


_PUBLISH = _PublishConnections()


def publish_connection_open() -> None:
    """Open this thread's broker connection now, for a web worker's threads before their first
    request (gunicorn.conf.py post_worker_init): the first send of a thread otherwise connects while
    deliveries queue behind it. Never raises: a broker not there yet is the first send's to meet."""
    from celery_app import app

    try:
        _PUBLISH.get(app).ensure_connection(max_retries=1)
    except Exception as exc:  # any kombu/redis/socket error: the first send retries as usual
        logger.info("broker connection not opened ahead of requests: %s: %s", type(exc).__name__, exc)
        _PUBLISH.drop(app)


def task_send(name: str, args: Sequence[Any], *, countdown: float | None = None) -> bool:
    """Send a task by name; False (logged) when the broker cannot take it. Never raises, never
    blocks for more than about a second: every caller has a durable row the sweeper re-sends."""
    from celery_app import app  # the Celery app imports Django settings; keep it lazy

    started = time.monotonic()
    reused = _PUBLISH.has(app)
    try:
        try:
            app.send_task(name, args=list(args), countdown=countdown, connection=_PUBLISH.get(app), retry=False)
        except Exception:
            if not reused:
                raise
            # A kept connection may have gone stale (the broker restarted): one fresh attempt.
            _PUBLISH.drop(app)
            app.send_task(name, args=list(args), countdown=countdown, connection=_PUBLISH.get(app), retry=False)
        return True
    except Exception as exc:  # broker down or unreachable: any kombu/redis/socket error
        _PUBLISH.drop(app)
        logger.warning(
            "could not send %s%s to the broker after %.2fs (%s: %s); the sweeper will re-send it",
            name,
            tuple(args),
            time.monotonic() - started,
            type(exc).__name__,
            exc,
        )
        return False


def _marker(key: str, ttl_ms: int) -> bool:
    """SET NX PX: True when we own the marker (or Redis is absent/down: then dispatch, never skip)."""
    client = redis_client()
    if client is None:
        return True
    try:
        return bool(client.set(key, "1", nx=True, px=ttl_ms))
    except redis.RedisError:
        return True


def job_dispatch(
    *, portal_id: int, kind: str, countdown: float | None = None, bucket_s: float = RETRY_DISPATCH_BUCKET_S
) -> bool:
    """Ask for the (portal, kind) processor to run; True when a message was sent.

    Immediate dispatches are coalesced per DISPATCH_WINDOW_MS: the first sends at once (leading
    marker); later ones within the window leave one trailing dispatch, sent with a countdown of one
    window, which runs after every skipped caller has committed (callers dispatch after commit).
    Delayed dispatches (countdown) are coalesced per `bucket_s` instead: RETRY_DISPATCH_BUCKET_S for
    backoffs, whose moment is approximate anyway; a caller that knows the moment its work can go (the
    Xero minute's room) asks for a finer bucket, since every rounded-up second is idle budget.
    """
    task = PROCESSOR_TASKS.get(kind)
    if task is None:
        logger.error("no processor task for job kind %s", kind)
        return False
    base = f"sync:dispatch:{portal_id}:{kind}"
    if countdown:
        due = time.time() + countdown
        bucket = math.ceil(due / bucket_s) * bucket_s
        if not _marker(f"{base}:at:{bucket}", int((bucket - time.time() + 5) * 1000)):
            return False
        return task_send(task, [portal_id], countdown=max(0.0, bucket - time.time()))
    return task_send_coalesced(base, task, [portal_id])


def task_send_coalesced(key: str, name: str, args: Sequence[Any]) -> bool:
    """Send a processor task at most once at once and once more at the end of each
    DISPATCH_WINDOW_MS per `key`: the first call sends (leading marker); later ones within the
    window leave one trailing send, with a countdown of one window, which runs after every skipped
    caller has committed (callers send after commit). The processor must take *all* due work of
    its key, so a skipped send never skips work.

    One Redis round trip decides (a script), and its answer is remembered in the process: the
    trailing marker holds the time its send is due, so until shortly before then every later call
    of this process knows a send is coming and asks Redis nothing. A webhook burst of hundreds a
    second then costs a couple of round trips per window per process instead of two per request
    (profiled: the markers were a quarter of an inbound event's CPU)."""
    now = time.time()
    if _trailing_due.get(key, 0.0) - _TRAILING_MARGIN_S > now:
        return False
    window_s = DISPATCH_WINDOW_MS / 1000
    decided = _coalesce(key, now + window_s)
    if decided is None or decided == "leading":
        return task_send(name, args)
    if decided == "trailing":
        sent = task_send(name, args, countdown=window_s)
        if sent:
            _trailing_due[key] = now + window_s
        return sent
    _trailing_due[key] = decided  # another caller's trailing send, due then
    return False


# Per process: when the trailing send of a key is due (epoch seconds), as far as this process knows.
_trailing_due: dict[str, float] = {}
# A call this close to the due time asks Redis again: the worker's clock decides when a countdown
# ends, so allow for a little skew between hosts.
_TRAILING_MARGIN_S = 0.02
_COALESCE_LUA = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 'leading' end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[1]) then return 'trailing' end
return redis.call('GET', KEYS[2]) or '0'
"""


def _coalesce(key: str, due: float) -> str | float | None:
    """'leading' (send now), 'trailing' (send with a countdown of one window), or the due time of
    the trailing send someone else made; None when Redis is absent or down (send, never skip)."""
    client = redis_client()
    if client is None:
        return None
    try:
        answer = client.eval(_COALESCE_LUA, 2, key, f"{key}:trailing", DISPATCH_WINDOW_MS, f"{due:.3f}")
    except redis.RedisError:
        return None
    answer = answer.decode() if isinstance(answer, bytes) else str(answer)
    if answer in ("leading", "trailing"):
        return answer
    try:
        return float(answer)
    except ValueError:  # a marker set by an older version ("1"): due unknown, ask again next time
        return 0.0


def job_dispatch_after_quiet(*, portal_id: int, countdown: float) -> bool:
    """The push processor again after `countdown` s (sync/services/debounce.py), at most one such
    message per portal in flight: finer than the retry buckets, which would add up to 5 s to a
    single edit's latency."""
    task = PROCESSOR_TASKS[SyncJob.Kind.PUSH_INVOICE]
    if not _marker(f"sync:dispatch:{portal_id}:quiet", max(1, int(countdown * 1000))):
        return False
    return task_send(task, [portal_id], countdown=countdown)


def dispatch_on_commit(portal_id: int, kind: str, countdown: float | None = None) -> None:
    _on_commit_once(
        ("dispatch", portal_id, kind, countdown),
        lambda: job_dispatch(portal_id=portal_id, kind=kind, countdown=countdown),
    )


def dispatch_new_job_on_commit(portal_id: int, kind: str, priority: int) -> None:
    """The processor for a job just queued. A push nobody is waiting on (an event, a sweep) would
    only be told by the debounce to come back once the portal has been quiet for PUSH_QUIET_S
    (sync/services/debounce.py), so it is sent for then at once: one message through the broker
    queue instead of two, which on a busy pool is one queue wait less per change. A person's click
    goes at once."""
    quiet_s = float(settings.PUSH_QUIET_S)
    if kind != SyncJob.Kind.PUSH_INVOICE or priority <= SyncJob.Priority.USER or quiet_s <= 0:
        dispatch_on_commit(portal_id, kind)
        return
    _on_commit_once(("quiet", portal_id), lambda: job_dispatch_after_quiet(portal_id=portal_id, countdown=quiet_s))


def _on_commit_once(key: tuple, send: Callable[[], object]) -> None:
    """transaction.on_commit(send), unless the transaction already holds a send with this key: a
    click that queues 1,000 jobs in one transaction then sends one message, not 1,000 attempts
    coalesced into a dozen by the markers (each of which costs a worker a task that finds the
    portal busy). Django's own list of the transaction's callbacks is what is searched, so a send
    dropped with a rolled-back savepoint is not counted: the jobs it covered were dropped with it,
    and a later job registers a send of its own."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        getattr(callback, "dispatch_key", None) == key for _savepoints, callback, _robust in connection.run_on_commit
    ):
        return
    send.dispatch_key = key  # type: ignore[attr-defined]
    transaction.on_commit(send, robust=True)
