"""Fixtures for the API clients: a portal row, and a Xero connection made through the real code flow."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from accounts.models import Portal, XeroConnection
from integrations.xero.oauth import xero_authorize_url, xero_connections, xero_exchange_code
from tests.factories import PortalFactory, XeroConnectionFactory

REDIRECT_URI = "http://127.0.0.1:8000/xero/callback/"
CLIENT_ID = "connector-test-client"
CLIENT_SECRET = "connector-test-secret"


@pytest.fixture
def xero_credentials(settings):
    """The app's Xero credentials (the sandbox accepts any, but binds a code to its client id)."""
    settings.XERO_CLIENT_ID = CLIENT_ID
    settings.XERO_CLIENT_SECRET = CLIENT_SECRET
    return CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def portal(db) -> Portal:
    return PortalFactory(
        member_id=f"member-{secrets.token_hex(6)}",
        domain="acme.bitrix24.com",
        client_endpoint="https://acme.bitrix24.com/rest/",
    )


def xero_consent(redirect_uri: str = REDIRECT_URI) -> str:
    """Walk the consent step as the browser would (the sandbox consents at once); return the code."""
    state = secrets.token_urlsafe(16)
    response = requests.get(
        xero_authorize_url(state=state, redirect_uri=redirect_uri), allow_redirects=False, timeout=10
    )
    assert response.status_code in (302, 303), response.text[:300]
    location = urlparse(response.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    assert query["state"] == [state]
    return query["code"][0]


def xero_connect(portal: Portal) -> XeroConnection:
    """Consent, exchange the code, pick the organisation just connected, and store the connection."""
    tokens = xero_exchange_code(code=xero_consent(), redirect_uri=REDIRECT_URI)
    tenants = xero_connections(tokens.access_token, tokens.extra.get("auth_event_id"))
    assert tenants, "the sandbox connected no organisation"
    tenant = tenants[0]
    return XeroConnectionFactory(
        portal=portal,
        tenant_id=tenant["tenantId"],
        tenant_name=tenant.get("tenantName", ""),
        connection_id=tenant.get("id", ""),
        auth_event_id=tenant.get("authEventId", ""),
        xero_user_id=tokens.extra.get("xero_user_id", ""),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
        scope=tokens.scope,
    )


@pytest.fixture
def xero_connection(sandbox, portal, xero_credentials) -> XeroConnection:
    return xero_connect(portal)


def token_calls(sandbox, since: int = 0) -> list[dict]:
    """The calls to Xero's token endpoint that the sandbox received."""
    return [
        c
        for c in sandbox.calls(since=since, system="xero")
        if c["method"] == "POST" and c["path"].rstrip("/").endswith("/connect/token")
    ]


def last_call_id(sandbox) -> int:
    calls = sandbox.calls()
    return calls[-1]["id"] if calls else 0
