"""The JSON bodies the pages accept, validated by DRF serializers (sync/web/serializers.py)."""

from __future__ import annotations

import pytest

from sync.web.serializers import InvoicePushRequest


@pytest.mark.parametrize(
    ("body", "ids"),
    [({"ids": [1, "2", 2]}, [1, 2]), ({"ids": "3, 4"}, [3, 4]), ({}, [])],
)
def test_push_ids_are_positive_whole_numbers_in_order_without_duplicates(body, ids):
    parsed = InvoicePushRequest(data=body)
    assert parsed.is_valid(), parsed.errors
    assert parsed.validated_data["ids"] == ids


@pytest.mark.parametrize(
    "body",
    [
        {"ids": ["x"]},
        {"ids": [0]},
        {"ids": [[1]]},
        {"ids": {"a": 1}},
        {"ids": None},
        {"ids": ["9" * 19]},
        {"all_filtered": "perhaps"},
        {"from": {"nested": "object"}},
    ],
)
def test_a_malformed_push_body_is_refused_naming_the_field(body):
    parsed = InvoicePushRequest(data=body)
    assert not parsed.is_valid()
    assert set(parsed.errors) == set(body)
