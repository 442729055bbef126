"""POST /bitrix24/events/: ONAPPINSTALL, ONAPPUNINSTALL and invoice events, verified by application_token."""

from __future__ import annotations

import time

import requests

from accounts.events import EVENT_HANDLERS
from accounts.models import FrameSession, Portal


def event_form(portal: Portal, event: str, *, application_token: str, **auth) -> dict:
    form = {
        "event": event,
        "data[FIELDS][ID]": "7",
        "data[FIELDS][ENTITY_TYPE_ID]": "31",
        "ts": str(int(time.time())),
        "auth[domain]": portal.domain,
        "auth[client_endpoint]": portal.client_endpoint,
        "auth[server_endpoint]": portal.server_endpoint or "https://oauth.bitrix.info/rest/",
        "auth[member_id]": portal.member_id,
        "auth[application_token]": application_token,
    }
    form.update({f"auth[{k}]": v for k, v in auth.items()})
    return form


def test_uninstall_marks_the_portal_uninstalled_and_wipes_its_tokens(sandbox, acme, admin_frame):
    result = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/uninstall", json={"clean": False}, timeout=30).json()
    assert result["event_status"] == [200]
    portal = Portal.objects.get(pk=acme.pk)
    assert portal.status == Portal.Status.UNINSTALLED and not portal.is_active
    assert (portal.access_token, portal.refresh_token, portal.application_token) == ("", "", "")
    assert portal.uninstalled_at is not None
    assert not FrameSession.objects.filter(portal=portal).exists()


def test_a_forged_uninstall_is_refused_and_changes_nothing(acme, app_url):
    form = event_form(acme, "ONAPPUNINSTALL", application_token="not-the-token")
    response = requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30)
    assert response.status_code == 401
    portal = Portal.objects.get(pk=acme.pk)
    assert portal.is_active and portal.access_token == acme.access_token


def test_an_uninstall_without_application_token_is_refused(acme, app_url):
    form = event_form(acme, "ONAPPUNINSTALL", application_token="")
    del form["auth[application_token]"]
    response = requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30)
    assert response.status_code in (400, 401)
    assert Portal.objects.get(pk=acme.pk).is_active


def test_a_forged_install_event_cannot_replace_the_portals_tokens(acme, app_url, clerk):
    form = event_form(
        acme,
        "ONAPPINSTALL",
        application_token="attacker-token",
        access_token=clerk["access_token"],
        refresh_token=clerk["refresh_token"],
        expires_in="3600",
    )
    response = requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30)
    assert response.status_code == 401
    portal = Portal.objects.get(pk=acme.pk)
    assert portal.application_token == acme.application_token and portal.access_token == acme.access_token


def test_an_install_event_for_a_new_portal_is_verified_with_bitrix24(sandbox, acme, app_url):
    # ONAPPINSTALL arriving before the installer page: the portal is new to us.
    Portal.objects.all().delete()
    admin = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens", json={"user": 1}, timeout=30).json()
    form = event_form(
        acme,
        "ONAPPINSTALL",
        application_token=acme.application_token,
        access_token=admin["access_token"],
        refresh_token=admin["refresh_token"],
        expires_in="3600",
    )
    assert requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30).json() == {"status": "installed"}
    portal = Portal.objects.get(member_id=acme.member_id)
    assert portal.is_active and portal.access_token == admin["access_token"]
    assert portal.client_endpoint == f"{sandbox.base_url}/bitrix24/rest/"


def test_an_install_event_for_a_new_portal_with_a_made_up_token_creates_nothing(acme, app_url):
    Portal.objects.all().delete()
    form = event_form(
        acme, "ONAPPINSTALL", application_token="anything", access_token="made-up", refresh_token="x", expires_in="3600"
    )
    assert requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30).status_code == 401
    assert not Portal.objects.exists()


def test_an_event_without_a_handler_is_answered_ignored(acme, app_url):
    form = event_form(acme, "ONCRMCOMPANYUPDATE", application_token=acme.application_token)
    response = requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}


def test_an_invoice_event_with_a_wrong_token_is_refused_before_any_handler(acme, app_url, monkeypatch):
    received = []
    monkeypatch.setitem(EVENT_HANDLERS, "ONCRMDYNAMICITEMUPDATE", lambda **kw: received.append(kw))
    form = event_form(acme, "ONCRMDYNAMICITEMUPDATE", application_token="wrong")
    assert requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30).status_code == 401
    assert received == []


def test_a_real_invoice_event_from_the_portal_reaches_the_registered_handler(sandbox, acme, monkeypatch):
    received = []
    monkeypatch.setitem(
        EVENT_HANDLERS, "ONCRMDYNAMICITEMADD", lambda *, portal, event: received.append((portal.pk, event.entity_id))
    )
    admin = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens", json={"user": 1}, timeout=30).json()
    created = sandbox.bitrix24_rest(
        "crm.item.add", {"entityTypeId": 31, "fields": {"title": "Event test"}}, auth=admin["access_token"]
    )
    item_id = created["result"]["item"]["id"]
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (acme.pk, item_id) in received
