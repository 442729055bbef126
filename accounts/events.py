"""Dispatch table for Bitrix24 events after their application_token was verified.

The sync app fills it in its AppConfig.ready(), e.g.::

    from accounts.events import EVENT_HANDLERS
    EVENT_HANDLERS["ONCRMDYNAMICITEMUPDATE"] = invoice_event_record

A handler is called as `handler(portal=<Portal>, event=<Bitrix24Event>)` inside the request that
Bitrix24 is waiting on, so it must only persist and enqueue (style A.3.3) and return quickly.
Bitrix24 does not retry deliveries; an exception is logged and answered with 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EVENT_HANDLERS: dict[str, Callable[..., Any]] = {}
