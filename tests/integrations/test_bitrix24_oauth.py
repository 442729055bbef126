"""The Bitrix24 OAuth server, through the sandbox: refreshing token pairs and app.info."""

from __future__ import annotations

import datetime as dt

import pytest

from integrations.bitrix24.errors import UserTokenExpiredError, UserTokenRejectedError
from integrations.bitrix24.oauth import app_info_belongs_to, bitrix24_app_info, bitrix24_refresh
from integrations.common.errors import PermanentError, RetryableError
from integrations.common.tokens import InvalidGrantError
from tests.integrations import bitrix24_fixtures
from tests.integrations.bitrix24_fixtures import CLIENT_ID, bitrix24_calls_since, last_call_id, oauth_token_calls

# Shared with the other Bitrix24 test modules (conftest.py belongs to another part of the suite).
acme_admin, b24_app = bitrix24_fixtures.acme_admin, bitrix24_fixtures.b24_app


def test_a_refresh_returns_a_new_pair_with_the_portals_endpoints(sandbox, b24_app, acme_admin):
    tokens = bitrix24_refresh(acme_admin["refresh_token"])

    assert tokens.access_token and tokens.access_token != acme_admin["access_token"]
    assert tokens.refresh_token and tokens.refresh_token != acme_admin["refresh_token"]
    assert tokens.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)
    assert "crm" in tokens.scope.split(",")
    assert tokens.extra["member_id"] == acme_admin["member_id"]
    assert tokens.extra["client_endpoint"] == acme_admin["client_endpoint"]
    assert tokens.extra["server_endpoint"]
    assert tokens.extra["user_id"] == acme_admin["id"]
    # The answer's "domain" is the OAuth server's; it must never be taken for the portal's.
    assert "domain" not in tokens.extra


def test_the_new_access_token_works_on_the_portal(sandbox, b24_app, acme_admin):
    tokens = bitrix24_refresh(acme_admin["refresh_token"])

    answer = sandbox.bitrix24_rest("crm.item.list", {"entityTypeId": 31}, auth=tokens.access_token)

    assert answer["total"] == 0


def test_a_spent_refresh_token_is_an_invalid_grant(sandbox, b24_app, acme_admin):
    bitrix24_refresh(acme_admin["refresh_token"])

    with pytest.raises(InvalidGrantError):
        bitrix24_refresh(acme_admin["refresh_token"])


def test_an_empty_refresh_token_is_an_invalid_grant_without_a_request(sandbox, b24_app):
    since = last_call_id(sandbox)

    with pytest.raises(InvalidGrantError):
        bitrix24_refresh("")

    assert bitrix24_calls_since(sandbox, since) == []


def test_a_refresh_goes_to_the_oauth_server_only(sandbox, b24_app, acme_admin):
    since = last_call_id(sandbox)

    bitrix24_refresh(acme_admin["refresh_token"])

    calls = bitrix24_calls_since(sandbox, since)
    assert len(calls) == 1 and oauth_token_calls(calls) == calls
    assert calls[0]["method"] == "GET"


def test_wrong_client_credentials_are_permanent_not_a_dead_grant(sandbox, b24_app, acme_admin, settings):
    bitrix24_refresh(acme_admin["refresh_token"])  # the sandbox pins our client id and secret
    settings.BITRIX24_CLIENT_SECRET = "not-our-secret"

    with pytest.raises(PermanentError) as caught:
        bitrix24_refresh("whatever")

    assert not isinstance(caught.value, InvalidGrantError)
    assert caught.value.code == "invalid_client"


def test_an_oauth_server_outage_is_retryable(sandbox, b24_app, acme_admin):
    sandbox.fault("bitrix24", "GET token", status=503, times=1)

    with pytest.raises(RetryableError):
        bitrix24_refresh(acme_admin["refresh_token"])


def test_app_info_tells_which_portal_and_app_a_token_belongs_to(sandbox, b24_app, acme_admin):
    bitrix24_refresh(acme_admin["refresh_token"])  # pins our client id on the sandbox's OAuth server
    user = sandbox.bitrix24_user("Sam Seller", invoices="own")

    info = bitrix24_app_info(user["access_token"])

    assert info["install"]["member_id"] == acme_admin["member_id"]
    assert info["user_id"] == user["id"]
    assert info["client_id"] == CLIENT_ID
    assert app_info_belongs_to(info, member_id=acme_admin["member_id"])
    assert not app_info_belongs_to(info, member_id="another-portal")
    assert not app_info_belongs_to(info, member_id="")


def test_app_info_of_a_token_issued_to_another_app_does_not_belong(sandbox, b24_app, acme_admin, settings):
    bitrix24_refresh(acme_admin["refresh_token"])
    info = bitrix24_app_info(sandbox.bitrix24_user("Sam Seller")["access_token"])
    settings.BITRIX24_CLIENT_ID = "app.somebody.else"

    assert not app_info_belongs_to(info, member_id=acme_admin["member_id"])


def test_app_info_of_a_forged_token_is_rejected(sandbox, b24_app):
    with pytest.raises(UserTokenRejectedError):
        bitrix24_app_info("forged-token")


def test_app_info_of_an_expired_token_asks_for_a_fresh_one(sandbox, b24_app, acme_admin):
    sandbox._call("POST", "/_sandbox/bitrix24/tokens/expire", json={})

    with pytest.raises(UserTokenExpiredError):
        bitrix24_app_info(acme_admin["access_token"])
