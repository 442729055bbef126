"""Budget-aware pushing (sync/services/xero_budget.py, sync/services/debounce.py): when the day's Xero
budget would not last, automatic passes are spaced out, a click still goes at once, and the reason
is shown. Usage is made the way production makes it: calls admitted by the real throttle, and
X-DayLimit-Remaining as Xero answers it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import XeroConnection
from integrations.common.errors import RateLimitedError
from integrations.common.throttle import xero_observe, xero_slot
from sync.models import SyncJob, Trigger
from sync.services.debounce import push_quiet_wait
from sync.services.xero_budget import MAX_GAP_S, push_budget_pace, xero_budget_today
from tests.factories import SyncJobFactory


@pytest.fixture
def starter(settings, lone_portal):
    """A Starter-tier organisation (1,000 calls a day, as Xero's headers tell) with the default reserve:
    a tenth of its learnt limit (100) kept for clicks, not the absolute 500 meant for the 5,000 tier."""
    settings.XERO_DAILY_LIMIT = 5000  # the deployment's default: the organisation's own limit is learnt
    settings.XERO_DAILY_RESERVE, settings.XERO_DAILY_RESERVE_SHARE = 500, 0.10
    settings.XERO_MINUTE_LIMIT = 100000
    settings.XERO_APP_MINUTE_LIMIT = 100000
    settings.PUSH_BUDGET_HORIZON_H = 8.0
    settings.PUSH_QUIET_S, settings.PUSH_MAX_WAIT_S = 0.8, 30.0
    tenant = XeroConnection.objects.get(portal=lone_portal).tenant_id
    return lone_portal, tenant


def _spend(tenant: str, calls: int, day_limit: int = 1000) -> None:
    for _ in range(calls):
        with xero_slot(tenant):
            pass
    xero_observe(tenant, {"X-DayLimit-Remaining": str(day_limit - calls)})


def _job(portal, target: str, *, status=SyncJob.Status.PENDING, priority=SyncJob.Priority.EVENT, age_s=0.0):
    now = timezone.now()
    job = SyncJobFactory(
        portal=portal,
        kind=SyncJob.Kind.PUSH_INVOICE,
        target=target,
        trigger=Trigger.EVENT,
        priority=priority,
        status=status,
        not_before=now - timedelta(seconds=age_s),
    )
    SyncJob.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=age_s), updated_at=now - timedelta(seconds=age_s)
    )
    return job


def test_the_organisations_limit_is_learnt_from_xeros_remaining_count(starter):
    portal, tenant = starter
    _spend(tenant, 10)
    budget = xero_budget_today(portal)
    assert budget.limit == 1000 and budget.used == 10 and not budget.pacing


def test_a_pace_that_would_outrun_the_day_spaces_automatic_passes_and_says_why(starter):
    portal, tenant = starter
    _spend(tenant, 300)  # 300 calls within the last hour or two: 8 more hours of that is far over 900
    budget = push_budget_pace(portal.pk)
    assert budget.pacing
    assert budget.gap_s == pytest.approx(8 * 3600 / (900 - 300), rel=0.01)  # 48 s: the rest lasts 8 h
    _job(portal, "31:1", status=SyncJob.Status.DONE, age_s=10)  # the last pass, 10 s ago
    _job(portal, "31:2", age_s=5)  # quiet for 5 s: without pacing it would go now
    plan = push_quiet_wait(portal_id=portal.pk)
    assert 37 <= plan.wait_s <= 38.1
    assert "Xero budget" in plan.why and "button still sends at once" in plan.why

    # A person's click is never paced.
    _job(portal, "31:3", priority=SyncJob.Priority.USER)
    assert push_quiet_wait(portal_id=portal.pk).wait_s == 0


def test_pacing_aims_at_the_reserve_the_throttle_enforces(starter):
    portal, tenant = starter
    _spend(tenant, 890)  # 10 calls left above the 100 kept for clicks
    budget = push_budget_pace(portal.pk)
    assert budget.limit == 1000
    assert budget.gap_s == pytest.approx(8 * 3600 / 10, rel=0.01)  # the last 10 background calls last 8 h
    for _ in range(10):  # ... and the throttle admits exactly those 10
        with xero_slot(tenant):
            pass
    with pytest.raises(RateLimitedError), xero_slot(tenant):
        pass
    assert push_budget_pace(portal.pk).gap_s == MAX_GAP_S


def test_once_the_gap_has_passed_the_next_pass_goes(starter):
    portal, tenant = starter
    _spend(tenant, 300)
    _job(portal, "31:1", status=SyncJob.Status.DONE, age_s=60)
    _job(portal, "31:2", age_s=5)
    plan = push_quiet_wait(portal_id=portal.pk)
    assert plan.wait_s == 0 and plan.why.startswith("quiet for")


def test_the_gap_grows_as_the_budget_shrinks(starter):
    portal, tenant = starter
    _spend(tenant, 300)
    early = push_budget_pace(portal.pk).gap_s
    _spend(tenant, 400, day_limit=700)  # Xero now says 300 left of 1,000
    late = push_budget_pace(portal.pk)
    assert late.used == 700 and late.gap_s > 2 * early


def test_a_pace_the_day_can_carry_is_not_paced(starter):
    portal, tenant = starter
    _spend(tenant, 50)  # 50 an hour for 8 more hours: 450 of 900
    assert not push_budget_pace(portal.pk).pacing
    _job(portal, "31:1", status=SyncJob.Status.DONE, age_s=1)
    _job(portal, "31:2", age_s=5)
    assert push_quiet_wait(portal_id=portal.pk).wait_s == 0


def test_setup_and_a_queued_invoice_show_the_reason(starter):
    portal, tenant = starter
    _spend(tenant, 300)
    budget = xero_budget_today(portal)
    html = render_to_string("sync/_budget_pacing.html", {"budget": budget})
    assert 'data-test="xero-budget-pacing"' in html
    assert "one every 48 s" in html and "still sends at once" in html


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("ru", ["запросах к Xero в час дневной лимит", "одна раз в 48 с.", "«Создать / изменить в Xero»"]),
        (
            "de",
            ["Xero-Aufrufen pro Stunde wäre das Tageskontingent", "eine alle 48 s.", "„In Xero anlegen / bearbeiten“"],
        ),
    ],
)
def test_the_reason_speaks_russian_and_german(starter, lang, words):
    portal, tenant = starter
    _spend(tenant, 300)
    budget = xero_budget_today(portal)
    with translation.override(lang):
        html = render_to_string("sync/_budget_pacing.html", {"budget": budget})
    assert "Xero calls an hour" not in html
    for word in words:
        assert word in html
    with translation.override("ru"):
        assert xero_budget_today(portal).gap_text == "48 с" and budget.gap_text == "48 с"
