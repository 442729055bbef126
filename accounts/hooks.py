"""What accounts needs from the sync engine, without importing it.

The layers point one way (sync -> accounts -> integrations -> connector; `make lint` checks it with
import-linter), so accounts cannot import sync. The few things an account flow must ask of the
engine — "does this portal still need Setup?", where a placement opens, "map the new portal's
stages" — are registered here by sync.apps.SyncConfig.ready(), like accounts.events.EVENT_HANDLERS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _missing(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"accounts.hooks.sync.{name} is not registered (is the sync app installed?)")

    return call


@dataclass
class SyncHooks:
    # setup_needed(portal) -> bool: True until an admin has saved the Setup page once.
    setup_needed: Callable[..., bool] = _missing("setup_needed")
    # placement_invoice_ids(options) -> list[int]: invoice ids in a placement's PLACEMENT_OPTIONS.
    placement_invoice_ids: Callable[..., list[int]] = _missing("placement_invoice_ids")
    # placement_landing(placement, ids, *, token) -> str: the page a placement opens on.
    placement_landing: Callable[..., str] = _missing("placement_landing")
    # stage_map_refresh(*, portal, client=None): the default stage map from the portal's stages.
    stage_map_refresh: Callable[..., Any] = _missing("stage_map_refresh")
    # linked_invoices(portal) -> int: how many Bitrix24 invoices are linked to a Xero invoice.
    linked_invoices: Callable[..., int] = _missing("linked_invoices")


sync = SyncHooks()
