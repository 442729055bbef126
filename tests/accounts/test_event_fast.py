"""The fast reading of a Bitrix24 event (accounts/event_fast.py) never disagrees with the DRF
serializer, the one definition of a valid event: on any form it reads, the serializer accepts the
form and makes the same event; the forms Bitrix24's documentation shows are read fast."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.event_fast import event_fast
from accounts.event_payload import Bitrix24EventSerializer, bitrix24_event_from_form
from integrations.bitrix24.inbound import unflatten_form

# api-reference/events/index.md, "Event Sent to an Application", as the form Bitrix24 POSTs.
DOCUMENTED = {
    "event": "ONCRMDEALADD",
    "event_handler_id": "185",
    "data[FIELDS][ID]": "7405",
    "ts": "1766047124",
    "auth[access_token]": "s6p6eclrvim6da22ft9ch94ekreb52lv",
    "auth[expires_in]": "3600",
    "auth[scope]": "crm",
    "auth[domain]": "some-domain.bitrix24.com",
    "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
    "auth[status]": "L",
    "auth[client_endpoint]": "https://some-domain.bitrix24.com/rest/",
    "auth[member_id]": "d897063e1ce7c5eb9f04b9751eef5915",
    "auth[application_token]": "51856fefc120afa4b628cc82d3935cce",
}
# The same page's "Event Sent to an Outgoing Webhook": no tokens, no user.
WEBHOOK_SHAPED = {
    key: value
    for key, value in DOCUMENTED.items()
    if key not in ("auth[access_token]", "auth[expires_in]", "auth[scope]", "auth[status]")
}


def serializer_event(nested: dict[str, Any]):
    serializer = Bitrix24EventSerializer(data=nested)
    return serializer.event_of() if serializer.is_valid() else None


def test_the_documented_events_are_read_fast_and_as_the_serializer_reads_them():
    for form in (DOCUMENTED, WEBHOOK_SHAPED):
        nested = unflatten_form(form)
        fast = event_fast(nested)
        assert fast is not None and fast == serializer_event(nested)
        assert bitrix24_event_from_form(form) == fast
    assert event_fast(unflatten_form(DOCUMENTED)).auth.expires_in == 3600


_TEXT = st.one_of(
    st.sampled_from(
        ["", " ", "x", " x", "x ", "abc", "ÿ", "\x00", "a" * 65, "a" * 256, "1", "0", "-1", "1.0", "1.5", "007"]
    ),
    st.text(max_size=12),
)
_URL = st.one_of(
    st.sampled_from(
        [
            "https://p.bitrix24.com/rest/",
            "http://p/",
            "https://",
            "ftp://p/",
            "javascript:alert(1)",
            " https://p/",
            "http://[::1",
            "",
        ]
    ),
    st.text(max_size=12),
)
_NUMBER = st.one_of(
    st.sampled_from(["", " ", "1", "0", "12", "-3", "1.0", "1e3", "x", "9" * 19, "²", " 5"]), st.text(max_size=6)
)
_NESTED = st.one_of(
    _TEXT, st.lists(_TEXT, max_size=2), st.dictionaries(st.sampled_from(["ID", "X"]), _TEXT, max_size=2)
)

_FIELDS: dict[str, st.SearchStrategy] = {
    "event": _TEXT,
    "event_handler_id": _NUMBER,
    "ts": _NUMBER,
    "extra": _TEXT,
    "auth.member_id": _TEXT,
    "auth.domain": _TEXT,
    "auth.application_token": _TEXT,
    "auth.client_endpoint": _URL,
    "auth.server_endpoint": _URL,
    "auth.access_token": _TEXT,
    "auth.scope": _NESTED,
    "auth.user_id": _NUMBER,
    "auth.expires": _NUMBER,
    "auth.issuer": _TEXT,
}


@st.composite
def forms(draw) -> dict[str, Any]:
    nested = unflatten_form(WEBHOOK_SHAPED)
    for name in draw(st.lists(st.sampled_from(sorted(_FIELDS)), max_size=4, unique=True)):
        where, key = (nested["auth"], name[5:]) if name.startswith("auth.") else (nested, name)
        if draw(st.booleans()) and key in where:
            del where[key]
        else:
            where[key] = draw(_FIELDS[name])
    if draw(st.booleans()):
        nested["data"] = draw(st.one_of(_NESTED, st.just({"FIELDS": {"ID": "5", "ENTITY_TYPE_ID": "31"}})))
    if draw(st.integers(0, 9)) == 0:
        nested["auth"] = draw(_TEXT)
    return nested


def _edited(**changes: Any) -> dict[str, Any]:
    nested = unflatten_form(WEBHOOK_SHAPED)
    for key, value in changes.items():
        if key.startswith("auth_"):
            nested["auth"][key[5:]] = value
        else:
            nested[key] = value
    return nested


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forms())
@example(_edited(ts=" 5"))
@example(_edited(ts="1.0"))
@example(_edited(event_handler_id="-1"))
@example(_edited(auth_domain=" p.bitrix24.com"))
@example(_edited(auth_client_endpoint="http://[::1"))
@example(_edited(auth_server_endpoint=" "))
@example(_edited(auth_member_id="a" * 65))
@example(_edited(auth_scope=["crm"]))
@example(_edited(data=[]))
@example(_edited(data="x"))
@example(_edited(event="onapp\x00"))
def test_what_the_fast_reading_accepts_the_serializer_accepts_as_the_same_event(nested):
    fast = event_fast(nested)
    if fast is not None:
        assert serializer_event(nested) == fast
