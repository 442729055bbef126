"""`manage.py sandbox_setup`: install + Xero connection against the sandbox, repeatable."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Portal, XeroConnection


def test_running_sandbox_setup_twice_keeps_one_portal_and_one_connection(sandbox, app_url, settings):
    settings.XERO_WEBHOOK_KEY = "test-webhook-key"
    first = StringIO()
    call_command("sandbox_setup", stdout=first)
    connection = XeroConnection.objects.get()
    assert connection.is_active and "Xero: connected" in first.getvalue()

    second = StringIO()
    call_command("sandbox_setup", stdout=second)
    assert Portal.objects.count() == 1 and XeroConnection.objects.count() == 1
    assert XeroConnection.objects.get().access_token == connection.access_token
    assert "kept the active connection" in second.getvalue()
    assert "Xero webhooks: " in second.getvalue() and "Intent to Receive" in second.getvalue()


def test_sandbox_setup_refuses_to_run_without_the_sandbox(settings):
    settings.SANDBOX_URL = ""
    with pytest.raises(CommandError, match="SANDBOX_URL"):
        call_command("sandbox_setup", stdout=StringIO())


def test_seeding_creates_demo_customers_and_invoices_once(sandbox, app_url):
    call_command("sandbox_setup", "--seed", stdout=StringIO())
    again = StringIO()
    call_command("sandbox_setup", "--seed", stdout=again)
    admin = sandbox.bitrix24_user("Checker", admin=True)
    companies = sandbox.bitrix24_rest("crm.company.list", {"select": ["ID", "TITLE"]}, auth=admin["access_token"])
    invoices = sandbox.bitrix24_rest(
        "crm.item.list", {"entityTypeId": 31, "select": ["id", "currencyId"]}, auth=admin["access_token"]
    )
    assert sorted(c["TITLE"] for c in companies["result"]) == [
        "Harbourview Dental Group",
        "Kauri Coast Outfitters Ltd",
        "Southern Alps Coffee Roasters",
    ]
    items = invoices["result"]["items"]
    assert len(items) == 4 and {i["currencyId"] for i in items} == {"NZD"}
    rows = sandbox.bitrix24_rest(
        "crm.item.productrow.list",
        {"filter": {"=ownerType": "SI", "=ownerId": items[0]["id"]}},
        auth=admin["access_token"],
    )
    assert rows["result"]["productRows"]
    assert "nothing new (already seeded)" in again.getvalue()
