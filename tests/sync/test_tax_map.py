"""The tax map checked against Xero on the Setup page (issue 11 point 3, issue 12 point 2): only Xero
sales tax rates of the same effective rate are offered, the default map is proposed by rate, and a
saved mismatch is refused with the reason."""

from __future__ import annotations

import re

import pytest

from sync.models import SyncSettings
from tests.sync import test_setup_page as setup_page
from tests.sync.test_setup_page import URL, valid_form

# The Setup page tests' fixtures, shared here.
acme = setup_page.acme
admin_frame = setup_page.admin_frame
app_url = setup_page.app_url
connected = setup_page.connected

pytestmark = pytest.mark.django_db(transaction=True)


def options_for(html: str, rate: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="tax:{re.escape(rate)}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"', select)


def selected_for(html: str, rate: str) -> str:
    select = re.search(rf'<select[^>]*name="tax:{re.escape(rate)}"[^>]*>(.*?)</select>', html, re.S).group(1)
    found = re.search(r'<option value="([^"]*)" selected>', select)
    return found.group(1) if found else ""


def test_each_rate_is_offered_only_xero_sales_rates_of_that_rate_with_the_default_proposed(
    client,
    acme,
    connected,
    admin_frame,
):
    SyncSettings.objects.filter(portal=acme).update(tax_types={})
    html = client.get(URL, {"ft": admin_frame.token}).content.decode()

    # Bitrix24's rates (catalog.vat.list): none, 0%, 15%. Xero's sales rates: 15% GST on Income,
    # Zero Rated, GST Exempt Income and No GST; "15% GST on Expenses" is a purchase rate.
    assert options_for(html, "15") == ["", "OUTPUT2"]
    assert options_for(html, "0")[:2] == ["", "ZERORATEDOUTPUT"] and "OUTPUT2" not in options_for(html, "0")
    assert options_for(html, "none")[:2] == ["", "NONE"] and "INPUT2" not in options_for(html, "none")
    assert (selected_for(html, "15"), selected_for(html, "0"), selected_for(html, "none")) == (
        "OUTPUT2",
        "ZERORATEDOUTPUT",
        "NONE",
    )
    assert "15% GST on Income (15%)" in html and 'data-test="tax-proposed"' in html


def test_a_mismatched_mapping_is_refused_with_the_reason_and_nothing_is_saved(
    client,
    acme,
    connected,
    admin_frame,
):
    client.get(URL, {"ft": admin_frame.token})
    before = SyncSettings.objects.get(portal=acme).tax_types
    form = valid_form(acme, admin_frame.token, **{"tax:15": "ZERORATEDOUTPUT", "tax:0": "OUTPUT2"})
    response = client.post(URL, form)

    assert response.status_code == 400
    html = response.content.decode()
    assert "&quot;Zero Rated&quot; is 0% in Xero, not 15%" in html
    assert "&quot;15% GST on Income&quot; is 15% in Xero, not 0%" in html
    assert SyncSettings.objects.get(portal=acme).tax_types == before


def test_the_proposed_map_saved_unchanged_maps_every_rate(client, acme, connected, admin_frame):
    SyncSettings.objects.filter(portal=acme).update(tax_types={})
    html = client.get(URL, {"ft": admin_frame.token}).content.decode()
    form = valid_form(acme, admin_frame.token)
    for rate in ("none", "0", "15"):
        form[f"tax:{rate}"] = selected_for(html, rate)
    assert client.post(URL, form).status_code == 303
    assert SyncSettings.objects.get(portal=acme).tax_types == {"none": "NONE", "0": "ZERORATEDOUTPUT", "15": "OUTPUT2"}
