"""Bitrix24's leaky bucket on the fake portal: 50 requests of burst, drained at 2 per second."""

from __future__ import annotations

import time

import pytest

from tests.sandbox.bitrix24_rest_helpers import Portal


@pytest.fixture
def portal(sandbox) -> Portal:
    return Portal(sandbox)


# A sandbox clock 100 times slower than real time: draining one request takes 50 real seconds, so
# a burst counts exactly however slowly a loaded machine sends it.
FROZEN = 0.01


def _statuses(portal: Portal, n: int) -> list[int]:
    return [portal.call("crm.currency.base.get").status_code for _ in range(n)]


def test_with_limits_off_there_is_no_bucket(portal):
    assert set(_statuses(portal, 70)) == {200}


def test_after_the_burst_of_50_requests_the_portal_answers_503_query_limit_exceeded(portal, sandbox):
    sandbox.limits(True, time_scale=FROZEN)
    statuses = _statuses(portal, 60)
    assert statuses == [200] * 50 + [503] * 10
    body = portal.call("crm.currency.base.get").json()
    assert body == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}


def test_the_bucket_drains_at_2_per_second_on_the_sandbox_clock(portal, sandbox):
    sandbox.limits(True, time_scale=FROZEN)
    _statuses(portal, 55)
    assert portal.call("crm.currency.base.get").status_code == 503
    sandbox.limits(True, time_scale=20)  # 0.25 real seconds = 5 sandbox seconds = 10 requests
    time.sleep(0.25)
    assert _statuses(portal, 5) == [200] * 5


def test_a_batch_counts_as_one_request(portal, sandbox):
    sandbox.limits(True, time_scale=1)
    cmd = {f"c{n}": "crm.currency.base.get" for n in range(50)}
    for _ in range(45):
        assert portal.call("batch", {"cmd": cmd}).status_code == 200
    assert set(_statuses(portal, 4)) == {200}


def test_refused_requests_do_not_fill_the_bucket_further(portal, sandbox):
    sandbox.limits(True, time_scale=FROZEN)
    _statuses(portal, 50)
    assert set(_statuses(portal, 20)) == {503}
    sandbox.limits(True, time_scale=10)
    time.sleep(0.15)  # 1.5 sandbox seconds drain 3 requests, however many were refused
    assert _statuses(portal, 2) == [200, 200]
