"""Connecting a portal to a Xero organisation (OAuth 2.0 code flow) and disconnecting it.

The consent runs in a new top-level window (Xero's login refuses frames). `state` is a random nonce
stored server-side (XeroOAuthState): single use, valid for XERO_STATE_MAX_AGE, bound to one portal
and to the person who started the flow: their frame sign-in (Bitrix24 user) and their browser (a
secret in a first-party cookie set by the connect view, of which the state stores a hash). Without
that binding an admin of portal A could send anyone a consent link and get the victim's Xero
organisation connected to portal A: the callback would only see A's valid state.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import Refused, UpstreamFailed
from accounts.models import FrameSession, Portal, XeroConnection, XeroOAuthState
from integrations.common.errors import ExternalAPIError
from integrations.common.tokens import InvalidGrantError, token_ensure_fresh
from integrations.xero.oauth import (
    xero_authorize_url,
    xero_connections,
    xero_delete_connection,
    xero_exchange_code,
    xero_refresh,
    xero_revoke,
)

logger = logging.getLogger(__name__)

XERO_STATE_MAX_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class ConnectOutcome:
    """Either `connection` (done) or `state` with `choices` (the user must pick an organisation)."""

    portal: Portal
    connection: XeroConnection | None = None
    state: XeroOAuthState | None = None
    choices: tuple[dict, ...] = ()


def xero_redirect_uri() -> str:
    return f"{settings.PUBLIC_URL}/xero/callback/"


@dataclass(frozen=True)
class ConsentStart:
    """Where to send the browser, and the secret it must keep (cookie) to finish the flow."""

    url: str
    browser_key: str


def xero_connect_start(
    *, portal: Portal, started_by_user_id: int | None, frame_session: FrameSession | None = None
) -> ConsentStart:
    """The Xero consent URL for this portal, with a fresh single-use state bound to the starter."""
    browser_key = secrets.token_urlsafe(32)
    state = XeroOAuthState.objects.create(
        portal=portal,
        nonce=secrets.token_urlsafe(32),
        started_by_user_id=started_by_user_id,
        frame_session=frame_session,
        browser_key_hash=_hash(browser_key),
    )
    return ConsentStart(
        url=xero_authorize_url(state=state.nonce, redirect_uri=xero_redirect_uri()), browser_key=browser_key
    )


def xero_connect_complete(*, code: str, state: str, browser_key: str) -> ConnectOutcome:
    """Xero's callback, step by step.

    1. Claim the state: known, unused, not expired, started in this browser by a user still signed
       in on that portal, portal still installed (else Refused 400).
    2. Exchange the code for a token set (redirect_uri must match the one sent).
    3. List the organisations this consent reached (authEventId from the access token).
    4. One organisation: save the connection. Several: keep the token set encrypted on the state
       row and let the user choose (xero_connection_choose).
    """
    oauth_state = _claim_state(nonce=state, browser_key=browser_key)
    if not code:
        raise Refused("Xero did not send an authorisation code. Start again from the app.", status=400)
    try:
        tokens = xero_exchange_code(code=code, redirect_uri=xero_redirect_uri())
        auth_event_id = str(tokens.extra.get("auth_event_id") or "")
        organisations = xero_connections(tokens.access_token, auth_event_id or None)
    except InvalidGrantError as exc:
        raise Refused(
            "Xero did not accept this sign-in (the code expired or was used). Connect again.", status=400
        ) from exc
    except ExternalAPIError as exc:
        raise UpstreamFailed(f"Xero refused the connection: {exc.message}") from exc
    if not organisations:
        raise Refused("This Xero login gave access to no organisation. Start again and pick one.", status=400)

    fields = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token or "",
        "expires_at": tokens.expires_at,
        "scope": tokens.scope,
        "xero_user_id": str(tokens.extra.get("xero_user_id") or ""),
        "auth_event_id": auth_event_id or str(organisations[0].get("authEventId", "")),
    }
    if len(organisations) == 1:
        connection = _save_connection(portal=oauth_state.portal, organisation=organisations[0], **fields)
        return ConnectOutcome(portal=oauth_state.portal, connection=connection)

    oauth_state.pending_access_token = fields["access_token"]
    oauth_state.pending_refresh_token = fields["refresh_token"]
    oauth_state.pending_expires_at = fields["expires_at"]
    oauth_state.pending_scope = fields["scope"]
    oauth_state.pending_xero_user_id = fields["xero_user_id"]
    oauth_state.pending_auth_event_id = fields["auth_event_id"]
    oauth_state.pending_connections = organisations
    oauth_state.save()
    return ConnectOutcome(portal=oauth_state.portal, state=oauth_state, choices=tuple(organisations))


def xero_connection_choose(*, state: str, tenant_id: str, browser_key: str) -> XeroConnection:
    """The user's pick among several organisations of one consent (the state's pending token set)."""
    with transaction.atomic():
        oauth_state = XeroOAuthState.objects.select_for_update().select_related("portal").filter(nonce=state).first()
        if (
            oauth_state is None
            or not _same_browser(oauth_state, browser_key)
            or oauth_state.used_at is None
            or oauth_state.chosen_at is not None
            or not oauth_state.pending_access_token
            or oauth_state.created_at < timezone.now() - XERO_STATE_MAX_AGE
        ):
            raise Refused("This choice has expired or was already made. Connect Xero again from the app.", status=400)
        organisation = next((c for c in oauth_state.pending_connections if c.get("tenantId") == tenant_id), None)
        if organisation is None:
            raise Refused("Choose one of the organisations listed.", status=400)
        connection = _save_connection(
            portal=oauth_state.portal,
            organisation=organisation,
            access_token=oauth_state.pending_access_token,
            refresh_token=oauth_state.pending_refresh_token,
            expires_at=oauth_state.pending_expires_at,
            scope=oauth_state.pending_scope,
            xero_user_id=oauth_state.pending_xero_user_id,
            auth_event_id=oauth_state.pending_auth_event_id,
        )
        # The token set now lives on the connection only.
        oauth_state.chosen_at = timezone.now()
        oauth_state.pending_access_token = ""
        oauth_state.pending_refresh_token = ""
        oauth_state.save()
    return connection


def xero_connection_disconnect(*, portal: Portal) -> XeroConnection | None:
    """Remove the organisation's connection at Xero, then wipe the tokens here whatever Xero said.

    DELETE /connections/{id} removes only this organisation. Revoking the refresh token would end
    every connection of that Xero user to this app (other portals included), so it is the fallback
    only when the connection id is unknown.
    """
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None:
        return None
    try:
        if connection.connection_id and connection.refresh_token:
            # An idle connection's access token has usually expired (30 min): refresh single-flight first.
            connection = token_ensure_fresh(connection, xero_refresh)
            xero_delete_connection(connection.access_token, connection.connection_id)
        elif connection.connection_id and connection.access_token:
            xero_delete_connection(connection.access_token, connection.connection_id)
        elif connection.refresh_token:
            xero_revoke(connection.refresh_token)
    except ExternalAPIError as exc:
        # A dead grant cannot be removed remotely; the local wipe below still disconnects us.
        logger.warning("Xero disconnect for portal %s failed at Xero: %s", portal.member_id, exc)
    XeroConnection.objects.filter(pk=connection.pk, portal=portal).update(
        access_token="",
        refresh_token="",
        token_expires_at=None,
        token_generation=connection.token_generation + 1,
        status=XeroConnection.Status.DISCONNECTED,
        status_reason="Disconnected from the app",
        updated_at=timezone.now(),
    )
    connection.refresh_from_db()
    return connection


def xero_connection_of(*, portal: Portal) -> XeroConnection | None:
    return XeroConnection.objects.filter(portal=portal).first()


def _hash(browser_key: str) -> str:
    return hashlib.sha256(browser_key.encode()).hexdigest()


def _same_browser(oauth_state: XeroOAuthState, browser_key: str) -> bool:
    return bool(browser_key) and hmac.compare_digest(oauth_state.browser_key_hash, _hash(browser_key))


def _claim_state(*, nonce: str, browser_key: str) -> XeroOAuthState:
    """Mark the state used, atomically: of two concurrent callbacks only one gets it. Checked
    first: the callback runs in the browser that started the flow, for a user still signed in."""
    now = timezone.now()
    started = XeroOAuthState.objects.select_related("frame_session").filter(nonce=nonce or "").first()
    if started is None or not _same_browser(started, browser_key):
        logging.getLogger("accounts.security").warning(
            "Xero callback refused: the state was not started in this browser (a forwarded consent link?)"
        )
        raise Refused(
            "This Xero sign-in was not started in this browser. Open the app in Bitrix24 and use "
            "Connect Xero there; never use a connection link someone sent you.",
            status=400,
        )
    session = started.frame_session
    if session is not None and (
        session.portal_id != started.portal_id or session.bitrix_user_id != started.started_by_user_id
    ):
        raise Refused("This Xero sign-in does not belong to the user who started it.", status=400)
    claimed = XeroOAuthState.objects.filter(
        nonce=nonce or "", used_at__isnull=True, created_at__gte=now - XERO_STATE_MAX_AGE
    ).update(used_at=now)
    if not claimed:
        raise Refused(
            "This Xero sign-in link is unknown, expired or already used. Connect again from the app.", status=400
        )
    oauth_state = XeroOAuthState.objects.select_related("portal").get(nonce=nonce)
    if not oauth_state.portal.is_active:
        raise Refused("The app is not installed on this Bitrix24 portal any more.", status=400)
    return oauth_state


def _save_connection(
    *,
    portal: Portal,
    organisation: dict,
    access_token: str,
    refresh_token: str,
    expires_at: datetime | None,
    scope: str,
    xero_user_id: str,
    auth_event_id: str,
) -> XeroConnection:
    """Create or update the portal's one connection; a reconnect turns needs_reconnect into active."""
    with transaction.atomic():
        connection = XeroConnection.objects.select_for_update().filter(portal=portal).first()
        connection = connection or XeroConnection(portal=portal)
        connection.tenant_id = str(organisation.get("tenantId", ""))
        connection.tenant_name = str(organisation.get("tenantName", ""))
        connection.connection_id = str(organisation.get("id", ""))
        connection.auth_event_id = auth_event_id
        connection.xero_user_id = xero_user_id
        connection.access_token = access_token
        connection.refresh_token = refresh_token
        connection.token_expires_at = expires_at
        connection.token_generation += 1
        connection.scope = scope
        connection.status = XeroConnection.Status.ACTIVE
        connection.status_reason = ""
        connection.save()
    logger.info("portal %s connected to Xero tenant %s", portal.member_id, connection.tenant_id)
    return connection
