"""The app's own footing on a portal: who the user is, the plan's features, event and placement
bindings, and the offline event queue (api-reference/events/, widgets/placement, common/users)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from integrations.bitrix24.api.command import Command, as_int, as_str, yes
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE

# The invoice events Bitrix24 sends for each kind of invoice (events/index: crm.item events carry
# the entity type in their data; the old invoice's have their own names).
SMART_INVOICE_EVENTS = ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE")
CLASSIC_INVOICE_EVENTS = ("ONCRMINVOICEADD", "ONCRMINVOICEUPDATE", "ONCRMINVOICESETSTATUS", "ONCRMINVOICEDELETE")
INVOICE_EVENTS_BY_TYPE = {SMART_INVOICE: SMART_INVOICE_EVENTS, OLD_INVOICE: CLASSIC_INVOICE_EVENTS}
SMART_INVOICE_PLACEMENTS = ("CRM_SMART_INVOICE_DETAIL_TOOLBAR", "CRM_SMART_INVOICE_LIST_MENU")
# Old invoices have no per-row menu placement (widgets/placement-list.md lists the toolbars only).
CLASSIC_INVOICE_PLACEMENTS = ("CRM_INVOICE_DETAIL_TOOLBAR", "CRM_INVOICE_LIST_TOOLBAR")
INVOICE_PLACEMENTS_BY_TYPE = {SMART_INVOICE: SMART_INVOICE_PLACEMENTS, OLD_INVOICE: CLASSIC_INVOICE_PLACEMENTS}
# What event.bind / placement.bind answer for a binding that exists already (a re-install).
ALREADY_BOUND_CODES = frozenset({"ERROR_HANDLER_ALREADY_EXIST", "ERROR_PLACEMENT_HANDLER_ALREADY_EXIST"})
# Offline (pull) events: the queue the sync engine drains with reservation, which needs this plan
# feature (docs/bitrix24-api.md §5.4). Deletes are not bound: they never change Xero.
OFFLINE_FEATURE = "rest_offline_extended"
OFFLINE_INVOICE_EVENTS = ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE")


@dataclass(frozen=True)
class User:
    id: int | None
    name: str
    last_name: str
    time_zone: str


@dataclass(frozen=True)
class EventBinding:
    event: str  # upper case, as Bitrix24 names events
    handler: str
    offline: bool
    # auth_type 0: the handler is called with the installing app's own authorisation (ours).
    with_app_auth: bool


@dataclass(frozen=True)
class PlacementBinding:
    placement: str  # upper case
    handler: str


@dataclass(frozen=True)
class OfflineBatch:
    process_id: str
    # The records as Bitrix24 sent them (MESSAGE_ID, EVENT_NAME, EVENT_DATA); the engine reads
    # them with offline_invoice_change (below); the engine logs the ones it cannot act on.
    events: tuple[Any, ...]


def _user(result: Any) -> User:
    data = result if isinstance(result, dict) else {}
    return User(
        id=as_int(data.get("ID")),
        name=as_str(data.get("NAME")),
        last_name=as_str(data.get("LAST_NAME")),
        time_zone=as_str(data.get("TIME_ZONE")),
    )


def user_current() -> Command[User]:
    return Command("user.current", {}, _user)


def user_admin() -> Command[bool]:
    return Command("user.admin", {}, yes)


def feature_enabled(code: str) -> Command[bool]:
    """feature.get: whether the portal's plan has the feature (value "Y")."""

    def parse(result: Any) -> bool:
        return isinstance(result, dict) and as_str(result.get("value")).upper() == "Y"

    return Command("feature.get", {"CODE": code}, parse)


def _events(result: Any) -> list[EventBinding]:
    return [
        EventBinding(
            event=as_str(b.get("event")).upper(),
            handler=as_str(b.get("handler")),
            offline=bool(as_int(b.get("offline")) or 0),
            with_app_auth=as_str(b.get("auth_type") or "0") == "0",
        )
        for b in result or []
        if isinstance(b, dict)
    ]


def events_list() -> Command[list[EventBinding]]:
    return Command("event.get", {}, _events)


def _done(result: Any) -> bool:
    return bool(result)


def event_bind(event: str, handler: str) -> Command[bool]:
    return Command("event.bind", {"event": event, "handler": handler}, _done)


def event_bind_offline(event: str) -> Command[bool]:
    return Command("event.bind", {"event": event, "event_type": "offline"}, _done)


def event_unbind(event: str, handler: str) -> Command[bool]:
    return Command("event.unbind", {"event": event, "handler": handler}, _done)


def event_unbind_offline(event: str) -> Command[bool]:
    return Command("event.unbind", {"event": event, "event_type": "offline"}, _done)


def _placements(result: Any) -> list[PlacementBinding]:
    return [
        PlacementBinding(placement=as_str(b.get("placement")).upper(), handler=as_str(b.get("handler")))
        for b in result or []
        if isinstance(b, dict)
    ]


def placements_list() -> Command[list[PlacementBinding]]:
    return Command("placement.get", {}, _placements)


def placement_bind(code: str, handler: str, title: str) -> Command[bool]:
    return Command("placement.bind", {"PLACEMENT": code, "HANDLER": handler, "TITLE": title}, _done)


def placement_unbind(code: str, handler: str) -> Command[bool]:
    return Command("placement.unbind", {"PLACEMENT": code, "HANDLER": handler}, _done)


def _offline_batch(result: Any) -> OfflineBatch:
    data = result if isinstance(result, dict) else {}
    events = data.get("events")
    rows = tuple(events) if isinstance(events, list) else ()
    return OfflineBatch(process_id=as_str(data.get("process_id")), events=rows)


def offline_events_get(*, limit: int, process_id: str = "") -> Command[OfflineBatch]:
    """event.offline.get without clearing (clear=0): the batch is reserved under a process_id and
    cleared only after the caller has acted on it (at-least-once)."""
    params: dict[str, Any] = {"clear": 0, "limit": limit}
    if process_id:
        params["process_id"] = process_id
    return Command("event.offline.get", params, _offline_batch)


def offline_events_clear(process_id: str, message_ids: Sequence[str]) -> Command[bool]:
    return Command("event.offline.clear", {"process_id": process_id, "message_id": list(message_ids)}, _done)


def offline_events_error(process_id: str, message_ids: Sequence[str]) -> Command[bool]:
    return Command("event.offline.error", {"process_id": process_id, "message_id": list(message_ids)}, _done)


@dataclass(frozen=True)
class OfflineChange:
    """What one offline event record asks of the engine: a new invoice to push (invoice_id), nothing
    (invoice_id None, no problem: another entity, a delete, another smart process), or a record
    that cannot be read (problem: kept as an error for Bitrix24; the updatedTime sweep catches the
    change)."""

    message_id: str
    invoice_id: int | None
    problem: str


def offline_invoice_change(record: Any) -> OfflineChange:
    """Read one event.offline.get record (MESSAGE_ID, EVENT_NAME, EVENT_DATA.FIELDS{ID,
    ENTITY_TYPE_ID}); only new invoices' add/update events name an invoice."""
    if not isinstance(record, dict):
        return OfflineChange("", None, "not a record")
    message_id = str(record.get("MESSAGE_ID") or "")
    if not message_id:
        return OfflineChange("", None, "no MESSAGE_ID")
    name = str(record.get("EVENT_NAME") or "").upper()
    base, _, suffix = name.rpartition("_")
    implied_type: int | None = None
    if base in SMART_INVOICE_EVENTS and suffix.isdigit():
        name, implied_type = base, int(suffix)  # ONCRMDYNAMICITEMUPDATE_31: the type is in the name
    if name not in SMART_INVOICE_EVENTS or name.endswith("DELETE"):
        return OfflineChange(message_id, None, "")  # not an invoice change we act on: acknowledged
    data = record.get("EVENT_DATA")
    fields = data.get("FIELDS") if isinstance(data, dict) else None
    if not isinstance(fields, dict):
        return OfflineChange(message_id, None, f"{name} without EVENT_DATA.FIELDS")
    try:
        raw_type = fields.get("ENTITY_TYPE_ID")
        entity_type = int(raw_type) if raw_type not in (None, "") else implied_type
        invoice_id = int(fields["ID"])
    except (KeyError, TypeError, ValueError):
        return OfflineChange(message_id, None, f"{name} with a malformed ID or ENTITY_TYPE_ID")
    if entity_type is None:
        return OfflineChange(message_id, None, f"{name} without ENTITY_TYPE_ID")
    if entity_type != SMART_INVOICE:
        return OfflineChange(message_id, None, "")  # another smart process: acknowledged, nothing to do
    if invoice_id <= 0:
        return OfflineChange(message_id, None, f"{name} with ID {invoice_id}")
    return OfflineChange(message_id, invoice_id, "")
