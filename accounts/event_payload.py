"""DRF serializers for what Bitrix24 POSTs to us (issue 17): a payload is validated in one place and
anything malformed is a clear 400 that names the field, never a 500 from hand parsing.

An online event (bitrix24-api.md §5.3) arrives form-encoded (`event`, `event_handler_id`,
`data[FIELDS][ID]`, `ts`, `auth[member_id]`, ...); `unflatten_form` turns the keys into the nested
object these serializers check. Validation says nothing about who sent it: the application_token is
compared with the portal's afterwards (accounts.services.portal.portal_verify_event).

The event endpoint takes hundreds of deliveries a second, so the serializer is kept small: plain
fields, no model lookups, no regex URL validator (an endpoint only has to be an http(s) URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from rest_framework import serializers

from accounts.event_fast import event_fast
from connector.serializers import FieldsBuiltOnce
from integrations.bitrix24.inbound import Bitrix24Event, EventAuth, unflatten_form

__all__ = ["Bitrix24EventSerializer", "bitrix24_event_from_form"]


class OptionalIntegerField(serializers.IntegerField):
    """An integer or nothing: Bitrix24 sends some numbers empty (`auth[expires]=` on an uninstall)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, allow_null=True, default=None, **kwargs)

    def to_internal_value(self, data: Any) -> int | None:
        if isinstance(data, str) and not data.strip():
            return None
        return super().to_internal_value(data)


class HttpUrlField(serializers.CharField):
    """The base URL of REST calls that will carry our tokens: only ever http(s) with a host."""

    default_error_messages = {"not_http": "Must be an http(s) URL."}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value:
            try:
                parsed = urlparse(value)
            except ValueError:  # an unclosed IPv6 bracket ("http://[::1")
                self.fail("not_http")
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                self.fail("not_http")
        return value


class EventDataField(serializers.Field):
    """`data`: a nested object (`data[FIELDS][ID]`); events without data send it empty."""

    default_error_messages = {"invalid": "Must be a nested object (data[...])."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data in ("", []):  # ONOFFLINEEVENT and others
            return {}
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


def _optional_text() -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, default="")


class EventAuthSerializer(FieldsBuiltOnce):
    """`auth[...]`: who the event claims to come from, and a user's tokens when a user made the change."""

    member_id = serializers.CharField(max_length=64)
    domain = serializers.CharField(max_length=255)
    client_endpoint = HttpUrlField(max_length=500)
    application_token = serializers.CharField()
    server_endpoint = HttpUrlField(max_length=500, required=False, allow_blank=True, default="")
    access_token = _optional_text()
    refresh_token = _optional_text()
    expires = OptionalIntegerField()
    expires_in = OptionalIntegerField()
    user_id = OptionalIntegerField()
    scope = _optional_text()
    status = _optional_text()


class Bitrix24EventSerializer(FieldsBuiltOnce):
    """An online event, as the nested object `unflatten_form` makes of the form."""

    event = serializers.CharField(max_length=100)
    event_handler_id = OptionalIntegerField()
    ts = OptionalIntegerField()
    auth = EventAuthSerializer()
    data = EventDataField(required=False, default=dict)

    def event_of(self) -> Bitrix24Event:
        """The validated event (call after is_valid())."""
        values = self.validated_data
        return Bitrix24Event(
            event=values["event"].upper(),
            auth=EventAuth(**values["auth"]),
            data=values["data"],
            handler_id=values["event_handler_id"],
            ts=values["ts"],
        )


def bitrix24_event_from_form(form: Mapping[str, Any]) -> Bitrix24Event:
    """The event of a POSTed form. Raises ValidationError (its detail: field -> messages) when it is
    malformed, MalformedPayloadError when the form's keys do not even nest (`data[FIELDS]` given
    both as a value and as an object)."""
    nested = unflatten_form(form)
    plain = event_fast(nested)  # the common shape, read without DRF (accounts/event_fast.py)
    if plain is not None:
        return plain
    serializer = Bitrix24EventSerializer(data=nested)
    serializer.is_valid(raise_exception=True)
    return serializer.event_of()
