"""Date fields as a real portal writes them, at UTC−10, −5, 0, +3 and +13: Xero gets the same day.

Bitrix24 writes `begindate`/`closedate` as UTC midnight of the day in the portal's offset
(`"begindate": "2024-07-23T02:00:00+02:00"`, api-reference/crm/universal/crm-item-update.md), so
west of UTC the local reading of the value is the evening before. The sandbox writes them the same
way for the `time_zone` set through `POST /_sandbox/bitrix24/settings`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from integrations.bitrix24.client import Bitrix24Client
from sync.mappers.invoice import calendar_date
from sync.models import SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.push import invoices_push_pending
from sync.services.stages import stage_map_refresh


def xero_day(value: str) -> str:
    """ "/Date(1788220800000+0000)/" as YYYY-MM-DD."""
    millis = int(value.removeprefix("/Date(").split("+")[0].split(")")[0])
    return datetime.fromtimestamp(millis / 1000, UTC).date().isoformat()


# (IANA zone, its offset, begindate 2026-09-01 as the portal writes it)
ZONES = [
    ("Pacific/Honolulu", "-10:00", "2026-08-31T14:00:00-10:00"),
    ("America/Bogota", "-05:00", "2026-08-31T19:00:00-05:00"),
    ("UTC", "+00:00", "2026-09-01T00:00:00+00:00"),
    ("Europe/Moscow", "+03:00", "2026-09-01T03:00:00+03:00"),
    ("Pacific/Tongatapu", "+13:00", "2026-09-01T13:00:00+13:00"),
]


@pytest.mark.parametrize(("zone", "offset", "written"), ZONES, ids=[z[1] for z in ZONES])
def test_a_date_written_as_utc_midnight_in_the_portals_offset_is_that_day(zone, offset, written):
    assert calendar_date(written) == "2026-09-01"


def test_the_documented_example_and_other_writers_forms_read_as_their_day():
    assert calendar_date("2024-07-23T02:00:00+02:00") == "2024-07-23"  # crm-item-update.md
    assert calendar_date("2024-06-18T02:00:00+02:00") == "2024-06-18"  # crm-item-add.md
    assert calendar_date("2026-03-10T00:00:00+03:00") == "2026-03-10"  # local midnight
    assert calendar_date("2026-03-10") == "2026-03-10"
    assert calendar_date("2026-03-10T15:30:00-05:00") == "2026-03-10"  # a date-time: its own day


@pytest.mark.django_db(transaction=True)
def test_invoices_of_portals_at_five_offsets_reach_xero_with_bitrix24s_dates(acme, acme_xero, sandbox):
    stage_map_refresh(portal=acme)
    SyncSettings.objects.filter(portal=acme).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    client = Bitrix24Client(acme)
    company_id = client.result("crm.company.add", {"fields": {"TITLE": "Dateline Traders"}})
    ids = {}
    for zone, offset, written in ZONES:
        answer = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json={"time_zone": zone}, timeout=10)
        assert answer.json()["time_zone"] == zone
        item = client.result(
            "crm.item.add",
            {
                "entityTypeId": 31,
                "fields": {
                    "title": f"Order {offset}",
                    "currencyId": "NZD",
                    "companyId": company_id,
                    "begindate": "2026-09-01",
                    "closedate": "2026-09-30",
                },
            },
        )["item"]
        assert item["begindate"] == written, zone  # as a real portal in that zone writes it
        assert item["closedate"].endswith(offset)
        client.result(
            "crm.item.productrow.set",
            {
                "ownerType": "SI",
                "ownerId": item["id"],
                "productRows": [{"productName": "Tent", "price": 10, "quantity": 1}],
            },
        )
        ids[int(item["id"])] = zone

    invoices_push_request(portal=acme, invoice_ids=list(ids), requested_by=1)
    report = invoices_push_pending(portal_id=acme.pk)

    assert report.created == len(ZONES)
    [org] = sandbox.state()["xero"]["organisations"]
    dates = {inv["Reference"]: (xero_day(inv["Date"]), xero_day(inv["DueDate"])) for inv in org["invoices"]}
    for _zone, offset, _written in ZONES:
        assert dates[f"Order {offset}"] == ("2026-09-01", "2026-09-30"), offset
