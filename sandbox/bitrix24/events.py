"""Events: the event.* REST methods, the emitter and the offline queue (§5).

A change is delivered to every handler bound to its event (the delivery itself is in
event_delivery.py). Offline bindings keep the latest record per object in a queue the app pulls
with event.offline.get.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlparse

from sandbox.bitrix24.app_state import AppState, Binding, as_list, flatten, param, state
from sandbox.bitrix24.event_delivery import auth_block, enqueue
from sandbox.bitrix24.values import now_iso
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, ListResult, User, on_event, page_of, rest_method

KNOWN_EVENTS = [
    "ONAPPINSTALL",
    "ONAPPUNINSTALL",
    "ONAPPUPDATE",
    "ONAPPTEST",
    "ONOFFLINEEVENT",
    "ONCRMDYNAMICITEMADD",
    "ONCRMDYNAMICITEMUPDATE",
    "ONCRMDYNAMICITEMDELETE",
    "ONCRMDYNAMICITEMADD_31",
    "ONCRMDYNAMICITEMUPDATE_31",
    "ONCRMDYNAMICITEMDELETE_31",
    "ONCRMINVOICEADD",
    "ONCRMINVOICEUPDATE",
    "ONCRMINVOICEDELETE",
    "ONCRMINVOICESETSTATUS",
    "ONCRMCOMPANYADD",
    "ONCRMCOMPANYUPDATE",
    "ONCRMCOMPANYDELETE",
    "ONCRMCONTACTADD",
    "ONCRMCONTACTUPDATE",
    "ONCRMCONTACTDELETE",
    "ONCRMREQUISITEADD",
    "ONCRMREQUISITEUPDATE",
    "ONCRMREQUISITEDELETE",
    "CATALOG.PRODUCT.ON.ADD",
    "CATALOG.PRODUCT.ON.UPDATE",
    "CATALOG.PRODUCT.ON.DELETE",
]
_KNOWN = set(KNOWN_EVENTS)


def require_app_context(ctx: Ctx) -> None:
    if ctx.token is None:
        raise B24Error(403, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method")


def is_url(value: str) -> bool:
    parsed = urlparse(value or "")
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def event_names(event: str, data: dict) -> list[str]:
    """The names a change is delivered under: the event and, for CRM types, its `_{type}` variant."""
    names = [event.upper()]
    fields = data.get("FIELDS") if isinstance(data, dict) else None
    entity_type = fields.get("ENTITY_TYPE_ID") if isinstance(fields, dict) else None
    if entity_type not in (None, ""):
        names.append(f"{event.upper()}_{entity_type}")
    return names


@on_event
def emit(world: Bitrix24World, event: str, data: dict, user: User | None) -> None:
    """Called by world.emit for every portal change (usually inside a REST call, lock held)."""
    with world.sandbox.lock:
        if not world.installed:
            return  # Bitrix24 delivers nothing until BX24.installFinish()
        app = state(world)
        names = event_names(event, data)
        tokens: dict[int | None, dict] = {}  # one token per acting user per change
        for binding in list(app.bindings):
            if binding.event not in names:
                continue
            if binding.offline:
                record_offline(world, app, binding.event, data)
                continue
            acting = world.users.get(binding.auth_type) if binding.auth_type else user
            key = acting.id if acting else None
            if key not in tokens:
                tokens[key] = auth_block(world, acting)
            pairs = [("event", binding.event), ("event_handler_id", str(binding.id))]
            pairs += flatten("data", data) + flatten("auth", tokens[key])
            enqueue(world, binding.event, binding.handler, binding.id, pairs)


def object_key(data) -> str:
    fields = data.get("FIELDS") if isinstance(data, dict) else None
    if isinstance(fields, dict):
        return f"{fields.get('ENTITY_TYPE_ID', '')}:{fields.get('ID', '')}"
    return repr(data)


def record_offline(world: Bitrix24World, app: AppState, event: str, data: dict) -> None:
    """Keep the latest state per object: a change to an object already waiting (and not reserved
    by a consumer) only moves its timestamp and message id."""
    now = time.time()
    key = object_key(data)
    # As event.offline.get documents a record (api-reference/events/event-offline-get.md): ID and
    # MESSAGE_ID as strings, TIMESTAMP_X in the portal's offset.
    stamp = now_iso()
    for record in app.offline:
        if record["EVENT_NAME"] == event and record["_key"] == key and not record["PROCESS_ID"] and not record["ERROR"]:
            record.update(TIMESTAMP_X=stamp, EVENT_DATA=data, MESSAGE_ID=secrets.token_hex(16), _ts=now)
            break
    else:
        app.offline.append(
            {
                "ID": str(world.next_id("offline_event")),
                "TIMESTAMP_X": stamp,
                "EVENT_NAME": event,
                "EVENT_DATA": data,
                "EVENT_ADDITIONAL": {"user_id": None},
                "MESSAGE_ID": secrets.token_hex(16),
                "PROCESS_ID": "",
                "ERROR": 0,
                "_key": key,
                "_ts": now,
            }
        )
    signal_offline(world, app, now)


def signal_offline(world: Bitrix24World, app: AppState, now: float) -> None:
    """ONOFFLINEEVENT: a ping to call event.offline.get, at most once per minTimeout seconds."""
    for binding in app.bindings:
        if binding.event != "ONOFFLINEEVENT" or binding.offline:
            continue
        options = binding.options if isinstance(binding.options, dict) else {}
        try:
            min_timeout = float(param(options, "minTimeout", 1))
        except (TypeError, ValueError):
            min_timeout = 1.0
        if now - app.last_offline_signal < min_timeout:
            return
        app.last_offline_signal = now
        owner = world.users.get(binding.auth_type or binding.user_id)
        pairs = [("event", "ONOFFLINEEVENT"), ("event_handler_id", str(binding.id))]
        pairs += flatten("auth", auth_block(world, owner, refresh=True))
        enqueue(world, "ONOFFLINEEVENT", binding.handler, binding.id, pairs)


def public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _auth_type(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError) as exc:
        raise B24Error(400, "ERROR_ARGUMENT", "auth_type must be a user id") from exc


@rest_method("event.bind")
def event_bind(ctx: Ctx, params: dict):
    require_app_context(ctx)
    event = str(param(params, "event", "")).strip().upper()
    handler = str(param(params, "handler", "") or "").strip()
    offline = str(param(params, "event_type", "online")).lower() == "offline"
    auth_type = _auth_type(param(params, "auth_type"))
    if not event:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'event' is null or empty", argument="event")
    if event not in _KNOWN:
        raise B24Error(400, "ERROR_EVENT_NOT_FOUND", "Event not found")
    if (offline or auth_type not in (0, ctx.user.id)) and not ctx.user.admin:
        raise B24Error(403, "ACCESS_DENIED", "Access denied! Admin permissions required")
    if auth_type and auth_type not in ctx.world.users:
        raise B24Error(400, "ERROR_ARGUMENT", "User not found", argument="auth_type")
    if offline:
        handler = ""
    elif not is_url(handler):
        raise B24Error(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
    app = state(ctx.world)
    for binding in app.bindings:
        if (binding.event, binding.handler, binding.auth_type, binding.offline) == (event, handler, auth_type, offline):
            raise B24Error(400, "ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
    app.bindings.append(
        Binding(
            id=ctx.world.next_id("event_handler"),
            event=event,
            handler=handler,
            auth_type=auth_type,
            offline=offline,
            user_id=ctx.user.id,
            auth_connector=str(param(params, "auth_connector", "") or ""),
            options=param(params, "options"),
        )
    )
    return True


@rest_method("event.unbind")
def event_unbind(ctx: Ctx, params: dict):
    require_app_context(ctx)
    event = str(param(params, "event", "")).strip().upper()
    if not event:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'event' is null or empty", argument="event")
    handler = str(param(params, "handler", "") or "").strip()
    offline = str(param(params, "event_type", "online")).lower() == "offline"
    auth_type = _auth_type(param(params, "auth_type"))
    if offline and not ctx.user.admin:
        raise B24Error(403, "ACCESS_DENIED", "Access denied! Admin permissions required")
    app = state(ctx.world)
    keep = []
    for binding in app.bindings:
        hit = (
            binding.event == event
            and binding.offline == offline
            and (not handler or binding.handler == handler)
            and binding.auth_type == auth_type  # 0/empty matches only handlers without auth_type
        )
        if not hit:
            keep.append(binding)
    count = len(app.bindings) - len(keep)
    app.bindings = keep
    return {"count": count}


@rest_method("event.get")
def event_get(ctx: Ctx, params: dict):
    require_app_context(ctx)
    return [b.as_rest() for b in state(ctx.world).bindings]


@rest_method("events")
def events(ctx: Ctx, params: dict):
    return list(KNOWN_EVENTS)


@rest_method("event.test")
def event_test(ctx: Ctx, params: dict):
    """Fires ONAPPTEST with data[QUERY] = the call's parameters (handy to test a handler)."""
    require_app_context(ctx)
    query = {k: v for k, v in params.items() if k != "auth"}
    # Through the REST core's request queue: it emits once the world lock is released.
    from sandbox.bitrix24.notify import raise_event

    raise_event(ctx.world, "ONAPPTEST", {"QUERY": query}, ctx.user)
    return 1


def _offline_records(app: AppState, process_id: str, error: bool) -> list[dict]:
    if process_id:
        return [r for r in app.offline if r["PROCESS_ID"] == process_id]
    return sorted(
        (r for r in app.offline if not r["PROCESS_ID"] and bool(r["ERROR"]) == error),
        key=lambda r: r["_ts"],
    )


@rest_method("event.offline.get", admin=True)
def offline_get(ctx: Ctx, params: dict):
    require_app_context(ctx)
    app = state(ctx.world)
    clear = str(param(params, "clear", 1)) not in ("0", "False", "false", "N")
    error = str(param(params, "error", 0)) in ("1", "True", "true", "Y")
    try:
        limit = max(1, min(1000, int(param(params, "limit", 50))))
    except (TypeError, ValueError):
        limit = 50
    process_id = str(param(params, "process_id", "") or "")
    batch = _offline_records(app, process_id, error)[:limit]
    if clear:
        ids = {id(r) for r in batch}
        app.offline = [r for r in app.offline if id(r) not in ids]
        out_process = process_id
    else:
        out_process = process_id or secrets.token_hex(16)
        for record in batch:
            record["PROCESS_ID"] = out_process
    return {"process_id": out_process, "events": [public(r) for r in batch]}


@rest_method("event.offline.list", admin=True)
def offline_list(ctx: Ctx, params: dict):
    require_app_context(ctx)
    rows, total, nxt = page_of([public(r) for r in state(ctx.world).offline], param(params, "start"))
    return ListResult(rows, total, nxt)


def _selected(params: dict, process_id: str, app: AppState) -> list[dict]:
    ids = {str(x) for x in as_list(param(params, "id") or param(params, "id[]"))}
    messages = {str(x) for x in as_list(param(params, "message_id") or param(params, "message_id[]"))}
    rows = [r for r in app.offline if r["PROCESS_ID"] == process_id]
    if ids or messages:
        rows = [r for r in rows if str(r["ID"]) in ids or r["MESSAGE_ID"] in messages]
    return rows


@rest_method("event.offline.clear", admin=True)
def offline_clear(ctx: Ctx, params: dict):
    require_app_context(ctx)
    process_id = str(param(params, "process_id", "") or "")
    if not process_id:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'process_id' is null or empty", argument="process_id")
    app = state(ctx.world)
    gone = {id(r) for r in _selected(params, process_id, app)}
    app.offline = [r for r in app.offline if id(r) not in gone]
    return True


@rest_method("event.offline.error", admin=True)
def offline_error(ctx: Ctx, params: dict):
    """Mark records as failed: they leave the reservation and come back with `error: 1`."""
    require_app_context(ctx)
    process_id = str(param(params, "process_id", "") or "")
    if not process_id:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'process_id' is null or empty", argument="process_id")
    for record in _selected(params, process_id, state(ctx.world)):
        record["ERROR"] = 1
        record["PROCESS_ID"] = ""
    return True
