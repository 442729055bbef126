"""The fast reading of a Xero webhook body (sync/views/xero_webhook_fast.py) never disagrees with
the DRF serializer, the one definition of a valid body: on any body it reads, the serializer accepts
it and makes the same payload; the body Xero's description shows is read fast."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sync.views.serializers import XeroWebhookSerializer, xero_webhook_from_body
from sync.views.xero_webhook_fast import webhook_fast

# The example of xero-webhooks.yaml (spec/xero), one invoice event.
DOCUMENTED = {
    "events": [
        {
            "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/55d84274-a3da-4829-a7c0-0cab601b95cc",
            "resourceId": "55d84274-a3da-4829-a7c0-0cab601b95cc",
            "eventDateUtc": "2017-06-21T01:15:39.902",
            "eventType": "Update",
            "eventCategory": "INVOICE",
            "tenantId": "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f",
            "tenantType": "ORGANISATION",
        }
    ],
    "lastEventSequence": 1,
    "firstEventSequence": 1,
    "entropy": "S0m3r4Nd0mt3xt",
}


def serializer_payload(body: dict[str, Any]):
    serializer = XeroWebhookSerializer(data=body)
    return serializer.payload_of() if serializer.is_valid() else None


def test_the_documented_body_is_read_fast_and_as_the_serializer_reads_it():
    fast = webhook_fast(copy.deepcopy(DOCUMENTED))
    assert fast is not None and fast == serializer_payload(copy.deepcopy(DOCUMENTED))
    assert fast.events[0].event_type == "UPDATE" and fast.events[0].raw == DOCUMENTED["events"][0]
    assert xero_webhook_from_body(json.dumps(DOCUMENTED).encode()) == fast


_VALUE = st.one_of(
    st.sampled_from(["", " ", "x", " x", "x ", "INVOICE", "update", "é", "\x00", 5, 0, -1, 1.0, True, None, [], {}]),
    st.text(max_size=8),
)
_EVENT_KEYS = [
    "resourceUrl",
    "resourceId",
    "eventDateUtc",
    "eventType",
    "eventCategory",
    "tenantId",
    "tenantType",
    "data",
    "extra",
]
_BODY_KEYS = ["events", "firstEventSequence", "lastEventSequence", "entropy", "extra"]


@st.composite
def bodies(draw) -> dict[str, Any]:
    body = copy.deepcopy(DOCUMENTED)
    if draw(st.booleans()):
        body["events"].append(copy.deepcopy(body["events"][0]))
    for key in draw(st.lists(st.sampled_from(_BODY_KEYS), max_size=2, unique=True)):
        if draw(st.booleans()) and key in body:
            del body[key]
        else:
            body[key] = copy.deepcopy(draw(st.one_of(_VALUE, st.lists(_VALUE, max_size=2))))  # [] and {} are shared
    for event in body["events"] if isinstance(body.get("events"), list) else []:
        if not isinstance(event, dict):
            continue
        for key in draw(st.lists(st.sampled_from(_EVENT_KEYS), max_size=3, unique=True)):
            if draw(st.booleans()) and key in event:
                del event[key]
            else:
                value = draw(
                    st.one_of(_VALUE, st.dictionaries(st.sampled_from(["Type", "Status"]), _VALUE, max_size=2))
                )
                event[key] = copy.deepcopy(value)  # [] and {} of _VALUE are shared
    return body


def _edited(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(DOCUMENTED)
    for key, value in changes.items():
        if key in DOCUMENTED:
            body[key] = value
        else:
            body["events"][0][key] = value
    return body


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
@example(_edited(data=[]))
@example(_edited(data=""))
@example(_edited(data=None))
@example(_edited(lastEventSequence=True))
@example(_edited(firstEventSequence=1.0))
@example(_edited(entropy=" x"))
@example(_edited(tenantId=5))
def test_what_the_fast_reading_accepts_the_serializer_accepts_as_the_same_payload(body):
    fast = webhook_fast(copy.deepcopy(body))
    if fast is not None:
        assert serializer_payload(copy.deepcopy(body)) == fast
