"""What Bitrix24 POSTs to us: online events (§5.3) and the app frame / installer POST (§4.3, §6).

Pure parsing and verification, no I/O. Bitrix24 signs nothing: the only proof that a POST comes
from the portal is the `application_token` it gave us at install time, compared in constant time
(style-and-reliability §B.1). Events are hints; the sync re-reads the entity from the REST API.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from integrations.bitrix24.errors import MalformedPayloadError

__all__ = [
    "Bitrix24Event",
    "EventAuth",
    "FramePost",
    "MalformedPayloadError",
    "application_token_matches",
    "parse_event",
    "parse_frame_post",
    "placement_entity_id",
    "unflatten_form",
]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def _form_items(form: Mapping[str, Any]) -> list[tuple[str, str]]:
    # A Django QueryDict keeps every value of a repeated key (`ids[]=1&ids[]=2`); a plain dict has one.
    if hasattr(form, "lists"):
        return [(key, value) for key, values in form.lists() for value in values]
    return [(key, value) for key, value in form.items()]


def unflatten_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """`data[FIELDS][ID]=24` -> {"data": {"FIELDS": {"ID": "24"}}}; `x[]=a&x[]=b` -> {"x": ["a", "b"]}."""
    out: dict[str, Any] = {}
    for raw_key, value in _form_items(form):
        match = _KEY.match(raw_key)
        if match is None:
            raise MalformedPayloadError(f"unreadable form key {raw_key!r}")
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: Any = out
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(node, list):
                if part != "":
                    raise MalformedPayloadError(f"form key {raw_key!r} mixes list and named entries")
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if last:
                if part in node:
                    raise MalformedPayloadError(f"form key {raw_key!r} is given twice or clashes with a nested key")
                node[part] = value
                break
            child_is_list = path[depth + 1] == ""
            child = node.setdefault(part, [] if child_is_list else {})
            if not isinstance(child, list if child_is_list else dict):
                raise MalformedPayloadError(f"form key {raw_key!r} clashes with another key")
            node = child
    return out


def _text(source: Mapping[str, Any], key: str, *, where: str, required: bool = False) -> str:
    value = source.get(key)
    if value is None or value == "":
        if required:
            raise MalformedPayloadError(f"{where}: {key} is missing")
        return ""
    if not isinstance(value, str):
        raise MalformedPayloadError(f"{where}: {key} must be a string")
    return value.strip()


def _int(source: Mapping[str, Any], key: str, *, where: str) -> int | None:
    value = _text(source, key, where=where)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise MalformedPayloadError(f"{where}: {key} must be an integer, got {value!r}") from None


def _endpoint(source: Mapping[str, Any], key: str, *, where: str, required: bool = False) -> str:
    value = _text(source, key, where=where, required=required)
    # The client endpoint becomes the base URL of REST calls carrying our tokens: only ever http(s).
    if value and (urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc):
        raise MalformedPayloadError(f"{where}: {key} is not an http(s) URL")
    return value


@dataclass(frozen=True)
class EventAuth:
    member_id: str
    domain: str
    client_endpoint: str
    application_token: str
    server_endpoint: str = ""
    # Absent when no user made the change (automation, workflow) and on ONAPPUNINSTALL.
    access_token: str = ""
    refresh_token: str = ""
    expires: int | None = None
    expires_in: int | None = None
    user_id: int | None = None
    scope: str = ""
    status: str = ""


@dataclass(frozen=True)
class Bitrix24Event:
    event: str
    auth: EventAuth
    data: dict[str, Any] = field(default_factory=dict)
    handler_id: int | None = None
    ts: int | None = None

    @property
    def is_system(self) -> bool:
        """No user behind it, so no tokens came with it."""
        return not self.auth.access_token

    @property
    def fields(self) -> dict[str, Any]:
        fields = self.data.get("FIELDS")
        return fields if isinstance(fields, dict) else {}

    @property
    def entity_id(self) -> int | None:
        return _positive_int(self.fields.get("ID"))

    @property
    def entity_type_id(self) -> int | None:
        return _positive_int(self.fields.get("ENTITY_TYPE_ID"))


def parse_event(form: Mapping[str, Any]) -> Bitrix24Event:
    """Parse a form-encoded online event (`event`, `event_handler_id`, `data[...]`, `ts`, `auth[...]`).

    Raises MalformedPayloadError naming what is missing or wrong. Does not check the
    application_token: compare it with application_token_matches() against the stored one."""
    tree = unflatten_form(form)
    event = _text(tree, "event", where="event", required=True).upper()
    auth = tree.get("auth")
    if not isinstance(auth, dict):
        raise MalformedPayloadError(f"event {event}: the auth block is missing")
    where = f"event {event} auth"
    parsed_auth = EventAuth(
        member_id=_text(auth, "member_id", where=where, required=True),
        domain=_text(auth, "domain", where=where, required=True),
        client_endpoint=_endpoint(auth, "client_endpoint", where=where, required=True),
        application_token=_text(auth, "application_token", where=where, required=True),
        server_endpoint=_endpoint(auth, "server_endpoint", where=where),
        access_token=_text(auth, "access_token", where=where),
        refresh_token=_text(auth, "refresh_token", where=where),
        expires=_int(auth, "expires", where=where),
        expires_in=_int(auth, "expires_in", where=where),
        user_id=_int(auth, "user_id", where=where),
        scope=_text(auth, "scope", where=where),
        status=_text(auth, "status", where=where),
    )
    data = tree.get("data", {})
    if data in ("", []):  # ONOFFLINEEVENT and others send an empty `data`
        data = {}
    if not isinstance(data, dict):
        raise MalformedPayloadError(f"event {event}: data must be a nested object")
    return Bitrix24Event(
        event=event,
        auth=parsed_auth,
        data=data,
        handler_id=_int(tree, "event_handler_id", where=f"event {event}"),
        ts=_int(tree, "ts", where=f"event {event}"),
    )


def application_token_matches(stored: str, received: str) -> bool:
    """Constant-time comparison; an empty token on either side never matches (a portal whose
    token we never received must not accept every POST that omits it)."""
    if not stored or not received:
        return False
    return hmac.compare_digest(stored.encode(), received.encode())


@dataclass(frozen=True)
class FramePost:
    """The POST Bitrix24 sends when it opens one of our pages in its frame (main page, installer,
    placement), on behalf of the user looking at it."""

    member_id: str
    auth_id: str  # that user's access token
    auth_expires: int | None = None  # seconds
    refresh_id: str = ""
    server_endpoint: str = ""
    application_token: str = ""
    application_scope: str = ""
    status: str = ""
    placement: str = "DEFAULT"
    placement_options: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    protocol: str = ""  # "1" https, "0" http
    lang: str = ""
    app_sid: str = ""

    @property
    def entity_id(self) -> int | None:
        return placement_entity_id(self.placement_options)


def _placement_options(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise MalformedPayloadError("frame POST: PLACEMENT_OPTIONS must be a JSON string")
    try:
        options = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any real placement
        raise MalformedPayloadError("frame POST: PLACEMENT_OPTIONS is not valid JSON") from None
    if options == []:  # PHP encodes an empty array as []
        return {}
    if not isinstance(options, dict):
        raise MalformedPayloadError("frame POST: PLACEMENT_OPTIONS must be a JSON object")
    return options


def parse_frame_post(post: Mapping[str, Any], query: Mapping[str, Any]) -> FramePost:
    """Parse the frame/installer POST body and its query string (DOMAIN, PROTOCOL, LANG, APP_SID).

    AUTH_ID and member_id are required; APPLICATION_TOKEN is read but not checked here."""
    where = "frame POST"
    # DOMAIN & co. come in the query string; accept them from the body too, where some hosts move them.
    context = {**{k: v for k, v in post.items()}, **{k: v for k, v in query.items()}}
    return FramePost(
        member_id=_text(post, "member_id", where=where, required=True),
        auth_id=_text(post, "AUTH_ID", where=where, required=True),
        auth_expires=_int(post, "AUTH_EXPIRES", where=where),
        refresh_id=_text(post, "REFRESH_ID", where=where),
        server_endpoint=_endpoint(post, "SERVER_ENDPOINT", where=where),
        application_token=_text(post, "APPLICATION_TOKEN", where=where),
        application_scope=_text(post, "APPLICATION_SCOPE", where=where),
        status=_text(post, "status", where=where),
        placement=_text(post, "PLACEMENT", where=where).upper() or "DEFAULT",
        placement_options=_placement_options(post.get("PLACEMENT_OPTIONS")),
        domain=_text(context, "DOMAIN", where=where),
        protocol=_text(context, "PROTOCOL", where=where),
        lang=_text(context, "LANG", where=where),
        app_sid=_text(context, "APP_SID", where=where),
    )


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def placement_entity_id(placement_options: Mapping[str, Any]) -> int | None:
    """The CRM object a placement was opened on. New invoices' DETAIL_TOOLBAR sends ENTITY_ID,
    list menus and tabs send ID (§6); anything that is not a positive integer gives None."""
    for key in ("ENTITY_ID", "ID"):
        found = _positive_int(placement_options.get(key))
        if found is not None:
            return found
    return None
