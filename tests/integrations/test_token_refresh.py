"""Single-flight refresh (integrations.common.tokens) with real threads, PostgreSQL, Redis and the sandbox."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection as db
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from integrations.common.errors import RetryableError
from integrations.common.tokens import InvalidGrantError, TokenSet, token_ensure_fresh
from integrations.xero.client import XeroClient
from integrations.xero.oauth import xero_refresh

from .conftest import last_call_id, token_calls


def _in_threads(count: int, work) -> list:
    """Run work(i) in `count` threads started together; return results (or the exceptions raised)."""
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which asserts on it
            results[i] = exc
        finally:
            db.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _expire_in_our_database(sandbox, connection: XeroConnection) -> None:
    XeroConnection.objects.filter(pk=connection.pk).update(token_expires_at=timezone.now() - timedelta(minutes=1))


def _expire_at_xero(sandbox, connection: XeroConnection) -> None:
    """Xero stops accepting the access token although our row says it has 29 minutes left."""
    response = sandbox.http.post(f"{sandbox.base_url}/_sandbox/xero/tokens/expire", json={}, timeout=10)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("expire", [_expire_in_our_database, _expire_at_xero], ids=["our_clock", "xeros_clock"])
def test_twenty_concurrent_calls_with_an_expired_xero_token_make_exactly_one_refresh_call_and_the_stored_refresh_token_is_the_newest(
    transactional_db, xero_connection, sandbox, expire
):
    original = xero_connection.refresh_token
    # No grace window: a refresh token dies the moment it is used, so only the newest one works.
    sandbox._call("POST", "/_sandbox/xero/settings", json={"refresh_grace_s": 0})
    expire(sandbox, xero_connection)
    since = last_call_id(sandbox)

    def call(_i):
        client = XeroClient(XeroConnection.objects.get(pk=xero_connection.pk))
        return client.organisation_get().name

    results = _in_threads(20, call)

    assert [r for r in results if not isinstance(r, str)] == []
    assert len(token_calls(sandbox, since)) == 1
    stored = XeroConnection.objects.get(pk=xero_connection.pk)
    assert stored.token_generation == xero_connection.token_generation + 1
    assert stored.refresh_token != original
    assert stored.token_expires_at - timezone.now() > timedelta(minutes=25)
    # The one refresh's answer is what is stored: Xero honours it, and no longer the one it replaced.
    with pytest.raises(InvalidGrantError):
        xero_refresh(original)
    assert xero_refresh(stored.refresh_token).access_token


def test_a_token_with_time_left_is_used_without_a_refresh(xero_connection, sandbox):
    since = last_call_id(sandbox)
    same = token_ensure_fresh(xero_connection, xero_refresh)
    assert same is xero_connection
    assert token_calls(sandbox, since) == []


def test_a_forced_refresh_is_skipped_when_a_sibling_already_moved_the_generation(xero_connection, sandbox):
    seen = xero_connection.token_generation
    sibling = token_ensure_fresh(xero_connection, xero_refresh, force=True, seen_generation=seen)
    since = last_call_id(sandbox)

    mine = token_ensure_fresh(xero_connection, xero_refresh, force=True, seen_generation=seen)

    assert token_calls(sandbox, since) == []
    assert mine.token_generation == sibling.token_generation == seen + 1
    assert mine.access_token == sibling.access_token


def test_invalid_grant_after_a_siblings_rotation_uses_the_siblings_tokens(xero_connection):
    """A reconnect saved a new grant (outside the lock) while our refresh token was being rejected."""
    XeroConnection.objects.filter(pk=xero_connection.pk).update(token_expires_at=timezone.now())

    def rejected_after_a_reconnect(_refresh_token: str) -> TokenSet:
        XeroConnection.objects.filter(pk=xero_connection.pk).update(
            access_token="from-the-reconnect",
            token_expires_at=timezone.now() + timedelta(minutes=30),
            token_generation=xero_connection.token_generation + 5,
        )
        raise InvalidGrantError("rotated by someone else")

    stale = XeroConnection.objects.get(pk=xero_connection.pk)
    row = token_ensure_fresh(stale, rejected_after_a_reconnect)

    assert row.access_token == "from-the-reconnect"
    assert row.status == XeroConnection.Status.ACTIVE


def test_a_refresh_that_fails_at_xero_leaves_the_stored_tokens_and_status_alone(xero_connection, sandbox):
    XeroConnection.objects.filter(pk=xero_connection.pk).update(token_expires_at=timezone.now())
    sandbox.fault("xero", "POST /xero/identity/connect/token", status=503)
    stale = XeroConnection.objects.get(pk=xero_connection.pk)

    with pytest.raises(RetryableError):
        token_ensure_fresh(stale, xero_refresh)

    row = XeroConnection.objects.get(pk=xero_connection.pk)
    assert (row.refresh_token, row.token_generation, row.status) == (
        xero_connection.refresh_token,
        xero_connection.token_generation,
        XeroConnection.Status.ACTIVE,
    )
    assert token_ensure_fresh(row, xero_refresh).token_generation == row.token_generation + 1  # the retry works


def test_a_bitrix24_portal_is_refreshed_by_the_same_recipe_and_stored_encrypted(portal):
    Portal.objects.filter(pk=portal.pk).update(refresh_token="b24-refresh-1")
    portal.refresh_from_db()
    used: list[str] = []

    def bitrix24_refresh(refresh_token: str) -> TokenSet:
        used.append(refresh_token)
        return TokenSet(
            "b24-access-2",
            "b24-refresh-2",
            timezone.now() + timedelta(hours=1),
            scope="crm",
            extra={"client_endpoint": "https://acme-new.bitrix24.com/rest/", "status": "hacked"},
        )

    row = token_ensure_fresh(portal, bitrix24_refresh)

    assert used == ["b24-refresh-1"]
    assert (row.access_token, row.refresh_token, row.scope) == ("b24-access-2", "b24-refresh-2", "crm")
    assert row.client_endpoint == "https://acme-new.bitrix24.com/rest/"
    assert row.status == Portal.Status.ACTIVE and row.token_generation == 1
    with db.cursor() as cursor:
        cursor.execute("SELECT refresh_token FROM accounts_portal WHERE id = %s", [portal.pk])
        assert "b24-refresh-2" not in cursor.fetchone()[0]


def test_a_bitrix24_portal_whose_grant_died_is_marked_needs_reauth(portal):
    from integrations.common.errors import AuthorizationLostError

    Portal.objects.filter(pk=portal.pk).update(refresh_token="b24-dead")
    portal.refresh_from_db()

    def dead(_refresh_token: str) -> TokenSet:
        raise InvalidGrantError("expired_token")

    with pytest.raises(AuthorizationLostError) as lost:
        token_ensure_fresh(portal, dead)
    assert lost.value.system == "bitrix24"
    assert Portal.objects.get(pk=portal.pk).status == Portal.Status.NEEDS_REAUTH


@pytest.mark.django_db
def test_a_token_rejected_after_a_reconnect_does_not_undo_the_reconnect():
    """The Bitrix24 client marks a portal needs_reauth through the token module, guarded by the
    generation it used: a reinstall that saved a newer grant meanwhile stands."""
    from integrations.bitrix24.client import Bitrix24Client
    from integrations.bitrix24.errors import TokenRejectedError
    from tests.factories import PortalFactory

    rejected = TokenRejectedError("expired_token", system="bitrix24", code="expired_token")
    portal = PortalFactory(token_generation=3)
    stale = Portal.objects.get(pk=portal.pk)
    Portal.objects.filter(pk=portal.pk).update(token_generation=4)  # the reinstall's new grant

    Bitrix24Client(stale)._mark_needs_reauth(rejected)
    assert Portal.objects.get(pk=portal.pk).status == Portal.Status.ACTIVE

    Bitrix24Client(Portal.objects.get(pk=portal.pk))._mark_needs_reauth(rejected)
    assert Portal.objects.get(pk=portal.pk).status == Portal.Status.NEEDS_REAUTH
