"""Install and uninstall events cannot be forged by a portal user (issue 8, points 1, 8 and 9).

Bitrix24 puts APPLICATION_TOKEN into the frame POST of every user, so a sales clerk has it, and
their own access and refresh tokens. With them they forge ONAPPINSTALL / ONAPPUNINSTALL; Bitrix24's
OAuth server (the sandbox's, over HTTP) is what tells a forgery from the real thing.
"""

from __future__ import annotations

import logging

import pytest
import requests

from accounts.models import Portal, XeroConnection
from accounts.services.sandbox import sandbox_connect_xero
from integrations.bitrix24.client import Bitrix24Client
from sandbox.client import SandboxError
from sync.models import Direction, SyncLogEntry, Trigger
from tests.accounts.test_events import event_form
from tests.factories import SyncLogEntryFactory


@pytest.fixture
def clerk_form(sandbox, acme, clerk) -> dict:
    """What the clerk's browser received when they opened the app: the frame POST."""
    return sandbox.bitrix24_frame(clerk["id"])["form"]


def _forged(acme: Portal, event: str, form: dict, **auth) -> dict:
    fields = event_form(acme, event, application_token=form["APPLICATION_TOKEN"], **auth)
    fields["auth[domain]"] = "evil.example"
    fields["auth[client_endpoint]"] = "https://evil.example/rest/"
    fields["auth[server_endpoint]"] = "https://evil.example/oauth/"
    return fields


def _still_syncs(portal: Portal) -> None:
    """The stored token still reaches the portal's REST as the admin who installed the app."""
    client = Bitrix24Client(Portal.objects.get(pk=portal.pk))
    assert client.result("user.admin", {}) is True
    client.result("crm.item.list", {"entityTypeId": 31, "select": ["id"]})


def _unchanged(before: Portal) -> Portal:
    after = Portal.objects.get(pk=before.pk)
    assert after.status == Portal.Status.ACTIVE, after.status_reason
    assert (after.access_token, after.refresh_token, after.application_token) == (
        before.access_token,
        before.refresh_token,
        before.application_token,
    )
    assert (after.domain, after.client_endpoint) == (before.domain, before.client_endpoint)
    return after


def test_a_clerks_forged_install_with_their_own_tokens_changes_nothing(acme, app_url, clerk, clerk_form, caplog):
    caplog.set_level(logging.WARNING, logger="accounts.security")
    form = _forged(
        acme,
        "ONAPPINSTALL",
        clerk_form,
        access_token=clerk_form["AUTH_ID"],
        refresh_token=clerk_form["REFRESH_ID"],
        expires_in="3600",
    )
    response = requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30)
    assert response.status_code in (401, 403), response.text
    after = _unchanged(acme)
    assert after.domain != "evil.example"
    _still_syncs(acme)
    assert any("refused ONAPPINSTALL" in r.getMessage() for r in caplog.records)


def test_a_forged_install_with_made_up_tokens_cannot_put_the_portal_in_needs_reauth(acme, app_url, clerk_form):
    form = _forged(acme, "ONAPPINSTALL", clerk_form, access_token="x" * 32, refresh_token="y" * 32, expires_in="3")
    assert requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30).status_code == 401
    _unchanged(acme)
    _still_syncs(acme)


def test_the_frame_policy_is_not_widened_by_a_forged_install(sandbox, acme, app_url, clerk, clerk_form):
    form = _forged(
        acme, "ONAPPINSTALL", clerk_form, access_token=clerk_form["AUTH_ID"], refresh_token=clerk_form["REFRESH_ID"]
    )
    requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30)
    page = requests.post(sandbox.bitrix24_frame(clerk["id"])["url"], data=sandbox.bitrix24_frame(clerk["id"])["form"])
    assert page.status_code == 200
    assert "evil.example" not in page.headers.get("Content-Security-Policy", "")


@pytest.mark.parametrize("clean", ["0", "1"])
def test_a_clerks_forged_uninstall_wipes_nothing(acme, app_url, clerk_form, clean, caplog):
    caplog.set_level(logging.WARNING, logger="accounts.security")
    SyncLogEntryFactory(
        portal=acme, direction=Direction.PUSH, trigger=Trigger.EVENT, outcome="created", bitrix24_id="1"
    )
    form = _forged(acme, "ONAPPUNINSTALL", clerk_form)
    form["data[CLEAN]"] = clean
    response = requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30)
    assert response.status_code == 401, response.text
    _unchanged(acme)
    assert SyncLogEntry.objects.filter(portal=acme).count() == 1
    _still_syncs(acme)
    assert any("refused ONAPPUNINSTALL" in r.getMessage() for r in caplog.records)


def test_a_forged_uninstall_after_the_access_token_expired_is_still_refused(sandbox, acme, app_url, clerk_form):
    # The stored access token no longer works, but the refresh token does: still installed.
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens/expire", json={"user": 1}, timeout=30)
    response = requests.post(f"{app_url}/bitrix24/events/", data=_forged(acme, "ONAPPUNINSTALL", clerk_form))
    assert response.status_code == 401
    after = Portal.objects.get(pk=acme.pk)
    assert after.is_active and after.application_token == acme.application_token
    _still_syncs(acme)


def test_a_forged_clean_uninstall_cannot_wipe_a_portal_marked_needs_reauth(sandbox, acme, app_url, clerk_form):
    # Our own opinion that the grant is in trouble is no proof that Bitrix24 removed the app.
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens/expire", json={"user": 1}, timeout=30)
    Portal.objects.filter(pk=acme.pk).update(status=Portal.Status.NEEDS_REAUTH, status_reason="test")
    SyncLogEntryFactory(
        portal=acme, direction=Direction.PUSH, trigger=Trigger.EVENT, outcome="created", bitrix24_id="1"
    )
    form = _forged(acme, "ONAPPUNINSTALL", clerk_form)
    form["data[CLEAN]"] = "1"
    assert requests.post(f"{app_url}/bitrix24/events/", data=form, timeout=30).status_code == 401
    after = Portal.objects.get(pk=acme.pk)
    assert after.application_token == acme.application_token and after.status == Portal.Status.NEEDS_REAUTH
    assert SyncLogEntry.objects.filter(portal=acme).count() == 1
    # The refresh token was spent asking; the new pair was kept and works.
    assert after.refresh_token != acme.refresh_token
    Portal.objects.filter(pk=acme.pk).update(status=Portal.Status.ACTIVE)
    _still_syncs(acme)


def _xero_connections(sandbox) -> list:
    return sandbox.state()["xero"]["identity"]["connections"]


def test_a_real_uninstall_with_clean_deletes_the_portals_data_and_revokes_xero(sandbox, acme):
    connection = sandbox_connect_xero(portal=acme)
    assert connection.is_active and _xero_connections(sandbox)
    SyncLogEntryFactory(
        portal=acme, direction=Direction.PUSH, trigger=Trigger.EVENT, outcome="created", bitrix24_id="1"
    )
    result = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/uninstall", json={"clean": True}, timeout=30).json()
    assert result["event_status"] == [200]
    assert not Portal.objects.filter(member_id=acme.member_id).exists()
    assert not XeroConnection.objects.exists() and not SyncLogEntry.objects.exists()
    assert _xero_connections(sandbox) == []


def test_a_real_uninstall_without_clean_wipes_tokens_and_keeps_the_rest(sandbox, acme):
    sandbox_connect_xero(portal=acme)
    SyncLogEntryFactory(
        portal=acme, direction=Direction.PUSH, trigger=Trigger.EVENT, outcome="created", bitrix24_id="1"
    )
    result = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/uninstall", json={"clean": False}, timeout=30).json()
    assert result["event_status"] == [200]
    portal = Portal.objects.get(pk=acme.pk)
    assert portal.status == Portal.Status.UNINSTALLED
    assert (portal.access_token, portal.refresh_token, portal.application_token) == ("", "", "")
    assert SyncLogEntry.objects.filter(portal=portal).count() == 1
    assert XeroConnection.objects.get(portal=portal).is_active
    assert _xero_connections(sandbox)


def test_without_a_configured_client_id_no_install_is_accepted(sandbox, app_url, settings):
    settings.BITRIX24_CLIENT_ID = ""
    with pytest.raises(SandboxError, match="install page answered 503"):
        sandbox.bitrix24_install(app_url=f"{app_url}/bitrix24/app/", install_url=f"{app_url}/bitrix24/install/")
    assert not Portal.objects.exists()


def test_a_token_of_another_app_is_not_accepted_for_an_install(sandbox, app_url, settings):
    settings.BITRIX24_CLIENT_ID = "app.somebody.else"
    with pytest.raises(SandboxError, match="install page answered 401"):
        sandbox.bitrix24_install(app_url=f"{app_url}/bitrix24/app/", install_url=f"{app_url}/bitrix24/install/")
    assert not Portal.objects.exists()
