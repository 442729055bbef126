"""Connecting Xero from the app: the OAuth code flow in a new window, the choice page, disconnect."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import requests
from django.db import connection as db

from accounts.models import XeroConnection, XeroOAuthState
from tests.accounts.conftest import Frame, open_frame


def consent(frame: Frame, app_url: str) -> str:
    """The user clicks Connect, Xero consents at once: the callback URL Xero sends the window to."""
    start = frame.get(f"{app_url}/xero/connect/", allow_redirects=False)
    assert start.status_code == 302, start.text
    authorize = requests.get(start.headers["Location"], allow_redirects=False, timeout=30)
    assert authorize.status_code in (302, 303), authorize.text
    callback = authorize.headers["Location"]
    assert callback.startswith(f"{app_url}/xero/callback/")
    return callback


def test_connecting_xero_saves_the_organisation_and_says_so(sandbox, admin_frame, app_url, acme):
    page = admin_frame.http.get(consent(admin_frame, app_url), timeout=30)
    organisation = sandbox.state()["xero"]["organisations"][0]
    assert page.status_code == 200
    assert f"Connected to {organisation['name']}" in page.text and "window.opener.postMessage" in page.text
    connection = XeroConnection.objects.get(portal=acme)
    assert connection.is_active and connection.tenant_name == organisation["name"]
    assert connection.access_token and connection.refresh_token and connection.connection_id
    assert "Connected" in admin_frame.get(f"{app_url}/app/").text


def test_the_state_is_single_use(admin_frame, app_url):
    callback = consent(admin_frame, app_url)
    assert admin_frame.http.get(callback, timeout=30).status_code == 200
    replay = admin_frame.http.get(callback, timeout=30)
    assert replay.status_code == 400 and "already used" in replay.text
    assert XeroOAuthState.objects.get().used_at is not None


def test_an_unknown_or_expired_state_is_refused(admin_frame, app_url, acme):
    callback = consent(admin_frame, app_url)
    code = parse_qs(urlparse(callback).query)["code"][0]
    unknown = requests.get(f"{app_url}/xero/callback/", params={"code": code, "state": "guessed"}, timeout=30)
    assert unknown.status_code == 400
    XeroOAuthState.objects.update(created_at="2000-01-01T00:00:00Z")
    assert admin_frame.http.get(callback, timeout=30).status_code == 400
    assert not XeroConnection.objects.filter(portal=acme).exists()


def test_only_an_admin_can_connect_xero(sandbox, acme, app_url, clerk):
    frame = open_frame(sandbox, clerk["id"])
    response = frame.get(f"{app_url}/xero/connect/", allow_redirects=False)
    assert response.status_code == 403 and "administrator" in response.text
    assert not XeroOAuthState.objects.exists()


def test_with_two_organisations_the_user_chooses_one(sandbox, admin_frame, app_url, acme):
    requests.post(f"{sandbox.base_url}/_sandbox/xero/organisations", json={"name": "Kea Holdings Ltd"}, timeout=30)
    http = admin_frame.http  # the new window that started the flow: it holds the consent cookie
    page = http.get(consent(admin_frame, app_url), timeout=30)
    assert page.status_code == 200 and "Which Xero organisation" in page.text and "Kea Holdings Ltd" in page.text
    assert not XeroConnection.objects.filter(portal=acme).exists()
    kea = re.search(r'value="([^"]+)"[^>]*> Kea Holdings Ltd', page.text).group(1)
    state = re.search(r'name="state" value="([^"]+)"', page.text).group(1)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    chosen = http.post(
        f"{app_url}/xero/choose/", data={"state": state, "tenant_id": kea, "csrfmiddlewaretoken": csrf}, timeout=30
    )
    assert chosen.status_code == 200 and "Connected to Kea Holdings Ltd" in chosen.text
    assert XeroConnection.objects.get(portal=acme).tenant_id == kea
    again = http.post(
        f"{app_url}/xero/choose/", data={"state": state, "tenant_id": kea, "csrfmiddlewaretoken": csrf}, timeout=30
    )
    assert again.status_code == 400
    assert XeroOAuthState.objects.get().pending_access_token == ""


def test_disconnect_removes_the_connection_at_xero_and_wipes_the_tokens(sandbox, admin_frame, app_url, acme):
    admin_frame.http.get(consent(admin_frame, app_url), timeout=30)
    page = admin_frame.post(f"{app_url}/xero/disconnect/")
    assert page.status_code == 200 and "Not connected" in page.text
    connection = XeroConnection.objects.get(portal=acme)
    assert connection.status == XeroConnection.Status.DISCONNECTED
    assert (connection.access_token, connection.refresh_token) == ("", "")
    assert sandbox.state()["xero"]["identity"]["connections"] == []


def test_a_clerk_cannot_disconnect(sandbox, admin_frame, app_url, acme, clerk):
    admin_frame.http.get(consent(admin_frame, app_url), timeout=30)
    frame = open_frame(sandbox, clerk["id"])
    assert frame.post(f"{app_url}/xero/disconnect/").status_code == 403
    assert XeroConnection.objects.get(portal=acme).is_active


def test_a_dead_grant_shows_needs_reconnection_and_reconnecting_makes_it_active(admin_frame, app_url, acme):
    admin_frame.http.get(consent(admin_frame, app_url), timeout=30)
    XeroConnection.objects.filter(portal=acme).update(
        status=XeroConnection.Status.NEEDS_RECONNECT, status_reason="invalid_grant"
    )
    page = admin_frame.get(f"{app_url}/app/")
    assert "Xero needs reconnection" in page.text and "Reconnect Xero" in page.text
    connection_id = XeroConnection.objects.get(portal=acme).pk
    admin_frame.http.get(consent(admin_frame, app_url), timeout=30)
    connection = XeroConnection.objects.get(portal=acme)
    assert connection.pk == connection_id and connection.is_active


def test_xero_tokens_are_not_readable_in_the_database(admin_frame, app_url, acme):
    admin_frame.http.get(consent(admin_frame, app_url), timeout=30)
    connection = XeroConnection.objects.get(portal=acme)
    with db.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM accounts_xeroconnection WHERE id = %s", [connection.pk])
        raw = cursor.fetchone()
    assert connection.access_token not in raw[0] and connection.refresh_token not in raw[1]


def test_a_consent_link_sent_to_someone_else_cannot_connect_their_organisation(sandbox, admin_frame, app_url, acme):
    """The consent-link attack: portal A's admin starts the flow, does not follow the link, and sends
    it to a victim. The victim consents in their own browser; the callback must refuse it."""
    start = admin_frame.get(f"{app_url}/xero/connect/", allow_redirects=False)
    victim = requests.Session()
    callback = victim.get(start.headers["Location"], allow_redirects=False, timeout=30).headers["Location"]
    page = victim.get(callback, timeout=30)
    assert page.status_code == 400 and "not started in this browser" in page.text
    assert not XeroConnection.objects.filter(portal=acme).exists()
    # The attacker cannot finish it either: the code was issued to the victim's consent, and the
    # state is bound to the attacker's sign-in, which is what a legitimate flow needs.
    assert XeroOAuthState.objects.get().used_at is None


def test_the_consent_cookie_is_http_only_lax_and_short_lived(admin_frame, app_url):
    start = admin_frame.get(f"{app_url}/xero/connect/", allow_redirects=False)
    cookie = start.headers["Set-Cookie"]
    assert "xero_consent=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=600" in cookie and "Path=/xero/" in cookie
