"""The Setup page inside Bitrix24: every stage (custom ones too), both maps, defaults; admins only."""

from __future__ import annotations

import pytest

from accounts.models import XeroConnection
from sync.models import StageMapping, SyncSettings, XeroStatusMapping
from tests.accounts import conftest as accounts_fixtures
from tests.accounts.conftest import open_frame
from tests.integrations.conftest import xero_connect

# The install and frame sign-in fixtures of the accounts tests, shared here.
acme = accounts_fixtures.acme
admin_frame = accounts_fixtures.admin_frame
app_url = accounts_fixtures.app_url
clerk = accounts_fixtures.clerk

URL = "/app/setup/"


@pytest.fixture
def connected(acme) -> XeroConnection:
    return xero_connect(acme)


def add_custom_stage(sandbox, name: str) -> str:
    """Add a stage to the default invoice pipeline as a Bitrix24 admin would; return its id."""
    admin = sandbox.bitrix24_user("Ada Admin", admin=True)
    categories = sandbox.bitrix24_rest("crm.category.list", {"entityTypeId": 31}, auth=admin["access_token"])
    category = next(c for c in categories["result"]["categories"] if c["isDefault"] == "Y")
    added = sandbox.bitrix24_rest(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": f"SMART_INVOICE_STAGE_{category['id']}",
                "STATUS_ID": "CHECKED",
                "NAME": name,
                "SORT": 25,
            }
        },
        auth=admin["access_token"],
    )
    assert "result" in added, added
    stages = sandbox.bitrix24_rest(
        "crm.status.list",
        {"filter": {"ENTITY_ID": f"SMART_INVOICE_STAGE_{category['id']}"}},
        auth=admin["access_token"],
    )["result"]
    return next(s["STATUS_ID"] for s in stages if s["NAME"] == name)


def valid_form(acme, token: str, **changes) -> dict:
    form = {"ft": token}
    for row in StageMapping.objects.filter(portal=acme):
        form[f"stage:{row.stage_id}"] = row.xero_status
    for row in XeroStatusMapping.objects.filter(portal=acme):
        form[f"xero:{row.xero_status}"] = row.stage_id
    form.update(
        {
            "default_account_code": "260",
            "default_tax_type": "OUTPUT2",
            "default_currency": "NZD",
            "tax:none": "NONE",
            "tax:15": "OUTPUT2",
            "record_payment_on_paid": "on",
            "payment_account_code": "090",
        }
    )
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_the_page_shows_every_stage_including_a_custom_one(client, sandbox, acme, connected, admin_frame):
    stage_id = add_custom_stage(sandbox, "Checked by accountant")
    response = client.get(URL, {"ft": admin_frame.token})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Checked by accountant" in html
    assert f'name="stage:{stage_id}"' in html
    row = StageMapping.objects.get(portal=acme, stage_id=stage_id)
    assert (row.name, row.semantics, row.xero_status) == ("Checked by accountant", "", "AUTHORISED")
    # Every stage of the pipeline, with its semantics, and every Xero status with a stage select.
    for stage in StageMapping.objects.filter(portal=acme):
        assert f'data-stage-id="{stage.stage_id}"' in html
    assert html.count('data-test="stage-semantics"') == StageMapping.objects.filter(portal=acme).count()
    for status in ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"):
        assert f'name="xero:{status}"' in html
    # The Xero selects come from the cached chart of accounts.
    assert '<option value="260"' in html and 'data-test="setup-payment-account"' in html
    assert 'data-test="setup-xero-missing"' not in html


def test_saving_a_changed_map_and_defaults_persists_and_completes_setup(client, sandbox, acme, connected, admin_frame):
    client.get(URL, {"ft": admin_frame.token})
    stages = list(StageMapping.objects.filter(portal=acme, semantics=""))
    changed = stages[-1]
    paid_target = StageMapping.objects.get(portal=acme, semantics="S")
    form = valid_form(acme, admin_frame.token, **{f"stage:{changed.stage_id}": "SUBMITTED", "xero:DRAFT": ""})
    response = client.post(URL, form)
    assert response.status_code == 303, response.content.decode()[:2000]
    changed.refresh_from_db()
    assert changed.xero_status == "SUBMITTED"
    assert XeroStatusMapping.objects.get(portal=acme, xero_status="DRAFT").stage_id == ""
    assert XeroStatusMapping.objects.get(portal=acme, xero_status="PAID").stage_id == paid_target.stage_id
    settings = SyncSettings.objects.get(portal=acme)
    assert (settings.default_account_code, settings.default_tax_type, settings.default_currency) == (
        "260",
        "OUTPUT2",
        "NZD",
    )
    assert settings.tax_types == {"none": "NONE", "15": "OUTPUT2"}
    assert settings.record_payment_on_paid and settings.payment_account_code == "090"
    assert settings.setup_completed
    page = client.get(response["Location"])
    assert 'data-test="setup-saved"' in page.content.decode()


def test_a_bad_map_is_refused_with_messages_and_nothing_is_saved(client, sandbox, acme, connected, admin_frame):
    client.get(URL, {"ft": admin_frame.token})
    before_stages = dict(StageMapping.objects.filter(portal=acme).values_list("stage_id", "xero_status"))
    before_xero = dict(XeroStatusMapping.objects.filter(portal=acme).values_list("xero_status", "stage_id"))
    good = next(s for s in before_stages if before_stages[s] != "VOIDED")
    form = valid_form(
        acme,
        admin_frame.token,
        **{f"stage:{good}": "VOIDED", "stage:DT31_99:GONE": "DRAFT", "xero:PAID": "DT31_99:NOPE"},
    )
    response = client.post(URL, form)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-test="setup-problems"' in html and "Nothing was saved" in html
    assert html.count('data-test="field-error"') >= 1
    assert "no longer in Bitrix24" in html
    assert dict(StageMapping.objects.filter(portal=acme).values_list("stage_id", "xero_status")) == before_stages
    assert dict(XeroStatusMapping.objects.filter(portal=acme).values_list("xero_status", "stage_id")) == before_xero
    assert not SyncSettings.objects.get(portal=acme).setup_completed


def test_an_invalid_status_value_is_refused_next_to_its_field(client, sandbox, acme, connected, admin_frame):
    client.get(URL, {"ft": admin_frame.token})
    stage = StageMapping.objects.filter(portal=acme).first()
    response = client.post(URL, valid_form(acme, admin_frame.token, **{f"stage:{stage.stage_id}": "SHIPPED"}))
    assert response.status_code == 400
    html = response.content.decode()
    assert "&quot;SHIPPED&quot; is not a Xero invoice status" in html
    assert 'class="st-row has-error" data-test="stage-row" data-stage-id="' + stage.stage_id + '"' in html
    stage_after = StageMapping.objects.get(pk=stage.pk)
    assert stage_after.xero_status == stage.xero_status


def test_recording_payments_needs_a_bank_account(client, sandbox, acme, connected, admin_frame):
    client.get(URL, {"ft": admin_frame.token})
    response = client.post(URL, valid_form(acme, admin_frame.token, payment_account_code=""))
    assert response.status_code == 400
    assert "Recording payments needs the bank account" in response.content.decode()
    settings = SyncSettings.objects.get(portal=acme)
    assert not settings.record_payment_on_paid and not settings.setup_completed


def test_without_xero_the_page_explains_and_links_to_the_connection(client, sandbox, acme, admin_frame):
    response = client.get(URL, {"ft": admin_frame.token})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-test="setup-xero-missing"' in html and 'data-test="setup-connect-link"' in html
    assert 'data-test="stage-select"' in html  # the stage map works without Xero
    assert 'data-test="setup-account"' not in html


def test_a_user_who_is_not_an_admin_is_refused(client, sandbox, acme, clerk):
    frame = open_frame(sandbox, clerk["id"])
    assert frame.token
    response = client.get(URL, {"ft": frame.token})
    assert response.status_code == 403
    assert "Only a Bitrix24 administrator" in response.content.decode()
    assert client.post(URL, {"ft": frame.token, "stage:x": "PAID"}).status_code == 403


def test_admins_see_the_xero_calls_used_today(client, sandbox, acme, connected, admin_frame, settings):
    from integrations.common.throttle import xero_daily_usage

    settings.XERO_DAILY_LIMIT = 1000  # a Starter-tier organisation
    html = client.get(URL, {"ft": admin_frame.token}).content.decode()
    used, _ = xero_daily_usage(connected.tenant_id)
    assert used > 0  # the page itself read the chart of accounts, tax rates...
    assert 'data-test="xero-budget"' in html
    assert f'<strong data-test="xero-budget-used">{used}</strong> of 1000' in html


def test_admins_see_why_automatic_pushes_are_grouped_when_the_budget_would_not_last(
    client, sandbox, acme, connected, admin_frame, settings
):
    from integrations.common.throttle import xero_observe, xero_slot

    settings.XERO_DAILY_RESERVE = 100
    settings.XERO_MINUTE_LIMIT = settings.XERO_APP_MINUTE_LIMIT = 100000
    for _ in range(300):  # 300 calls in the last hour or two: eight more hours of that is far over 900
        with xero_slot(connected.tenant_id):
            pass
    xero_observe(connected.tenant_id, {"X-DayLimit-Remaining": "700"})  # a Starter organisation
    html = client.get(URL, {"ft": admin_frame.token}).content.decode()
    assert 'data-test="xero-budget-pacing"' in html
    assert "automatic pushes are grouped" in html and "still sends at once" in html
