"""Signing a Bitrix24 user in from the app frame, for one portal only.

The frame is a cross-site iframe, where browsers block or partition third-party cookies. So the
sign-in is a signed, short-lived token naming a FrameSession row; pages carry it in links and forms
(`?ft=`) and fetch() calls in the `X-Frame-Token` header. Every page mints a fresh token, so an
active user is never cut off, while FRAME_SESSION_MAX_AGE bounds how long one sign-in can live.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core import signing
from django.utils import timezone

from accounts.errors import Refused, Unverified, UpstreamFailed
from accounts.models import FrameSession, Portal
from accounts.services.portal import expiry_from_seconds
from integrations.bitrix24.api import Bitrix24Api
from integrations.bitrix24.inbound import FramePost, application_token_matches
from integrations.common.errors import ExternalAPIError

logger = logging.getLogger(__name__)

FRAME_TOKEN_SALT = "accounts.frame-session"
FRAME_TOKEN_MAX_AGE = timedelta(hours=1)
FRAME_SESSION_MAX_AGE = timedelta(hours=12)


def frame_session_start(*, frame: FramePost) -> FrameSession:
    """A frame POST from Bitrix24 -> a FrameSession for that user on that portal.

    1. The portal must be known by member_id and installed.
    2. APPLICATION_TOKEN must equal the stored one (constant time).
    3. AUTH_ID must work against the STORED client_endpoint (user.current): a token of another
       portal, or a made-up one, fails here.
    4. user.admin with the same token says whether the user may manage the connection.
    """
    portal = Portal.objects.filter(member_id=frame.member_id or "").first()
    if portal is None:
        raise Refused("This Bitrix24 portal has not installed the app. Install it from the Bitrix24 Market first.")
    if not portal.is_active:
        raise Refused(portal_unavailable_message(portal))
    if not application_token_matches(portal.application_token, frame.application_token or ""):
        raise Unverified("This page was not opened by the Bitrix24 portal the app is installed on.")
    if not frame.auth_id:
        raise Unverified("Bitrix24 did not send the user's access token (AUTH_ID).")

    api = Bitrix24Api.for_portal(portal, user_token=frame.auth_id, interactive=True)
    try:
        user = api.user_current()
        is_admin = api.user_admin()
    except ExternalAPIError as exc:
        if exc.retryable:
            raise UpstreamFailed(f"Bitrix24 did not answer: {exc.message}") from exc
        raise Unverified(f"Bitrix24 did not accept the user's token: {exc.message}") from exc
    if not user.id:
        raise Unverified("Bitrix24 did not say who the user is.")

    name = " ".join(part for part in (user.name, user.last_name) if part) or f"User {user.id}"
    return FrameSession.objects.create(
        portal=portal,
        bitrix_user_id=user.id,
        name=name,
        is_admin=is_admin,
        access_token=frame.auth_id,
        refresh_token=frame.refresh_id or "",
        token_expires_at=expiry_from_seconds(frame.auth_expires),
        lang=(frame.lang or "")[:10],
        time_zone=user.time_zone[:64],
    )


def portal_unavailable_message(portal: Portal) -> str:
    """What happened to a portal that is not active, and what an administrator must do."""
    if portal.status == Portal.Status.NEEDS_REAUTH:
        return (
            "Sync with Xero is paused: Bitrix24 stopped accepting this app's access to the portal "
            f"({portal.status_reason or 'its authorisation was revoked or expired'}). Nothing stored is lost. "
            "A Bitrix24 administrator must reinstall the "
            "app (Applications > My applications > Xero > Reinstall) to restore its access."
        )
    return "The app is not installed on this Bitrix24 portal any more. A Bitrix24 administrator can install it again."


def frame_token_issue(*, session: FrameSession) -> str:
    return signing.dumps({"fs": session.pk, "p": session.portal_id}, salt=FRAME_TOKEN_SALT, compress=True)


def frame_session_resolve(*, token: str) -> FrameSession:
    """The FrameSession a frame token names, or Refused (missing, forged, expired, other portal)."""
    if not token:
        raise Refused("Open this page from the app inside Bitrix24 (the sign-in token is missing).")
    try:
        payload = signing.loads(token, salt=FRAME_TOKEN_SALT, max_age=FRAME_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise Refused("Your sign-in has expired. Open the app from Bitrix24 again.") from exc
    except signing.BadSignature as exc:
        raise Refused("The sign-in token is not valid. Open the app from Bitrix24 again.") from exc
    session = (
        FrameSession.objects.select_related("portal").filter(pk=payload.get("fs"), portal_id=payload.get("p")).first()
    )
    if session is None:
        raise Refused("This sign-in has ended. Open the app from Bitrix24 again.")
    if not session.portal.is_active:
        raise Refused(portal_unavailable_message(session.portal))
    if session.created_at < timezone.now() - FRAME_SESSION_MAX_AGE:
        raise Refused("Your sign-in has expired. Open the app from Bitrix24 again.")
    return session


def frame_session_bitrix24_client(*, session: FrameSession) -> Bitrix24Api:
    """The Bitrix24 API acting as the signed-in user, so Bitrix24's permissions decide."""
    return Bitrix24Api.for_portal(session.portal, user_token=session.access_token, interactive=True)
