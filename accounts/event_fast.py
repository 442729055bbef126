"""The common shape of a Bitrix24 event, read without DRF: the serializer's answer, for less CPU.

Bitrix24 POSTs hundreds of events a second in a burst, nearly all of one plain shape: ASCII values,
no surrounding spaces, whole-number digits where numbers go. For exactly that shape this module
builds the same Bitrix24Event the serializer (accounts/event_payload.py) would, at a quarter of its
cost (profiled: DRF's field machinery was ~0.2 ms of a ~1.2 ms delivery). Anything else (a missing
or blank field, a space to trim, a number DRF would have to read, a URL that is not plain http(s),
non-ASCII text, an unexpected key) returns None and goes through the serializer, which accepts it
or answers the 400 that names the field. So the serializer stays the one definition of what is
valid; tests/accounts/test_event_fast.py checks the two agree on generated forms.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from integrations.bitrix24.inbound import Bitrix24Event, EventAuth

# auth[...] text fields: required ones with the serializer's max_length (None: no limit).
_REQUIRED_TEXT = {"member_id": 64, "domain": 255, "application_token": None}
_OPTIONAL_TEXT = ("access_token", "refresh_token", "scope", "status")
_OPTIONAL_INT = ("expires", "expires_in", "user_id")
_URLS = {"client_endpoint": True, "server_endpoint": False}  # name -> required
_AUTH_KEYS = frozenset((*_REQUIRED_TEXT, *_OPTIONAL_TEXT, *_OPTIONAL_INT, *_URLS))
_TOP_KEYS = frozenset(("event", "event_handler_id", "ts", "auth", "data"))
_URL_MAX = 500


def event_fast(nested: dict[str, Any]) -> Bitrix24Event | None:
    """The event of an unflattened form in the plain shape; None for anything else."""
    auth, data, event = nested.get("auth"), nested.get("data", {}), nested.get("event")
    if not (_TOP_KEYS.issuperset(nested) and isinstance(auth, dict) and _AUTH_KEYS.issuperset(auth)):
        return None
    if data in ("", []):
        data = {}
    if not isinstance(data, dict) or not _plain(event, 100):
        return None
    values: dict[str, Any] = {}
    for name, limit in _REQUIRED_TEXT.items():
        if not _plain(auth.get(name), limit):
            return None
        values[name] = auth[name]
    for name, required in _URLS.items():
        url = auth.get(name, "")
        if not (_plain(url, _URL_MAX) and _http(url)) and (required or url != ""):
            return None
        values[name] = url
    for name in _OPTIONAL_TEXT:
        text = auth.get(name, "")
        if text != "" and not _plain(text, None):
            return None
        values[name] = text
    numbers = {name: nested.get(name) for name in ("event_handler_id", "ts")}
    numbers |= {name: auth.get(name) for name in _OPTIONAL_INT}
    for name, value in numbers.items():
        if value is not None and value != "" and not _digits(value):
            return None
        numbers[name] = int(value) if value else None
    return Bitrix24Event(
        event=event.upper(),
        auth=EventAuth(**values, **{name: numbers[name] for name in _OPTIONAL_INT}),
        data=data,
        handler_id=numbers["event_handler_id"],
        ts=numbers["ts"],
    )


def _plain(value: Any, limit: int | None) -> bool:
    """Non-empty ASCII text the serializer would keep as it is (nothing to trim), within its limit."""
    return (
        isinstance(value, str)
        and value != ""
        and value.isascii()
        and "\x00" not in value  # DRF's CharField refuses NUL (the middleware already does)
        and value == value.strip()
        and (limit is None or len(value) <= limit)
    )


def _digits(value: Any) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18


def _http(url: str) -> bool:
    try:
        parsed = urlparse(url)
    except ValueError:  # "http://[::1": the serializer says what is wrong with it
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)
