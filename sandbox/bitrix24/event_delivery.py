"""Delivering events to the app's handlers (§5.3): the outbound POSTs and their `auth` block.

Online delivery works like Bitrix24's queue: a change enqueues one POST per bound handler
(form-encoded, §5.3 keys), background threads send it slightly later, and a failure or a
handler slower than `event_timeout_s` is logged and dropped — never retried. Install and
uninstall events are sent at once (send_now). `POST /_sandbox/delivery` makes deliveries late,
doubled or reordered.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time

import requests

from sandbox.bitrix24.app_state import AppState, flatten, state
from sandbox.bitrix24.world import Bitrix24World, User
from sandbox.core import OUTBOUND

log = logging.getLogger("sandbox.bitrix24.events")  # the name it had before the split: log settings keep working


def auth_block(world: Bitrix24World, user: User | None, *, refresh: bool = False) -> dict:
    """The `auth` of an outbound event: the acting user's fresh tokens, or none for automation."""
    base = {
        "domain": world.domain,
        "server_endpoint": world.server_endpoint,
        "client_endpoint": world.client_endpoint,
        "member_id": world.member_id,
        "application_token": world.application_token,
    }
    if user is None:
        return base
    token = world.issue_token(user.id)
    auth = {
        "access_token": token.token,
        "expires": str(int(token.expires_at)),
        "expires_in": str(world.ACCESS_TOKEN_TTL),
        "scope": token.scope,
        "domain": world.domain,
        "server_endpoint": world.server_endpoint,
        "status": state(world).settings["status"],
        "client_endpoint": world.client_endpoint,
        "member_id": world.member_id,
        "user_id": str(user.id),
    }
    if refresh:
        auth["refresh_token"] = token.refresh_token
    auth["application_token"] = world.application_token
    return auth


_QUEUE: queue.Queue = queue.Queue()
_WORKERS: list[threading.Thread] = []
_WORKERS_LOCK = threading.Lock()
WORKER_THREADS = 4  # a slow handler holds one thread; the others keep delivering
MAX_LOGGED_DELIVERIES = 5000


def post_form(url: str, pairs: list[tuple[str, str]], timeout: float) -> tuple[int | None, str]:
    """POST form-encoded; (HTTP status or None, error text)."""
    try:
        with OUTBOUND.running():
            response = requests.post(url, data=pairs, timeout=timeout)
        return response.status_code, ""
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"


def with_ts(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`ts` (unix seconds when the queue sends it) goes where Bitrix24 puts it: before `auth`."""
    at = next((i for i, (key, _) in enumerate(pairs) if key.startswith("auth[")), len(pairs))
    return [*pairs[:at], ("ts", str(int(time.time()))), *pairs[at:]]


def record_delivery(world: Bitrix24World, app: AppState, event: str, handler: str, handler_id, status, error) -> None:
    with world.sandbox.lock:
        if state(world) is app:  # a reset since the event was queued: the log is gone too
            if len(app.deliveries) >= MAX_LOGGED_DELIVERIES:  # benchmarks emit thousands
                del app.deliveries[: MAX_LOGGED_DELIVERIES // 10]
            app.deliveries.append(
                {
                    "time": time.time(),
                    "event": event,
                    "handler": handler,
                    "handler_id": handler_id,
                    "status": status,
                    "error": error,
                }
            )


def _worker() -> None:
    while True:
        due, world, app, event, handler, handler_id, pairs, timeout = _QUEUE.get()
        try:
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if state(world) is not app:
                continue  # queued before a reset or uninstall: the real queue would drop it too
            status, error = post_form(handler, with_ts(pairs), timeout)
            if status is None or status >= 300:
                log.info("event %s to %s failed (%s %s); not retried", event, handler, status, error)
            record_delivery(world, app, event, handler, handler_id, status, error)
        except Exception:  # the delivery threads must survive anything
            log.exception("event delivery crashed")
        finally:
            _QUEUE.task_done()


def wait_delivered(timeout: float) -> bool:
    """True once every queued event has been handled (delivered, or dropped after a reset)."""
    deadline = time.monotonic() + timeout
    while _QUEUE.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _QUEUE.unfinished_tasks


def enqueue(world: Bitrix24World, event: str, handler: str, handler_id, pairs: list[tuple[str, str]]) -> None:
    with _WORKERS_LOCK:
        if not _WORKERS:
            for n in range(WORKER_THREADS):
                thread = threading.Thread(target=_worker, name=f"b24-events-{n}", daemon=True)
                thread.start()
                _WORKERS.append(thread)
    app = state(world)
    delivery = world.sandbox.delivery  # POST /_sandbox/delivery: late, repeated, out of order
    base = float(app.settings["event_delay_s"]) + float(delivery["delay_s"])
    for _copy in range(1 + int(delivery["duplicates"])):
        jitter = random.uniform(0, max(float(delivery["delay_s"]), 0.1)) if delivery["reorder"] else 0.0
        due = time.monotonic() + base + jitter
        _QUEUE.put((due, world, app, event, handler, handler_id, pairs, float(app.settings["event_timeout_s"])))


def send_now(world: Bitrix24World, app: AppState, event: str, handler: str, pairs) -> tuple[int | None, str]:
    """Deliver synchronously (install/uninstall: the control call returns after it arrived)."""
    status, error = post_form(handler, with_ts(pairs), float(app.settings["event_timeout_s"]))
    record_delivery(world, app, event, handler, None, status, error)
    return status, error


def lifecycle_pairs(event: str, data: dict, auth: dict) -> list[tuple[str, str]]:
    """ONAPPINSTALL / ONAPPUNINSTALL as form fields (no event_handler_id: they come from the app card)."""
    return [("event", event), *flatten("data", data), *flatten("auth", auth)]
