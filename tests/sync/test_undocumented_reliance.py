"""What the connector relies on that Bitrix24's documentation states only in prose, tested both ways.

`crm.item.productrow.list` with an array in `=ownerId` (the push read plan lists the rows of up to 200
invoices per command): crm-item-productrow-list.md says "`=` — equals (works with arrays as well)"
but shows no example of it. The sandbox can play a portal that refuses it
(`productrow_owner_arrays: false`); the connector then reads the rows one invoice per command, and
every invoice still reaches Xero with its own lines.
"""

from __future__ import annotations

import pytest
import requests

from integrations.bitrix24.client import Bitrix24Client
from sync.models import SyncSettings
from sync.services.buttons import invoices_push_request
from sync.services.push import invoices_push_pending
from sync.services.stages import stage_map_refresh

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("arrays", [True, False], ids=["arrays-accepted", "arrays-refused"])
def test_every_invoice_reaches_xero_with_its_own_rows_whether_or_not_ownerid_arrays_work(
    acme, acme_xero, sandbox, arrays
):
    requests.post(
        f"{sandbox.base_url}/_sandbox/bitrix24/settings", json={"productrow_owner_arrays": arrays}, timeout=10
    ).raise_for_status()
    stage_map_refresh(portal=acme)
    SyncSettings.objects.filter(portal=acme).update(tax_types={"15": "OUTPUT2", "none": "NONE"})
    client = Bitrix24Client(acme)
    company = client.result("crm.company.add", {"fields": {"TITLE": "Array Traders"}})
    ids = []
    for n in range(3):
        item = client.result(
            "crm.item.add",
            {"entityTypeId": 31, "fields": {"title": f"Order {n}", "companyId": company, "currencyId": "NZD"}},
        )["item"]
        client.result(
            "crm.item.productrow.set",
            {
                "ownerType": "SI",
                "ownerId": item["id"],
                "productRows": [
                    {"productName": f"Line {n}a", "price": 10 + n, "quantity": 1},
                    {"productName": f"Line {n}b", "price": 20 + n, "quantity": 2},
                ],
            },
        )
        ids.append(item["id"])
    # The portal played: one that lists the rows of all three at once, or one that refuses the array.
    if arrays:
        listed = client.result("crm.item.productrow.list", {"filter": {"=ownerType": "SI", "=ownerId": ids}})
        assert len(listed["productRows"]) == 6
    else:
        answer = requests.post(
            f"{sandbox.base_url}/bitrix24/rest/crm.item.productrow.list.json",
            json={"filter": {"=ownerType": "SI", "=ownerId": ids}, "auth": acme.access_token},
            timeout=10,
        )
        assert answer.status_code == 400

    invoices_push_request(portal=acme, invoice_ids=ids, requested_by=1)
    report = invoices_push_pending(portal_id=acme.pk)

    assert report.created == 3
    [org] = sandbox.state()["xero"]["organisations"]
    lines = {inv["Reference"]: [li["Description"] for li in inv["LineItems"]] for inv in org["invoices"]}
    assert lines == {f"Order {n}": [f"Line {n}a", f"Line {n}b"] for n in range(3)}
