"""Django admin offers the portal's real stages for a Xero status and refuses rows sync would choke on."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sync.models import StageMapping, SyncSettings
from tests.factories import PortalFactory, StageMappingFactory, SyncSettingsFactory, XeroStatusMappingFactory


@pytest.fixture
def portal(db):
    portal = PortalFactory(
        member_id="a" * 32, domain="acme.bitrix24.com", client_endpoint="https://acme.bitrix24.com/rest/"
    )
    for sort, (stage_id, name, semantics) in enumerate(
        [("DT31_3:N", "New", ""), ("DT31_3:P", "Paid", "S"), ("DT31_3:D", "Declined", "F")]
    ):
        StageMappingFactory(
            portal=portal, stage_id=stage_id, category_id=3, name=name, semantics=semantics, sort=sort * 10
        )
    SyncSettingsFactory(portal=portal)
    return portal


@pytest.fixture
def ops(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def test_a_xero_status_row_offers_the_portals_stages_and_refuses_any_other_text(portal, ops):
    row = XeroStatusMappingFactory(portal=portal, xero_status="PAID", stage_id="DT31_3:P")
    url = reverse("admin:sync_xerostatusmapping_change", args=[row.pk])
    page = ops.get(url).content.decode()
    assert '<select name="stage_id"' in page and 'value="DT31_3:D"' in page and "Declined (DT31_3:D)" in page

    refused = ops.post(url, {"portal": portal.pk, "xero_status": "PAID", "stage_id": "DT31_3:WON"})
    assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    row.refresh_from_db()
    assert row.stage_id == "DT31_3:P"

    saved = ops.post(url, {"portal": portal.pk, "xero_status": "PAID", "stage_id": "DT31_3:D"})
    assert saved.status_code == 302
    row.refresh_from_db()
    assert row.stage_id == "DT31_3:D"

    # The list's inline edit goes through the same checks.
    changelist = reverse("admin:sync_xerostatusmapping_changelist")
    form = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(row.pk),
        "form-0-stage_id": "made-up",
        "_save": "Save",
    }
    assert ops.post(changelist, form).status_code == 200
    row.refresh_from_db()
    assert row.stage_id == "DT31_3:D"


def test_a_stage_row_refuses_paid_while_payments_are_not_recorded(portal, ops):
    paid = StageMapping.objects.get(portal=portal, stage_id="DT31_3:P")
    url = reverse("admin:sync_stagemapping_change", args=[paid.pk])
    refused = ops.post(url, {"portal": portal.pk, "xero_status": "PAID"})
    assert refused.status_code == 200 and "only through a payment" in refused.content.decode()
    assert ops.post(url, {"portal": portal.pk, "xero_status": "NOT_A_STATUS"}).status_code == 200
    paid.refresh_from_db()
    assert paid.xero_status == ""

    SyncSettings.objects.filter(portal=portal).update(record_payment_on_paid=True, payment_account_code="090")
    assert ops.post(url, {"portal": portal.pk, "xero_status": "PAID"}).status_code == 302
    paid.refresh_from_db()
    assert paid.xero_status == "PAID"
