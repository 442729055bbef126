"""accounts' token store (accounts/token_store.py): the only way the clients and the single-flight
refresh write credentials, each write a compare-and-set on the generation. Real PostgreSQL, Redis
and the sandbox's Xero."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from integrations.common.errors import AuthorizationLostError
from integrations.common.tokens import TokenSet, credentials_update, token_ensure_fresh, token_mark_lost
from integrations.xero.client import XeroClient
from integrations.xero.oauth import xero_refresh

from .conftest import last_call_id, token_calls


def _tokens(access: str, refresh: str = "", **extra) -> TokenSet:
    return TokenSet(
        access_token=access, refresh_token=refresh, expires_at=timezone.now() + timedelta(minutes=30), extra=extra
    )


def test_a_refresh_saved_on_an_older_generation_changes_nothing(xero_connection):
    store = xero_connection.token_store()
    stale = xero_connection.token_generation
    assert store.save_refreshed(generation=stale, tokens=_tokens("newer", "rt-newer"), refresh_token="x")

    # A second refresh that read the same (now old) generation: its answer is dropped.
    assert not store.save_refreshed(generation=stale, tokens=_tokens("older", "rt-older"), refresh_token="x")

    row = store.load()
    assert (row.access_token, row.refresh_token, row.token_generation) == ("newer", "rt-newer", stale + 1)


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one_and_only_known_extras(portal):
    Portal.objects.filter(pk=portal.pk).update(refresh_token="b24-rt", token_generation=3)
    portal.refresh_from_db()
    saved = portal.token_store().save_refreshed(
        generation=3,
        tokens=_tokens("b24-at", "", client_endpoint="https://new.bitrix24.com/rest/", id_token="not-stored"),
        refresh_token=portal.refresh_token,
    )
    assert saved
    portal.refresh_from_db()
    assert (portal.access_token, portal.refresh_token, portal.token_generation) == ("b24-at", "b24-rt", 4)
    assert portal.client_endpoint == "https://new.bitrix24.com/rest/"


def test_a_lost_mark_made_on_a_stale_copy_does_not_undo_a_reconnect(xero_connection):
    stale = XeroConnection.objects.get(pk=xero_connection.pk)
    # The user reconnects meanwhile (accounts.services.xero saves a new grant, generation + 1).
    XeroConnection.objects.filter(pk=xero_connection.pk).update(
        access_token="reconnected", token_generation=stale.token_generation + 1
    )

    error = token_mark_lost(stale, "Xero said the organisation is gone")

    assert isinstance(error, AuthorizationLostError)
    row = XeroConnection.objects.get(pk=xero_connection.pk)
    assert (row.status, row.access_token) == (XeroConnection.Status.ACTIVE, "reconnected")
    token_mark_lost(row, "really gone")  # on the current generation it does mark
    row.refresh_from_db()
    assert (row.status, row.status_reason) == (XeroConnection.Status.NEEDS_RECONNECT, "really gone")


def test_a_client_may_save_the_portals_new_address_but_no_token_or_status(portal):
    credentials_update(portal, domain="moved.bitrix24.com", client_endpoint="https://moved.bitrix24.com/rest/")
    stored = Portal.objects.get(pk=portal.pk)
    assert (stored.domain, stored.client_endpoint) == ("moved.bitrix24.com", "https://moved.bitrix24.com/rest/")
    assert portal.domain == "moved.bitrix24.com"  # the copy in hand follows
    for forbidden in ({"access_token": "x"}, {"status": Portal.Status.ACTIVE}, {"token_generation": "9"}):
        with pytest.raises(ValueError):
            credentials_update(portal, **forbidden)


def test_a_copy_read_before_a_reconnect_is_not_taken_for_a_lost_grant(xero_connection, sandbox):
    """A worker holding the row from before the user reconnected: the stored status decides."""
    stale = XeroConnection.objects.get(pk=xero_connection.pk)
    stale.status = XeroConnection.Status.NEEDS_RECONNECT  # what it read then
    stale.status_reason = "the refresh token was rejected"

    assert XeroClient(stale).organisation_get() is not None
    assert XeroConnection.objects.get(pk=xero_connection.pk).status == XeroConnection.Status.ACTIVE


def test_a_grant_lost_in_the_store_still_ends_the_work_without_a_refresh(xero_connection, sandbox):
    XeroConnection.objects.filter(pk=xero_connection.pk).update(
        status=XeroConnection.Status.NEEDS_RECONNECT, status_reason="revoked", token_expires_at=timezone.now()
    )
    stale = XeroConnection.objects.get(pk=xero_connection.pk)
    since = last_call_id(sandbox)
    with pytest.raises(AuthorizationLostError) as lost:
        token_ensure_fresh(stale, xero_refresh)
    assert "revoked" in lost.value.message
    assert token_calls(sandbox, since) == []
