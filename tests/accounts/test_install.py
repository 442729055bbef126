"""Installing the app: POST /bitrix24/install/ and ONAPPINSTALL, against the sandbox portal."""

from __future__ import annotations

import requests
from django.db import connection

from accounts.models import Portal
from tests.accounts.conftest import install


def test_install_stores_the_portal_with_its_endpoints_tokens_and_application_token(sandbox, acme):
    state = sandbox.state()["bitrix24"]
    assert acme.status == Portal.Status.ACTIVE
    assert acme.domain == state["domain"]
    assert acme.client_endpoint == f"{sandbox.base_url}/bitrix24/rest/"
    assert acme.access_token and acme.refresh_token and acme.token_expires_at is not None
    assert acme.application_token and acme.installed_by_user_id == 1
    assert acme.invoice_mode == Portal.InvoiceMode.SMART


def test_install_binds_the_invoice_events_the_uninstall_event_and_the_placements(sandbox, acme, app_url):
    state = sandbox.state()["bitrix24"]["app"]
    bound = {(b["event"], b["handler"]) for b in state["bindings"]}
    events_url = f"{app_url}/bitrix24/events/"
    for event in ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE", "ONAPPUNINSTALL"):
        assert (event, events_url) in bound
    placements = {(p["placement"], p["handler"], p["title"]) for p in state["placements"]}
    for code in ("CRM_SMART_INVOICE_DETAIL_TOOLBAR", "CRM_SMART_INVOICE_LIST_MENU"):
        assert (code, f"{app_url}/bitrix24/placement/", "Xero") in placements


def test_the_install_page_finishes_the_installation_with_bitrix24s_library(sandbox, app_url):
    # The page itself, as the portal's frame shows it to the admin.
    sandbox.bitrix24_install(app_url=f"{app_url}/bitrix24/app/", install_url=f"{app_url}/bitrix24/install/")
    installer = sandbox.bitrix24_frame(1, placement="DEFAULT")
    page = requests.post(f"{app_url}/bitrix24/install/", data=installer["form"], timeout=30)
    assert page.status_code == 200
    assert f"{sandbox.base_url}/bitrix24/js/bx24.js" in page.text
    assert "BX24.installFinish()" in page.text
    assert "X-Frame-Options" not in page.headers


def test_reinstalling_updates_the_same_portal_and_binds_everything_again(sandbox, acme, app_url):
    second = install(sandbox, app_url)
    assert second["install_status"] == 200
    assert Portal.objects.count() == 1
    portal = Portal.objects.get()
    assert portal.pk == acme.pk and portal.token_generation > acme.token_generation
    events = [b["event"] for b in sandbox.state()["bitrix24"]["app"]["bindings"]]
    assert events.count("ONCRMDYNAMICITEMUPDATE") == 1


def test_installing_with_a_forged_auth_id_stores_nothing(sandbox, app_url):
    sandbox.bitrix24_install(app_url=f"{app_url}/bitrix24/app/", install_url=f"{app_url}/bitrix24/install/")
    Portal.objects.all().delete()
    form = sandbox.bitrix24_frame(1)["form"]
    response = requests.post(f"{app_url}/bitrix24/install/", data={**form, "AUTH_ID": "forged-token"}, timeout=30)
    assert response.status_code == 401
    assert "did not accept" in response.text
    assert not Portal.objects.exists()


def test_installing_with_the_token_of_another_portal_stores_nothing(sandbox, app_url):
    sandbox.bitrix24_install(app_url=f"{app_url}/bitrix24/app/", install_url=f"{app_url}/bitrix24/install/")
    Portal.objects.all().delete()
    form = sandbox.bitrix24_frame(1)["form"]
    response = requests.post(f"{app_url}/bitrix24/install/", data={**form, "member_id": "f" * 32}, timeout=30)
    assert response.status_code == 401
    assert not Portal.objects.exists()


def test_only_an_admin_can_install(sandbox, app_url, clerk):
    sandbox.bitrix24_install(app_url=f"{app_url}/bitrix24/app/", install_url=f"{app_url}/bitrix24/install/")
    Portal.objects.all().delete()
    form = sandbox.bitrix24_frame(1)["form"]
    forged = {**form, "AUTH_ID": clerk["access_token"], "REFRESH_ID": clerk["refresh_token"]}
    response = requests.post(f"{app_url}/bitrix24/install/", data=forged, timeout=30)
    assert response.status_code == 403
    assert "administrator" in response.text
    assert not Portal.objects.exists()


def test_tokens_are_not_readable_in_the_database(acme):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token, application_token FROM accounts_portal WHERE id = %s", [acme.pk]
        )
        raw = cursor.fetchone()
    plain = (acme.access_token, acme.refresh_token, acme.application_token)
    for stored, secret in zip(raw, plain, strict=True):
        assert secret and secret not in stored
