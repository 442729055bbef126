"""Xero's OAuth through the sandbox's identity server: consent, exchange, refresh rotation, tenants."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection as db
from django.utils import timezone

from accounts.models import XeroConnection
from integrations.common.errors import AuthorizationLostError
from integrations.common.tokens import InvalidGrantError, token_ensure_fresh
from integrations.xero.oauth import (
    DEFAULT_SCOPES,
    xero_authorize_url,
    xero_connections,
    xero_delete_connection,
    xero_exchange_code,
    xero_refresh,
    xero_revoke,
)

from .conftest import REDIRECT_URI, xero_consent


def test_the_consent_url_asks_for_the_granular_scopes_with_state_and_redirect(sandbox, xero_credentials):
    url = urlparse(xero_authorize_url(state="s-1", redirect_uri=REDIRECT_URI))
    query = parse_qs(url.query)
    assert url.path.endswith("/xero/identity/connect/authorize")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [xero_credentials[0]]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["state"] == ["s-1"]
    assert query["scope"][0].split() == DEFAULT_SCOPES.split()
    assert "accounting.settings" in query["scope"][0].split()  # not .read: we create Items


def test_a_code_exchanges_for_a_token_set_that_reaches_the_organisation(sandbox, xero_credentials):
    tokens = xero_exchange_code(code=xero_consent(), redirect_uri=REDIRECT_URI)

    assert tokens.access_token and tokens.refresh_token
    assert timedelta(minutes=25) < tokens.expires_at - timezone.now() <= timedelta(minutes=30)
    assert set(tokens.scope.split()) == set(DEFAULT_SCOPES.split())
    assert tokens.extra["auth_event_id"]
    tenants = xero_connections(tokens.access_token, tokens.extra["auth_event_id"])
    assert tenants and all(t["tenantType"] == "ORGANISATION" for t in tenants)
    assert all(t["authEventId"] == tokens.extra["auth_event_id"] for t in tenants)


def test_a_code_cannot_be_exchanged_twice(sandbox, xero_credentials):
    code = xero_consent()
    xero_exchange_code(code=code, redirect_uri=REDIRECT_URI)
    with pytest.raises(InvalidGrantError):
        xero_exchange_code(code=code, redirect_uri=REDIRECT_URI)


def test_a_refresh_rotates_the_refresh_token(sandbox, xero_credentials):
    first = xero_exchange_code(code=xero_consent(), redirect_uri=REDIRECT_URI)
    second = xero_refresh(first.refresh_token)
    third = xero_refresh(second.refresh_token)
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    assert len({first.access_token, second.access_token, third.access_token}) == 3
    assert xero_connections(third.access_token)


def test_an_unknown_refresh_token_is_an_invalid_grant(sandbox, xero_credentials):
    with pytest.raises(InvalidGrantError):
        xero_refresh("no-such-refresh-token")


def test_a_revoked_grant_loses_the_connection_and_marks_it_needs_reconnect(xero_connection, sandbox):
    xero_revoke(xero_connection.refresh_token)
    XeroConnection.objects.filter(pk=xero_connection.pk).update(token_expires_at=timezone.now())
    stale = XeroConnection.objects.get(pk=xero_connection.pk)

    with pytest.raises(AuthorizationLostError) as lost:
        token_ensure_fresh(stale, xero_refresh)

    assert lost.value.code == "invalid_grant"
    row = XeroConnection.objects.get(pk=xero_connection.pk)
    assert row.status == XeroConnection.Status.NEEDS_RECONNECT
    assert "invalid_grant" in row.status_reason
    # No retry loop: a second attempt does not even reach the token endpoint.
    before = len(sandbox.calls(system="xero"))
    with pytest.raises(AuthorizationLostError):
        token_ensure_fresh(row, xero_refresh)
    assert len(sandbox.calls(system="xero")) == before


def test_deleting_the_connection_removes_the_organisation_from_connections(xero_connection):
    xero_delete_connection(xero_connection.access_token, xero_connection.connection_id)
    tenants = xero_connections(xero_connection.access_token)
    assert xero_connection.tenant_id not in {t["tenantId"] for t in tenants}
    xero_delete_connection(xero_connection.access_token, xero_connection.connection_id)  # already gone: fine


def test_tokens_are_not_readable_in_the_database_in_plain_text(xero_connection):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM accounts_xeroconnection WHERE id = %s", [xero_connection.pk]
        )
        access_raw, refresh_raw = cursor.fetchone()
    assert xero_connection.access_token not in access_raw
    assert xero_connection.refresh_token not in refresh_raw
    assert access_raw.startswith("gAAAA")  # Fernet
    assert XeroConnection.objects.get(pk=xero_connection.pk).refresh_token == xero_connection.refresh_token
