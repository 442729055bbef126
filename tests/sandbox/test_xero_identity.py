"""The fake Xero identity server: consent, code exchange, rotating refresh tokens, connections.

The helpers at the top get tokens the way the connector does (the real code flow over HTTP) and
build xero-python clients the way the connector must (SDK pitfall 1); test_xero_api.py uses them too.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import AccountingBadRequestException, HTTPStatusException
from xero_python.identity import IdentityApi

CLIENT_ID = "connector-client-id"
CLIENT_SECRET = "connector-client-secret"
REDIRECT_URI = "https://connector.example/xero/callback"
SCOPES = ["offline_access", "accounting.invoices", "accounting.payments", "accounting.contacts", "accounting.settings"]
TIMEOUT = (5, 30)


def authorize(sandbox, **params) -> requests.Response:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(SCOPES),
        "state": "csrf-123",
        **params,
    }
    query = {key: value for key, value in query.items() if value is not None}
    return requests.get(
        f"{sandbox.base_url}/xero/identity/connect/authorize", params=query, allow_redirects=False, timeout=10
    )


def code_from(response: requests.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlparse(response.headers["Location"]).query)["code"][0]


def token_request(sandbox, data: dict, basic: bool = False) -> requests.Response:
    auth = (CLIENT_ID, CLIENT_SECRET) if basic else None
    if not basic:
        data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **data}
    return requests.post(f"{sandbox.base_url}/xero/identity/connect/token", data=data, auth=auth, timeout=10)


def connect(sandbox, user: str | None = None) -> dict:
    """A token set from the full code flow (consent -> redirect -> code exchange)."""
    code = code_from(authorize(sandbox, user=user))
    response = token_request(sandbox, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert response.status_code == 200, response.text
    return response.json()


def sdk_token(token: dict) -> dict:
    """The dict the SDK's token getter must return: scope as a list, nothing extra (pitfalls 4, 5)."""
    return {
        "access_token": token["access_token"],
        "refresh_token": token["refresh_token"],
        "scope": token["scope"].split(),
        "expires_in": token["expires_in"],
        "token_type": token["token_type"],
        "expires_at": token.get("expires_at", time.time() + token["expires_in"]),
    }


class XeroSession:
    """One connection's SDK clients, configured as the connector configures them."""

    def __init__(self, sandbox, token: dict) -> None:
        self.token = sdk_token(token)
        self.saved: list[dict] = []
        credentials = OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        self.api_client = ApiClient(
            Configuration(oauth2_token=credentials),
            pool_threads=1,
            oauth2_token_getter=lambda: dict(self.token),
            oauth2_token_saver=self._save,
        )
        # Configuration is a singleton-with-copy: set this client's own token object (pitfall 1).
        self.api_client.configuration.oauth2_token = OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        self.accounting = AccountingApi(self.api_client, base_url=f"{sandbox.base_url}/xero/api.xro/2.0")
        self.identity = IdentityApi(self.api_client, base_url=f"{sandbox.base_url}/xero")
        connections = self.identity.get_connections(_request_timeout=TIMEOUT)
        self.tenant_id = connections[0].tenant_id

    def _save(self, token: dict) -> None:
        self.token = {
            key: token[key]
            for key in ("access_token", "refresh_token", "scope", "expires_in", "token_type", "expires_at")
        }
        self.saved.append(self.token)


def point_sdk_at(sandbox, monkeypatch) -> None:
    """The SDK's token endpoints are class attributes (xero-api.md §11.1); aim them at the sandbox."""
    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{sandbox.base_url}/xero/identity/connect/token")
    monkeypatch.setattr(TokenApi, "revoke_token_url", f"{sandbox.base_url}/xero/identity/connect/revocation")


@pytest.fixture
def identity_server(sandbox, monkeypatch):
    point_sdk_at(sandbox, monkeypatch)
    return sandbox


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def speed_up_clock(sandbox, scale: float) -> None:
    sandbox.limits(False, time_scale=scale)


# --- authorize -----------------------------------------------------------------------------------
def test_it_consents_at_once_and_redirects_back_with_code_and_state(sandbox):
    response = authorize(sandbox)
    location = urlparse(response.headers["Location"])
    assert response.status_code == 302
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["csrf-123"] and query["code"][0]


@pytest.mark.parametrize(
    "broken",
    [
        {"response_type": "token"},
        {"client_id": None},
        {"redirect_uri": None},
        {"redirect_uri": "not-a-url"},
        {"scope": None},
    ],
)
def test_it_refuses_a_broken_authorize_request_with_a_page_not_a_redirect(sandbox, broken):
    response = authorize(sandbox, **broken)
    assert response.status_code == 400
    assert "Location" not in response.headers


# --- token endpoint ------------------------------------------------------------------------------
def test_it_exchanges_a_code_once_with_basic_auth_for_a_jwt_and_refresh_token(sandbox):
    code = code_from(authorize(sandbox))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    first = token_request(sandbox, form, basic=True)
    again = token_request(sandbox, form, basic=True)
    body = first.json()
    assert first.status_code == 200
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer" and body["refresh_token"]
    assert body["scope"].split() == SCOPES
    claims = jwt_claims(body["access_token"])
    assert claims["client_id"] == CLIENT_ID and claims["xero_userid"] and claims["authentication_event_id"]
    assert claims["exp"] - claims["nbf"] == 1800
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_it_binds_a_code_to_its_redirect_uri_and_client(sandbox):
    code = code_from(authorize(sandbox))
    wrong_uri = token_request(
        sandbox, {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://evil.example/cb"}
    )
    assert (wrong_uri.status_code, wrong_uri.json()) == (400, {"error": "invalid_grant"})
    code = code_from(authorize(sandbox))
    other_client = requests.post(
        f"{sandbox.base_url}/xero/identity/connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=("another-client", "its-secret"),
        timeout=10,
    )
    assert (other_client.status_code, other_client.json()) == (400, {"error": "invalid_grant"})


def test_it_expires_a_code_after_five_minutes_of_sandbox_clock(sandbox):
    code = code_from(authorize(sandbox))
    speed_up_clock(sandbox, 1000)  # 5 minutes pass in 0.3 s
    time.sleep(0.4)
    response = token_request(sandbox, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


def test_it_wants_a_form_body_and_client_credentials(sandbox):
    code = code_from(authorize(sandbox))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    as_json = requests.post(
        f"{sandbox.base_url}/xero/identity/connect/token",
        json={**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=10,
    )
    assert (as_json.status_code, as_json.json()) == (400, {"error": "unsupported_grant_type"})
    anonymous = requests.post(f"{sandbox.base_url}/xero/identity/connect/token", data=form, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json() == {"error": "invalid_client"}
    assert token_request(sandbox, form).status_code == 200
    wrong_secret = requests.post(
        f"{sandbox.base_url}/xero/identity/connect/token",
        data={**form, "client_id": CLIENT_ID, "client_secret": "not-the-secret"},
        timeout=10,
    )
    assert wrong_secret.json() == {"error": "invalid_client"}


def test_it_rotates_refresh_tokens_and_honours_the_grace_window(sandbox):
    first = connect(sandbox)
    second = token_request(sandbox, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # A lost response: the previous refresh token still works inside the grace window.
    retry = token_request(
        sandbox, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": " ".join(SCOPES)}
    )
    assert retry.status_code == 200
    requests.post(f"{sandbox.base_url}/_sandbox/xero/settings", json={"refresh_grace_s": 60}, timeout=10)
    speed_up_clock(sandbox, 1000)  # 60 s of sandbox clock pass in 0.06 s
    time.sleep(0.2)
    late = token_request(sandbox, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert late.status_code == 400
    assert late.text.strip() in ('{"error": "invalid_grant"}', '{"error":"invalid_grant"}')
    fresh = token_request(sandbox, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert fresh.status_code == 200


def test_it_refuses_an_unknown_refresh_token(sandbox):
    response = token_request(sandbox, {"grant_type": "refresh_token", "refresh_token": "made-up"})
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


# --- connections ---------------------------------------------------------------------------------
def test_it_lists_connections_of_the_consent_and_filters_by_auth_event(sandbox):
    extra = requests.post(
        f"{sandbox.base_url}/_sandbox/xero/organisations", json={"name": "Kiwi Widgets Ltd"}, timeout=10
    ).json()
    token = connect(sandbox)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    rows = requests.get(f"{sandbox.base_url}/xero/connections", headers=headers, timeout=10).json()
    assert {row["tenantName"] for row in rows} == {"Demo Company (NZ)", "Kiwi Widgets Ltd"}
    assert extra["tenant_id"] in {row["tenantId"] for row in rows}
    assert all(row["tenantType"] == "ORGANISATION" for row in rows)
    event = jwt_claims(token["access_token"])["authentication_event_id"]
    assert {row["authEventId"] for row in rows} == {event}
    filtered = requests.get(
        f"{sandbox.base_url}/xero/connections", params={"authEventId": "nope"}, headers=headers, timeout=10
    )
    assert filtered.json() == []


def test_the_sdk_lists_and_deletes_a_connection(identity_server):
    session = XeroSession(identity_server, connect(identity_server))
    connections = session.identity.get_connections(_request_timeout=TIMEOUT)
    assert connections[0].tenant_name == "Demo Company (NZ)"
    assert connections[0].created_date_utc is not None
    session.identity.delete_connection(id=connections[0].id, _request_timeout=TIMEOUT)
    assert session.identity.get_connections(_request_timeout=TIMEOUT) == []
    with pytest.raises(HTTPStatusException) as missing:
        session.identity.delete_connection(id=connections[0].id, _request_timeout=TIMEOUT)
    assert missing.value.status == 404
    with pytest.raises(HTTPStatusException) as gone:
        session.accounting.get_organisations(xero_tenant_id=session.tenant_id, _request_timeout=TIMEOUT)
    assert gone.value.status == 403


def test_each_xero_user_gets_their_own_grant(sandbox):
    alice = jwt_claims(connect(sandbox, user="alice@example.com")["access_token"])
    bob = jwt_claims(connect(sandbox, user="bob@example.com")["access_token"])
    assert alice["xero_userid"] != bob["xero_userid"]


def test_revoking_the_refresh_token_disconnects_everything(sandbox):
    token = connect(sandbox)
    revoked = requests.post(
        f"{sandbox.base_url}/xero/identity/connect/revocation",
        data={"token": token["refresh_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert revoked.status_code == 200
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(f"{sandbox.base_url}/xero/connections", headers=headers, timeout=10).status_code == 401
    again = token_request(sandbox, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert again.json() == {"error": "invalid_grant"}


# --- the SDK's implicit refresh ------------------------------------------------------------------
def test_the_sdk_refreshes_an_expired_token_and_saves_the_new_pair(identity_server):
    session = XeroSession(identity_server, connect(identity_server))
    old = dict(session.token)
    requests.post(f"{identity_server.base_url}/_sandbox/xero/tokens/expire", timeout=10)
    session.token["expires_at"] = time.time() - 10
    organisations = session.accounting.get_organisations(xero_tenant_id=session.tenant_id, _request_timeout=TIMEOUT)
    assert organisations.organisations[0].name == "Demo Company (NZ)"
    assert len(session.saved) == 1
    assert session.token["refresh_token"] != old["refresh_token"]


def test_the_sdk_reports_a_dead_refresh_token_as_invalid_grant(identity_server):
    session = XeroSession(identity_server, connect(identity_server))
    requests.post(f"{identity_server.base_url}/_sandbox/xero/settings", json={"refresh_grace_s": 0}, timeout=10)
    token_request(identity_server, {"grant_type": "refresh_token", "refresh_token": session.token["refresh_token"]})
    time.sleep(0.05)
    session.token["expires_at"] = time.time() - 10
    with pytest.raises(AccountingBadRequestException) as raised:
        session.accounting.get_organisations(xero_tenant_id=session.tenant_id, _request_timeout=TIMEOUT)
    assert raised.value.error_data == {"error": "invalid_grant"}
