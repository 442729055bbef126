"""The fake Xero's rate limits: concurrent, per minute, per day, per app minute; headers; Retry-After.

The limiter is driven in process on a real sandbox core (its clock and call log) for the arithmetic,
and through the sandbox process with a connected client for the wire behaviour. Time runs scaled so
a Xero minute lasts a few real seconds.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox.core import Sandbox
from sandbox.xero.limits import XeroLimiter
from tests.sandbox.openapi import XeroClient

TENANT = "tenant-a"


@pytest.fixture
def core():
    core = Sandbox()
    core.limits_enabled = True
    return core


@pytest.fixture
def limiter(core):
    return XeroLimiter(core)


def admit_many(limiter, count, tenant=TENANT):
    return [limiter.admit(tenant) for _ in range(count)]


# --- in process ----------------------------------------------------------------------------------
def test_the_61st_call_in_a_minute_is_refused_with_retry_after_in_real_seconds(core, limiter):
    core.clock.set_scale(10)
    assert admit_many(limiter, 60) == [None] * 60

    status, headers, _ = limiter.admit(TENANT)

    assert status == 429
    assert headers["X-Rate-Limit-Problem"] == "minute"
    assert headers["Retry-After"] == "6", "a sandbox minute at scale 10 is 6 real seconds"
    assert headers["X-MinLimit-Remaining"] == "0"


def test_the_minute_window_rolls_and_lets_calls_in_again(core, limiter):
    core.clock.set_scale(120)  # a minute lasts 0.5 s
    admit_many(limiter, 60)
    assert limiter.admit(TENANT) is not None

    time.sleep(0.55)

    assert limiter.admit(TENANT) is None


def test_remaining_headers_count_down_with_each_call(limiter):
    limiter.configure(day=1000)
    seen = []
    for _ in range(3):
        limiter.admit(TENANT)
        seen.append(limiter.headers(TENANT))

    assert [h["X-MinLimit-Remaining"] for h in seen] == ["59", "58", "57"]
    assert [h["X-DayLimit-Remaining"] for h in seen] == ["999", "998", "997"]
    assert [h["X-AppMinLimit-Remaining"] for h in seen] == ["9999", "9998", "9997"]
    assert limiter.headers("tenant-b")["X-MinLimit-Remaining"] == "60", "each tenant has its own minute"


def test_the_daily_budget_is_refused_with_the_wait_until_the_oldest_call_leaves_the_day(core, limiter):
    core.clock.set_scale(3600)  # a day lasts 24 s
    limiter.configure(day=5)
    admit_many(limiter, 5)

    status, headers, _ = limiter.admit(TENANT)

    assert (status, headers["X-Rate-Limit-Problem"]) == (429, "day")
    assert headers["X-DayLimit-Remaining"] == "0"
    assert 23 <= int(headers["Retry-After"]) <= 24


def test_the_app_minute_limit_counts_every_tenant(limiter):
    limiter.configure(app_minute=3)
    for tenant in ("t1", "t2", "t3"):
        assert limiter.admit(tenant) is None

    status, headers, _ = limiter.admit("t4")

    assert (status, headers["X-Rate-Limit-Problem"]) == (429, "appminute")
    assert headers["X-AppMinLimit-Remaining"] == "0"


def test_a_sixth_call_in_flight_is_refused_as_concurrent(core, limiter):
    in_flight = [core.call_started("xero", "GET", "/Organisation", "/Organisation", TENANT) for _ in range(6)]

    status, headers, _ = limiter.admit(TENANT)

    assert (status, headers["X-Rate-Limit-Problem"], headers["Retry-After"]) == (429, "concurrent", "1")
    core.call_finished(in_flight[0], 200)
    assert limiter.admit(TENANT) is None


def test_the_longest_wait_is_reported_when_several_limits_are_exceeded(limiter):
    limiter.configure(day=3, minute=3)
    admit_many(limiter, 3)

    assert limiter.admit(TENANT)[1]["X-Rate-Limit-Problem"] == "day"


def test_rejected_calls_do_not_count(core, limiter):
    core.clock.set_scale(120)  # a minute lasts 0.5 s
    admit_many(limiter, 60)
    refused = admit_many(limiter, 20)
    assert all(r is not None for r in refused)

    time.sleep(0.55)

    assert admit_many(limiter, 60) == [None] * 60
    assert limiter.admit(TENANT) is not None


def test_with_limits_off_nothing_is_refused_but_headers_still_count(core, limiter):
    core.limits_enabled = False

    assert admit_many(limiter, 70) == [None] * 70
    assert limiter.headers(TENANT)["X-MinLimit-Remaining"] == "0"


def test_concurrent_admissions_never_let_more_than_the_limit_through(limiter):
    limiter.configure(minute=100)
    barrier = threading.Barrier(20)

    def burst():
        barrier.wait()
        return [limiter.admit(TENANT) is None for _ in range(10)]

    with ThreadPoolExecutor(20) as pool:
        admitted = sum(sum(result) for result in pool.map(lambda _: burst(), range(20)))

    assert admitted == 100
    assert limiter.headers(TENANT)["X-MinLimit-Remaining"] == "0"


def test_a_new_time_scale_starts_fresh_windows(core, limiter):
    admit_many(limiter, 60)
    core.clock.set_scale(10)
    limiter.limits_changed()

    assert limiter.admit(TENANT) is None
    assert limiter.headers(TENANT)["X-MinLimit-Remaining"] == "59"


def test_reset_forgets_counts_and_restores_default_limits(limiter):
    limiter.configure(day=10)
    admit_many(limiter, 3)

    limiter.reset()

    assert limiter.headers(TENANT) == {
        "X-DayLimit-Remaining": "5000",
        "X-MinLimit-Remaining": "60",
        "X-AppMinLimit-Remaining": "10000",
    }


# --- through the sandbox process -----------------------------------------------------------------
@pytest.fixture
def xero(sandbox):
    return XeroClient.connect(sandbox)


def test_every_api_response_carries_the_remaining_headers_counting_down(sandbox, xero):
    first = xero.get("/Organisation")
    second = xero.get("/Organisation")

    for name in ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert int(second.headers[name]) == int(first.headers[name]) - 1, name


def test_the_61st_api_call_in_a_scaled_minute_gets_429_minute(sandbox, xero):
    sandbox.limits(True, time_scale=10)
    statuses = [xero.get("/Organisation").status_code for _ in range(60)]
    assert set(statuses) == {200}

    refused = xero.get("/Organisation")

    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 6


def test_six_slow_calls_at_once_get_one_429_concurrent(sandbox, xero):
    sandbox.limits(True, time_scale=1)
    sandbox.fault("xero", "GET /Organisation", delay_s=1, times=6)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: xero.get("/Organisation"), range(6)))

    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == 1 and sorted(r.status_code for r in responses) == [200] * 5 + [429]
    assert refused[0].headers["X-Rate-Limit-Problem"] == "concurrent"
    assert int(refused[0].headers["Retry-After"]) >= 1


def test_a_starter_tier_daily_budget_set_through_the_control_api_is_enforced(sandbox, xero):
    url = f"{sandbox.base_url}/_sandbox/xero/limits"
    assert requests.post(url, json={"day": 3}, timeout=5).json() == {
        "concurrent": 5,
        "minute": 60,
        "day": 3,
        "app_minute": 10000,
    }
    assert requests.post(url, json={"day": 0}, timeout=5).status_code == 400
    sandbox.limits(True)

    statuses = [xero.get("/Organisation").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = xero.get("/Organisation")
    assert refused.headers["X-Rate-Limit-Problem"] == "day"
    assert int(refused.headers["Retry-After"]) > 80000
    sandbox.reset()
    assert requests.get(url, timeout=5).json()["day"] == 5000


def test_waiting_out_retry_after_gets_the_next_call_through(sandbox, xero):
    requests.post(f"{sandbox.base_url}/_sandbox/xero/limits", json={"minute": 5}, timeout=5).raise_for_status()
    sandbox.limits(True, time_scale=30)  # a Xero minute lasts two real seconds
    assert [xero.get("/Organisation").status_code for _ in range(5)] == [200] * 5
    refused = xero.get("/Organisation")
    assert (refused.status_code, refused.headers["X-Rate-Limit-Problem"]) == (429, "minute")

    time.sleep(int(refused.headers["Retry-After"]))

    again = xero.get("/Organisation")
    assert again.status_code == 200
    assert int(again.headers["X-MinLimit-Remaining"]) >= 0


def test_errors_carry_the_remaining_headers_too(sandbox, xero):
    missing = xero.get("/Invoices/00000000-0000-4000-8000-000000000000")

    assert missing.status_code == 404
    assert int(missing.headers["X-MinLimit-Remaining"]) == 59
