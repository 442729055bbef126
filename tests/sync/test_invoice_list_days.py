"""The invoice list's "Changed from / to" counts the page's days: a day runs from local midnight to
the next in the zone the page shows its times in (the user's Bitrix24 zone, else the portal's, else
UTC), for the list, for old invoices and for "Create / Edit all filtered on Xero".

On the real stack: the sandbox portal (its users' TIME_ZONE in user.current, the invoices' last
change set with /_sandbox/bitrix24/invoices/updated), the connector's live server, PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import pytest

from sync.models import SyncJob
from sync.services.invoice_list import InvoiceFilter, day_start
from tests.sync.test_old_invoices import install, old_invoice, rest
from tests.sync.test_pages_invoices import add_invoices, page, post_json, row_ids, signed_in

pytestmark = pytest.mark.django_db(transaction=True)

AUCKLAND = ZoneInfo("Pacific/Auckland")  # +13:00 in December (NZDT), +12:00 in winter

# When each invoice last changed (UTC), and what that is in Auckland.
CHANGED = {
    "before": "2026-12-05T10:59:59+00:00",  # 5 Dec 23:59:59 in Auckland
    "midnight": "2026-12-05T11:00:00+00:00",  # 6 Dec 00:00:00 in Auckland: the day's first instant
    "morning": "2026-12-05T20:00:00+00:00",  # 6 Dec 09:00 in Auckland, still 5 Dec in UTC
    "last": "2026-12-06T10:59:59+00:00",  # 6 Dec 23:59:59 in Auckland
    "next": "2026-12-06T11:00:00+00:00",  # 7 Dec 00:00:00 in Auckland: the next day
}


def changed_at(sandbox, user: dict, entity_type: int = 31, ids: list[int] | None = None) -> dict[str, int]:
    """One invoice per moment of CHANGED (new ones unless `ids` are given), its last change set there."""
    ids = ids or add_invoices(sandbox, user, len(CHANGED))
    for invoice_id, at in zip(ids, CHANGED.values(), strict=True):
        sandbox.bitrix24_updated_at(entity_type, invoice_id, at)
    return dict(zip(CHANGED, ids, strict=True))


def listed(frame, app_url: str, **query) -> set[int]:
    response, soup = page(frame, app_url, size=100, **query)
    assert response.status_code == 200, response.text[:500]
    return set(row_ids(soup))


def test_a_day_is_the_users_day_from_local_midnight_to_the_next(sandbox, acme, app_url):
    kiri = sandbox.bitrix24_user("Kiri Auckland", invoices="all", time_zone="Pacific/Auckland")
    uma = sandbox.bitrix24_user("Uma UTC", invoices="all", time_zone="UTC")
    ids = changed_at(sandbox, kiri)
    on_6th = {"from": "2026-12-06", "to": "2026-12-06"}

    auckland = signed_in(sandbox, kiri)
    assert listed(auckland, app_url, **on_6th) == {ids["midnight"], ids["morning"], ids["last"]}
    assert listed(auckland, app_url, to="2026-12-05") == {ids["before"]}
    assert listed(auckland, app_url, **{"from": "2026-12-07"}) == {ids["next"]}
    _, soup = page(auckland, app_url, **on_6th)
    assert "Pacific/Auckland" in soup.select_one("[data-test=filter-zone]").get_text()

    # The same filter on a page in UTC: its 6 December starts 11 hours later.
    utc = signed_in(sandbox, uma)
    assert listed(utc, app_url, **on_6th) == {ids["last"], ids["next"]}
    assert listed(utc, app_url, to="2026-12-05") == {ids["before"], ids["midnight"], ids["morning"]}
    _, soup = page(utc, app_url, **on_6th)
    assert "whole days in UTC." in soup.select_one("[data-test=filter-zone]").get_text()


def test_create_all_filtered_on_xero_acts_on_the_days_the_list_showed(sandbox, acme, acme_xero, app_url):
    kiri = sandbox.bitrix24_user("Kiri Auckland", invoices="all", time_zone="Pacific/Auckland")
    ids = changed_at(sandbox, kiri)
    frame = signed_in(sandbox, kiri)
    shown = listed(frame, app_url, **{"from": "2026-12-06", "to": "2026-12-06"})
    answer = post_json(
        frame, app_url, "/app/invoices/push/", {"all_filtered": True, "from": "2026-12-06", "to": "2026-12-06"}
    )
    assert answer.status_code == 202, answer.text
    assert set(SyncJob.objects.values_list("target", flat=True)) == {f"31:{i}" for i in shown}
    assert shown == {ids["midnight"], ids["morning"], ids["last"]}


def test_old_invoices_count_the_same_days_on_date_update(sandbox, app_url):
    install(sandbox, app_url, "old")
    kiri = sandbox.bitrix24_user("Kiri Auckland", invoices="all", time_zone="Pacific/Auckland")
    uma = sandbox.bitrix24_user("Uma UTC", invoices="all", time_zone="UTC")
    company = rest(sandbox, kiri, "crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})
    ids = changed_at(sandbox, kiri, 5, [old_invoice(sandbox, kiri, company) for _ in CHANGED])
    on_6th = {"from": "2026-12-06", "to": "2026-12-06", "kind": 5}

    assert listed(signed_in(sandbox, kiri), app_url, **on_6th) == {ids["midnight"], ids["morning"], ids["last"]}
    assert listed(signed_in(sandbox, uma), app_url, **on_6th) == {ids["last"], ids["next"]}


def test_a_range_across_a_dst_change_keeps_local_midnights(sandbox, acme, app_url):
    """Auckland moves from +12:00 to +13:00 on 27 September 2026: 26 September starts at +12:00,
    29 September at +13:00 (a fixed offset would be an hour off at one end)."""
    kiri = sandbox.bitrix24_user("Kiri Auckland", invoices="all", time_zone="Pacific/Auckland")
    moments = {
        "before": "2026-09-25T11:59:59+00:00",  # 25 Sep 23:59:59 +12:00
        "first": "2026-09-25T12:00:00+00:00",  # 26 Sep 00:00 +12:00
        "last": "2026-09-28T10:59:59+00:00",  # 28 Sep 23:59:59 +13:00
        "after": "2026-09-28T11:00:00+00:00",  # 29 Sep 00:00 +13:00
    }
    ids = dict(zip(moments, add_invoices(sandbox, kiri, len(moments)), strict=True))
    for name, at in moments.items():
        sandbox.bitrix24_updated_at(31, ids[name], at)
    frame = signed_in(sandbox, kiri)
    assert listed(frame, app_url, **{"from": "2026-09-26", "to": "2026-09-28"}) == {ids["first"], ids["last"]}


def test_the_filters_bounds_are_each_days_first_instant_with_its_offset():
    flt = InvoiceFilter(date(2026, 9, 26), date(2026, 12, 6), zone=AUCKLAND)
    assert flt.bitrix24_filter() == {
        ">=updatedTime": "2026-09-26T00:00:00+12:00",
        "<updatedTime": "2026-12-07T00:00:00+13:00",
    }
    assert InvoiceFilter(date(2026, 12, 6), date(2026, 12, 6)).bitrix24_filter() == {
        ">=updatedTime": "2026-12-06T00:00:00+00:00",
        "<updatedTime": "2026-12-07T00:00:00+00:00",
    }
    # The ends of the calendar leave that side open instead of failing.
    assert InvoiceFilter(date.min, date.max, zone=AUCKLAND).bitrix24_filter() == {}
    assert InvoiceFilter(date.min, date.max).bitrix24_filter() == {">=updatedTime": "0001-01-01T00:00:00+00:00"}
    # Santiago skips midnight on 6 September 2026 (00:00 -> 01:00): that day starts at 01:00 -03:00,
    # 24 hours after the 5th's midnight (-04:00), and lasts 23 hours.
    santiago = ZoneInfo("America/Santiago")
    sixth = day_start(date(2026, 9, 6), santiago)
    assert sixth.isoformat() == "2026-09-06T01:00:00-03:00"
    assert sixth.astimezone(UTC) - day_start(date(2026, 9, 5), santiago).astimezone(UTC) == timedelta(hours=24)
    assert day_start(date(2026, 9, 7), santiago).astimezone(UTC) - sixth.astimezone(UTC) == timedelta(hours=23)
