"""The Bitrix24 OAuth server: refreshing a portal's token pair, and app.info about a token.

The client secret goes to the OAuth server only, never to a portal or a browser (§4.2). Refresh
tokens rotate: every refresh returns a new pair and the old refresh token is spent, so callers
must go through token_ensure_fresh (single-flight) rather than call bitrix24_refresh directly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlparse

import requests
from django.conf import settings

from integrations.bitrix24.errors import (
    SYSTEM,
    TokenExpiredError,
    TokenRejectedError,
    UserTokenExpiredError,
    UserTokenRejectedError,
    error_code,
    error_for,
    transport_error,
)
from integrations.common.errors import PermanentError, RetryableError
from integrations.common.tokens import InvalidGrantError, TokenSet
from integrations.endpoints import bitrix24_oauth_rest_base, bitrix24_oauth_token_url

TIMEOUT = (5, 30)


def _json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        if response.status_code >= 500 or response.status_code in (429, 503):
            raise RetryableError(
                f"{what}: HTTP {response.status_code}", system=SYSTEM, status=response.status_code
            ) from None
        raise PermanentError(
            f"{what}: HTTP {response.status_code}, not JSON", system=SYSTEM, status=response.status_code
        ) from None


def _expires_at(body: dict) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    try:
        if body.get("expires"):
            return dt.datetime.fromtimestamp(int(body["expires"]), dt.UTC)
        return now + dt.timedelta(seconds=int(body.get("expires_in") or 3600))
    except (TypeError, ValueError, OverflowError):
        return now + dt.timedelta(seconds=3600)


def token_set_from_response(body: dict) -> TokenSet:
    """A TokenSet from the OAuth server's token JSON (§4.2)."""
    client_endpoint = str(body.get("client_endpoint") or "")
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]),
        expires_at=_expires_at(body),
        scope=str(body.get("scope") or ""),
        extra={
            "member_id": str(body.get("member_id") or ""),
            "client_endpoint": client_endpoint,
            "server_endpoint": str(body.get("server_endpoint") or ""),
            # Not "domain": the answer's domain is the OAuth server's, and the portal's host is
            # only implied by client_endpoint (which in the sandbox is not the portal's domain).
            # A domain change reaches Portal.domain through the client's 302 handling instead.
            "client_host": urlparse(client_endpoint).netloc,
            "user_id": body.get("user_id"),
            "status": str(body.get("status") or ""),
        },
    )


def bitrix24_refresh(refresh_token: str) -> TokenSet:
    """Spend `refresh_token` for a new pair. Raises InvalidGrantError when the grant is dead
    (spent, expired, revoked), RetryableError on network/5xx, PermanentError otherwise
    (invalid_client is our own misconfiguration, not the portal's: it must not mark portals)."""
    if not refresh_token:
        raise InvalidGrantError("no refresh token stored")
    params = {
        "grant_type": "refresh_token",
        "client_id": settings.BITRIX24_CLIENT_ID,
        "client_secret": settings.BITRIX24_CLIENT_SECRET,
        "refresh_token": refresh_token,
    }
    try:
        response = requests.get(bitrix24_oauth_token_url(), params=params, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise transport_error(exc, method="oauth/token") from None
    body = _json(response, "oauth/token")
    code = error_code(body)
    if code == "INVALID_GRANT":
        raise InvalidGrantError(str(body.get("error_description") or "invalid_grant"))
    if code is not None or response.status_code >= 400:
        raise error_for(response.status_code, body)
    if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
        raise RetryableError("oauth/token answered without a token pair", system=SYSTEM, status=response.status_code)
    return token_set_from_response(body)


def bitrix24_app_info(access_token: str) -> dict:
    """The OAuth server's view of a token: {"client_id", "scope", "user_id", "install":
    {"member_id", "domain", "client_endpoint", "installed", ...}}. Use it to check that a token
    from a frame or installer POST was issued to this app for the portal it claims.

    The token belongs to a user, not to our stored grant, so token errors come back as
    UserTokenExpiredError / UserTokenRejectedError."""
    if not access_token:
        raise UserTokenRejectedError("no access token given", system=SYSTEM)
    url = f"{bitrix24_oauth_rest_base().rstrip('/')}/app.info"
    try:
        response = requests.get(url, params={"auth": access_token}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise transport_error(exc, method="app.info") from None
    body = _json(response, "app.info")
    if error_code(body) is not None or response.status_code >= 400:
        error = error_for(response.status_code, body)
        if isinstance(error, TokenExpiredError):
            raise UserTokenExpiredError(error.message, system=SYSTEM, status=error.status, code=error.code) from None
        if isinstance(error, TokenRejectedError):
            raise UserTokenRejectedError(error.message, system=SYSTEM, status=error.status, code=error.code) from None
        raise error
    info = body.get("result", body) if isinstance(body, dict) else None
    if not isinstance(info, dict):
        raise RetryableError("app.info answered without a result", system=SYSTEM, status=response.status_code)
    return info


def app_info_belongs_to(info: dict, *, member_id: str) -> bool:
    """True when app.info says the token was issued to this app (our client id) on the portal
    `member_id`. Without a configured client id nothing matches: "any app" is never good enough."""
    raw_install = info.get("install")
    install: dict = raw_install if isinstance(raw_install, dict) else {}
    info_member = str(install.get("member_id") or info.get("member_id") or "")
    if not member_id or info_member != member_id:
        return False
    client_id = settings.BITRIX24_CLIENT_ID
    return bool(client_id) and str(info.get("client_id") or "") == client_id
