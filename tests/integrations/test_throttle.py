"""The shared throttles against real Redis (and, once, without it), with time compressed.

RATE_LIMIT_TIME_SCALE=60 makes a Xero minute last one real second; real threads and a real killed
process stand in for workers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from integrations.common.errors import RateLimitedError
from integrations.common.throttle import bitrix24_penalize, bitrix24_slot, xero_observe, xero_penalize, xero_slot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast(settings):
    settings.RATE_LIMIT_TIME_SCALE = 60.0  # a Xero minute is 1 s; Bitrix24 drains 120/s
    return settings


def _hold_slots_concurrently(tenant: str, callers: int, limit: int = 5) -> tuple[int, int]:
    """`callers` threads each take a slot and keep it until the test lets go. Returns (how many held
    one once `limit` were in and the rest had time to push in, the most ever seen at once).

    Not timing-fragile: the holders wait for the release, however slow the machine, so reaching the
    limit does not depend on threads happening to overlap."""
    in_flight = peak = 0
    guard = threading.Lock()
    release = threading.Event()

    def caller():
        nonlocal in_flight, peak
        with xero_slot(tenant):
            with guard:
                in_flight += 1
                peak = max(peak, in_flight)
            release.wait(20)
            with guard:
                in_flight -= 1

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while in_flight < limit and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the waiting callers had time to get a slot, were the limit not enforced
    held = in_flight
    release.set()
    for t in threads:
        t.join()
    return held, peak


def test_no_more_than_five_calls_are_in_flight_for_one_tenant(fast):
    held, peak = _hold_slots_concurrently("tenant-a", callers=12)
    assert held == 5 and peak == 5  # the limit is reached (callers waiting) and never passed


def test_other_tenants_do_not_share_a_tenants_slots(fast):
    with contextlib.ExitStack() as held:
        for _ in range(5):
            held.enter_context(xero_slot("tenant-a"))
        started = time.monotonic()
        with xero_slot("tenant-b"):
            pass
        assert time.monotonic() - started < 0.2


def test_calls_beyond_the_minute_limit_wait_for_the_rolling_window(fast):
    fast.XERO_MINUTE_LIMIT = 10
    stamps = []
    for _ in range(25):
        with xero_slot("tenant-a"):
            stamps.append(time.monotonic())
    # 25 calls at 10 per (1 s) minute: the 11th and 21st had to wait for the window to roll.
    assert stamps[-1] - stamps[0] >= 2.0
    for i, start in enumerate(stamps):
        assert sum(1 for s in stamps[i:] if s < start + 1.0) <= 10


def test_a_slot_of_a_killed_worker_is_freed_when_its_lease_ends(fast):
    """A process takes all five slots with a 1 s lease and is SIGKILLed inside them."""
    env = dict(os.environ, XERO_SLOT_LEASE_S="1", DJANGO_SETTINGS_MODULE="connector.settings")
    script = (
        "import os, django; django.setup()\n"
        "from contextlib import ExitStack\n"
        "from integrations.common.throttle import xero_slot\n"
        "stack = ExitStack()\n"
        "for _ in range(5): stack.enter_context(xero_slot('tenant-k'))\n"
        "print('holding', flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "holding" in done.stdout, done.stderr
    assert done.returncode == -9

    with pytest.raises(RateLimitedError) as refused, xero_slot("tenant-k", max_wait=0.2):
        pass
    assert refused.value.code == "concurrent"
    started = time.monotonic()
    with xero_slot("tenant-k", max_wait=5):
        pass
    assert time.monotonic() - started < 2.0


def test_background_calls_stop_at_the_daily_reserve_but_interactive_calls_may_spend_it(fast):
    fast.XERO_DAILY_LIMIT = 5
    fast.XERO_DAILY_RESERVE = 2
    fast.XERO_DAILY_RESERVE_SHARE = 1.0  # all of the day, capped at 2
    for _ in range(3):
        with xero_slot("tenant-a"):
            pass
    with pytest.raises(RateLimitedError) as refused, xero_slot("tenant-a"):
        pass
    assert refused.value.code == "day"
    assert refused.value.retry_after > 0
    for _ in range(2):
        with xero_slot("tenant-a", interactive=True):
            pass
    with pytest.raises(RateLimitedError), xero_slot("tenant-a", interactive=True):
        pass


def test_a_penalized_tenant_waits_out_retry_after(fast):
    xero_penalize("tenant-a", 0.5, "minute")
    started = time.monotonic()
    with xero_slot("tenant-a"):
        waited = time.monotonic() - started
    assert 0.4 <= waited < 1.5


def test_a_penalty_longer_than_the_longest_wait_raises_with_retry_after(fast):
    xero_penalize("tenant-a", 120, "day")
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as refused, xero_slot("tenant-a", max_wait=1):
        pass
    assert time.monotonic() - started < 0.5  # no pointless sleeping first
    assert 100 < refused.value.retry_after <= 120
    assert refused.value.code == "day"


def test_xeros_remaining_minute_count_makes_the_next_call_wait(fast):
    xero_observe("tenant-a", {"X-MinLimit-Remaining": "0", "X-DayLimit-Remaining": "4000"})
    started = time.monotonic()
    with xero_slot("tenant-a"):
        waited = time.monotonic() - started
    assert waited >= 0.8  # the (1 s) minute had to roll first


def test_xeros_remaining_day_count_stops_background_calls(fast):
    fast.XERO_DAILY_RESERVE = 10
    fast.XERO_DAILY_RESERVE_SHARE = 1.0
    xero_observe("tenant-a", {"x-daylimit-remaining": "10"})
    with pytest.raises(RateLimitedError) as refused, xero_slot("tenant-a"):
        pass
    assert refused.value.code == "day"
    with xero_slot("tenant-a", interactive=True):
        pass


def test_an_interactive_call_goes_before_a_waiting_background_call(fast):
    order: list[str] = []
    release = threading.Event()

    def holder():
        with xero_slot("tenant-a"):
            release.wait(5)

    def caller(name: str, interactive: bool):
        with xero_slot("tenant-a", interactive=interactive):
            order.append(name)

    holders = [threading.Thread(target=holder) for _ in range(5)]
    for t in holders:
        t.start()
    time.sleep(0.2)
    background = threading.Thread(target=caller, args=("background", False))
    background.start()
    time.sleep(0.1)
    interactive = threading.Thread(target=caller, args=("interactive", True))
    interactive.start()
    time.sleep(0.1)
    release.set()
    for t in [*holders, background, interactive]:
        t.join(5)
    assert order == ["interactive", "background"]


def test_a_bitrix24_portal_gets_its_burst_at_once_then_the_drain_rate(settings):
    settings.RATE_LIMIT_TIME_SCALE = 10.0  # drains 20 per real second
    started = time.monotonic()
    for _ in range(50):
        with bitrix24_slot("member-1"):
            pass
    burst = time.monotonic() - started
    for _ in range(20):
        with bitrix24_slot("member-1"):
            pass
    drained = time.monotonic() - started - burst
    assert burst < 0.5
    assert 0.8 <= drained < 2.0


def test_a_penalized_bitrix24_portal_raises_when_the_wait_is_too_long(settings):
    bitrix24_penalize("member-1", 60)
    with pytest.raises(RateLimitedError) as refused, bitrix24_slot("member-1", max_wait=0.5):
        pass
    assert refused.value.system == "bitrix24"
    assert 50 < refused.value.retry_after <= 60


def test_without_redis_the_same_limits_hold_within_one_process(fast):
    fast.REDIS_URL = ""
    from connector.coordination import redis_client

    assert redis_client() is None
    assert _hold_slots_concurrently("tenant-local", callers=9) == (5, 5)
    fast.XERO_MINUTE_LIMIT = 10
    stamps = []
    for _ in range(15):
        with xero_slot("tenant-local-2"):
            stamps.append(time.monotonic())
    assert stamps[-1] - stamps[0] >= 0.9


@pytest.mark.parametrize("backend", ["redis", "in-process"])
def test_the_daily_budget_used_is_readable_for_metrics(settings, backend):
    from integrations.common.throttle import xero_daily_usage

    if backend == "in-process":
        settings.REDIS_URL = ""
    tenant = f"tenant-budget-{backend}"
    assert xero_daily_usage(tenant) == (0, None)
    for _ in range(3):
        with xero_slot(tenant):
            pass
    xero_observe(tenant, {"X-DayLimit-Remaining": "4990"})
    assert xero_daily_usage(tenant) == (3, 4990)


@pytest.mark.parametrize("backend", ["redis", "in-process"])
def test_room_in_the_minute_is_readable_so_a_pass_can_give_its_worker_back(settings, backend):
    from integrations.common.throttle import xero_room_wait

    if backend == "in-process":
        settings.REDIS_URL = ""
    settings.XERO_MINUTE_LIMIT = 10
    tenant = f"tenant-room-{backend}"
    assert xero_room_wait(tenant, 5) == 0
    for _ in range(8):
        with xero_slot(tenant):
            pass
    assert xero_room_wait(tenant, 2) == 0  # 8 + 2 fit in 10
    assert 55 < xero_room_wait(tenant, 5) <= 60.1  # 3 of the 8 must leave the rolling minute first
    xero_penalize(tenant, 90)
    assert 85 < xero_room_wait(tenant, 1) <= 90


@pytest.mark.parametrize("backend", ["redis", "in-process"])
def test_the_recent_pace_is_readable_for_budget_pacing(settings, backend):
    from integrations.common.throttle import xero_recent_usage

    if backend == "in-process":
        settings.REDIS_URL = ""
    tenant = f"tenant-pace-{backend}"
    calls, hours = xero_recent_usage(tenant)
    assert calls == 0 and 1.0 <= hours <= 2.0
    for _ in range(4):
        with xero_slot(tenant):
            pass
    calls, hours = xero_recent_usage(tenant)
    assert calls == 4 and 1.0 <= hours <= 2.0


@pytest.mark.parametrize("backend", ["redis", "in-process"])
def test_a_starter_organisation_keeps_a_share_of_its_own_limit_for_clicks(settings, backend):
    """XERO_DAILY_RESERVE (500) sized for the 5,000 tier would stop a Starter organisation's (1,000)
    background work half-way; the reserve is XERO_DAILY_RESERVE_SHARE of the limit Xero's count
    reveals: 100 of 1,000."""
    from integrations.common.throttle import xero_daily_reserve

    if backend == "in-process":
        settings.REDIS_URL = ""
    settings.XERO_DAILY_LIMIT, settings.XERO_DAILY_RESERVE, settings.XERO_DAILY_RESERVE_SHARE = 5000, 500, 0.10
    settings.XERO_MINUTE_LIMIT = settings.XERO_APP_MINUTE_LIMIT = 100000
    assert xero_daily_reserve(5000) == 500 and xero_daily_reserve(1000) == 100
    tenant = f"tenant-starter-{backend}"
    for _ in range(890):
        with xero_slot(tenant):
            pass
    xero_observe(tenant, {"X-DayLimit-Remaining": "110"})  # 890 of 1,000 spent: a Starter organisation
    for _ in range(10):  # background work may go on down to the last 100 (an absolute 500: none of these)
        with xero_slot(tenant):
            pass
    with pytest.raises(RateLimitedError) as refused, xero_slot(tenant):
        pass
    assert refused.value.code == "day"
    with xero_slot(tenant, interactive=True):  # the 100 are the clicks'
        pass

    settings.XERO_DAILY_RESERVE = 50  # the absolute setting caps the share: 50 kept, not 100
    assert xero_daily_reserve(1000) == 50
    for _ in range(49):
        with xero_slot(tenant):
            pass
    with pytest.raises(RateLimitedError), xero_slot(tenant):
        pass
