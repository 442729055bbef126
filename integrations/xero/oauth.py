"""Xero's identity service: consent URL, code exchange, refresh, tenants, revoke, disconnect.

We talk to the token endpoint ourselves (requests, explicit timeouts) instead of letting xero-python
refresh. The SDK refreshes implicitly inside whichever API call first sees a token near expiry, in
every worker at once and without a lock; with rotating refresh tokens the losers keep pairs that die
at the next rotation (xero-api.md §1.3, §11.4 pitfall 3). Rotation is owned by
integrations.common.tokens.token_ensure_fresh (single flight, persisted before use), which calls
xero_refresh below; the SDK only ever sees an access token.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.utils import timezone

from integrations import endpoints
from integrations.common.errors import PermanentError, RateLimitedError, RetryableError
from integrations.common.tokens import InvalidGrantError, TokenSet

# accounting.settings, not .read: "Add New Product" creates Items, and listing accounts, tax rates
# and currencies needs it too. accounting.invoices covers invoices and items, accounting.payments
# marks invoices paid (granular scopes, mandatory for apps created after 2 March 2026; §1.4).
DEFAULT_SCOPES = "offline_access accounting.invoices accounting.payments accounting.contacts accounting.settings"

# (connect, read) seconds. The token endpoint answers in well under a second; a read that takes
# longer is better retried (with the same refresh token, which stays valid for a grace period).
TOKEN_TIMEOUT = (5, 20)
IDENTITY_TIMEOUT = (5, 30)


def _client_credentials() -> tuple[str, str]:
    return settings.XERO_CLIENT_ID, settings.XERO_CLIENT_SECRET


def xero_authorize_url(*, state: str, redirect_uri: str, scopes: str = DEFAULT_SCOPES) -> str:
    """Where to send the user to consent (in a new window: Xero's login refuses to be framed)."""
    client_id, _ = _client_credentials()
    query = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scopes, "state": state}
    )
    return f"{endpoints.xero_authorize_url()}?{query}"


def xero_exchange_code(*, code: str, redirect_uri: str) -> TokenSet:
    """Trade the authorisation code from the callback for the first token set."""
    return _token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})


def xero_refresh(refresh_token: str) -> TokenSet:
    """A new token set for `refresh_token` (which Xero then retires: persist the answer first).

    Raises InvalidGrantError for a dead refresh token, RetryableError for network failures and 5xx.
    """
    return _token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})


def xero_connections(access_token: str, auth_event_id: str | None = None) -> list[dict]:
    """The organisations this token reaches (ORGANISATION tenants only, not practices).

    With `auth_event_id` (from the access token of a fresh consent, TokenSet.extra) only those the
    user has just picked.
    """
    params = {"authEventId": auth_event_id} if auth_event_id else None
    response = _identity("GET", "/connections", access_token, params=params)
    return [c for c in response.json() if c.get("tenantType") == "ORGANISATION"]


def xero_delete_connection(access_token: str, connection_id: str) -> None:
    """Disconnect one organisation (the connection's id, not the tenant id). Already gone is fine."""
    _identity("DELETE", f"/connections/{connection_id}", access_token, ok_statuses=(200, 204, 404))


def xero_revoke(refresh_token: str) -> None:
    """Revoke the grant: every organisation this user connected to the app is disconnected."""
    client_id, client_secret = _client_credentials()
    response = _send(
        "POST",
        endpoints.xero_revoke_url(),
        data={"token": refresh_token, "client_id": client_id, "client_secret": client_secret},
        timeout=TOKEN_TIMEOUT,
    )
    if response.status_code >= 400:
        _raise_for(response, "revoking the Xero grant")


# --- internals -----------------------------------------------------------------------------------


def _token_request(form: dict) -> TokenSet:
    client_id, client_secret = _client_credentials()
    # client_secret_post, as the SDK does; Xero (and the sandbox) accept Basic auth just as well.
    body = {**form, "client_id": client_id, "client_secret": client_secret}
    response = _send("POST", endpoints.xero_token_url(), data=body, timeout=TOKEN_TIMEOUT)
    if response.status_code == 400 and _json(response).get("error") == "invalid_grant":
        raise InvalidGrantError(_json(response).get("error_description", ""))
    if response.status_code != 200:
        _raise_for(response, "the Xero token endpoint")
    data = _json(response)
    if not data.get("access_token"):
        raise RetryableError("Xero's token endpoint answered without an access token", system="xero", status=200)
    claims = _jwt_claims(data["access_token"])
    extra = {
        k: v
        for k, v in {
            "id_token": data.get("id_token"),
            "auth_event_id": claims.get("authentication_event_id"),
            "xero_user_id": claims.get("xero_userid"),
        }.items()
        if v
    }
    return TokenSet(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token", ""),
        expires_at=timezone.now() + timedelta(seconds=int(data.get("expires_in") or 1800)),
        scope=data.get("scope") or "",
        extra=extra,
    )


def _identity(
    method: str,
    path: str,
    access_token: str,
    *,
    params: dict[str, str] | None = None,
    ok_statuses: tuple[int, ...] = (200,),
) -> requests.Response:
    response = _send(
        method,
        f"{endpoints.xero_identity_base()}{path}",
        params=params,
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        timeout=IDENTITY_TIMEOUT,
    )
    if response.status_code not in ok_statuses:
        _raise_for(response, f"Xero {method} {path}")
    return response


def _send(method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        return requests.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise RetryableError(f"Xero could not be reached: {exc}", system="xero", code="network") from exc


def _raise_for(response: requests.Response, what: str) -> None:
    data = _json(response)
    detail = data.get("error_description") or data.get("error") or data.get("Detail") or response.text[:300]
    status = response.status_code
    if status == 429:
        raise RateLimitedError(
            f"{what}: too many requests",
            system="xero",
            status=status,
            code=response.headers.get("X-Rate-Limit-Problem"),
            retry_after=_float(response.headers.get("Retry-After")) or 60.0,
        )
    if status >= 500:
        raise RetryableError(f"{what} failed: {detail}", system="xero", status=status)
    raise PermanentError(
        f"{what} refused: {detail}", system="xero", status=status, code=data.get("error"), payload=data
    )


def _json(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _jwt_claims(token: str) -> dict:
    """The claims of a JWT access token, unverified: read only to learn which consent it came from.

    It came straight from the token endpoint over TLS, so there is nothing to verify it against.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
