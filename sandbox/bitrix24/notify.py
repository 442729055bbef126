"""Portal events raised by REST methods, handed to the emitter once the world lock is released.

Methods run under `sandbox.lock`; the emitter may POST to the app, and the app may call back into
the REST API from another thread. Queuing the events for the end of the request (a `batch` too)
keeps outbound HTTP outside the lock, and the app only hears of changes that are already stored.
"""

from __future__ import annotations

from flask import g, has_request_context

from sandbox.bitrix24 import world as world_module
from sandbox.bitrix24.world import Bitrix24World, User


def raise_event(world: Bitrix24World, event: str, data: dict, user: User | None) -> None:
    if has_request_context() and isinstance(g.get("b24_events"), list):
        g.b24_events.append((world, event, data, user))
    else:
        world_module.emit(world, event, data, user)


def begin() -> None:
    g.b24_events = []


def flush() -> None:
    """Deliver what the request raised, in order. Call without holding the lock."""
    pending = g.pop("b24_events", None) or []
    for world, event, data, user in pending:
        world_module.emit(world, event, data, user)


def invoice_event(world: Bitrix24World, kind: str, invoice_id: int, user: User | None) -> None:
    """ONCRMDYNAMICITEM{ADD,UPDATE,DELETE} for a new invoice; the emitter adds the _31 variants."""
    raise_event(world, f"ONCRMDYNAMICITEM{kind}", {"FIELDS": {"ID": invoice_id, "ENTITY_TYPE_ID": 31}}, user)
