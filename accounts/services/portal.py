"""Installing, re-installing and uninstalling the app on a Bitrix24 portal.

Trust rules (docs/bitrix24-api.md §4.3–§4.4, style B.1). The application token is NOT proof that
Bitrix24 sent a request: Bitrix24 puts it into the app frame's POST for every user of the portal,
so any portal user can replay it. Only Bitrix24's OAuth server (the configured one, or SANDBOX_URL)
is trusted about the installation:
- Install (the installer page or ONAPPINSTALL, new portal or re-install): `app.info` with the
  delivered access token must name our client id (BITRIX24_CLIENT_ID) and the member_id the request
  claims, and the token's user must be an admin. The domain and client_endpoint we store are the
  ones app.info names, never the payload's.
- Uninstall: real only when the stored tokens no longer work (app.info refuses the access token and
  the OAuth server refuses the refresh token). While they work, the app is still installed and the
  event is a forgery, whatever token it carries.
- Every other event proves itself with the stored application_token (constant time): it only
  enqueues work that reads Bitrix24 with our own token, so a replay cannot change anything.
Refused attempts are logged on the "accounts.security" logger.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import hooks
from accounts.errors import Refused, Unverified, UpstreamFailed
from accounts.models import Portal
from accounts.services.bindings import (
    portal_bind_events,
    portal_bind_offline_events,
    portal_bind_placements,
    portal_invoice_mode,
)
from accounts.services.event_senders import event_sender_verify
from integrations.bitrix24.api import Bitrix24Api
from integrations.bitrix24.inbound import Bitrix24Event, FramePost, application_token_matches
from integrations.bitrix24.oauth import app_info_belongs_to, bitrix24_app_info, bitrix24_refresh
from integrations.common.errors import AuthorizationLostError, ExternalAPIError
from integrations.common.tokens import InvalidGrantError, token_ensure_fresh

logger = logging.getLogger(__name__)
security_log = logging.getLogger("accounts.security")


@dataclass(frozen=True)
class InstallOutcome:
    portal: Portal
    created: bool
    events: tuple[str, ...]
    placements: tuple[str, ...]


# Bitrix24 access tokens live an hour; anything claimed beyond a day is capped (a huge AUTH_EXPIRES
# would overflow a datetime), and an expiry we cannot read means "refresh before use".
MAX_TOKEN_LIFETIME_S = 24 * 3600


def expiry_from_seconds(seconds: Any) -> datetime | None:
    try:
        value = int(str(seconds).strip()) if isinstance(seconds, (str, int)) else None
    except ValueError:
        return None
    if value is None or value < 0:
        return None
    return timezone.now() + timedelta(seconds=min(value, MAX_TOKEN_LIFETIME_S))


def portal_install(*, frame: FramePost) -> InstallOutcome:
    """The installer page, step by step.

    1. Ask the OAuth server who this token belongs to (app.info): it must be our app on the portal
       the POST names (member_id); its client_endpoint is the one we use and store.
    2. With the installer's own token: require an admin, detect the invoice mode, bind events and
       placements (idempotent, so a re-install or a retry after a failure is harmless).
    3. Only then upsert the Portal by member_id, in one transaction: a failure in 1–2 stores nothing
       and leaves a previous installation untouched.
    """
    install = _installation_vouched_for(access_token=frame.auth_id, member_id=frame.member_id)
    if not frame.application_token:
        raise Refused("The installer request carries no APPLICATION_TOKEN.", status=400)
    target = Portal(
        member_id=frame.member_id,
        domain=str(install.get("domain") or ""),
        client_endpoint=str(install["client_endpoint"]),
    )
    client = Bitrix24Api.for_portal(target, user_token=frame.auth_id, interactive=True)
    try:
        _require_admin(client)
        installed_by = _current_user_id(client)
        target.invoice_mode = portal_invoice_mode(client)
        events = portal_bind_events(portal=target, client=client)
        target.offline_events = portal_bind_offline_events(portal=target, client=client)
        placements = portal_bind_placements(portal=target, client=client)
    except ExternalAPIError as exc:
        raise UpstreamFailed(f"Bitrix24 refused a setup call: {exc.message}") from exc

    with transaction.atomic():
        portal = Portal.objects.select_for_update().filter(member_id=frame.member_id).first()
        created = portal is None
        portal = portal or Portal(member_id=frame.member_id)
        portal.domain = target.domain or portal.domain or frame.domain
        portal.client_endpoint = target.client_endpoint
        portal.access_token = frame.auth_id
        portal.refresh_token = frame.refresh_id
        portal.token_expires_at = expiry_from_seconds(frame.auth_expires)
        portal.token_generation += 1
        portal.application_token = frame.application_token
        portal.scope = frame.application_scope or str(install.get("scope") or "") or portal.scope
        portal.installed_by_user_id = installed_by
        portal.invoice_mode = target.invoice_mode
        portal.offline_events = target.offline_events
        portal.status = Portal.Status.ACTIVE
        portal.status_reason = ""
        portal.uninstalled_at = None
        portal.save()
    _stage_map_defaults(portal=portal, client=client)
    logger.info("portal %s installed (%s mode, created=%s)", portal.member_id, portal.invoice_mode, created)
    return InstallOutcome(portal=portal, created=created, events=events, placements=placements)


def _stage_map_defaults(*, portal: Portal, client: Bitrix24Api) -> None:
    """Map every invoice stage to a Xero status by its semantics, so invoices flow from the first
    change; the admin reviews the map in the app's setup page. Not fatal: setup can redo it."""
    try:
        hooks.sync.stage_map_refresh(portal=portal, client=client)
    except ExternalAPIError as exc:
        logger.warning("portal %s: default stage map not applied yet: %s", portal.member_id, exc)


def portal_record_install_event(*, event: Bitrix24Event) -> Portal:
    """ONAPPINSTALL, which may come before or after the installer page, and on every re-install.

    Proven like the installer page (app.info + an admin's token), whether the portal is new or
    known: the application token alone proves nothing (every portal user has it). A known portal
    with an application_token must also present the same one.
    """
    auth = event.auth
    try:
        if not auth.access_token:
            raise Unverified("ONAPPINSTALL without an access token.")
        known = Portal.objects.filter(member_id=auth.member_id).first()
        if (
            known is not None
            and known.application_token
            and not application_token_matches(known.application_token, auth.application_token)
        ):
            raise Unverified("ONAPPINSTALL application_token does not match this portal's.")
        install = _installation_vouched_for(access_token=auth.access_token, member_id=auth.member_id)
        client_endpoint, domain = str(install["client_endpoint"]), str(install.get("domain") or "")
        target = Portal(member_id=auth.member_id, domain=domain, client_endpoint=client_endpoint)
        client = Bitrix24Api.for_portal(target, user_token=auth.access_token, interactive=True)
        try:
            _require_admin(client)
            installed_by = _current_user_id(client)
        except ExternalAPIError as exc:
            raise Unverified(f"Bitrix24 did not confirm the installing user: {exc.message}") from exc
    except Refused as refusal:
        _log_refused("ONAPPINSTALL", auth.member_id, refusal)
        raise

    with transaction.atomic():
        portal = Portal.objects.select_for_update().filter(member_id=auth.member_id).first()
        # The installer page may have stored a token meanwhile; both come from the same install.
        if (
            portal is not None
            and portal.application_token
            and not application_token_matches(portal.application_token, auth.application_token)
        ):
            raise Unverified("ONAPPINSTALL application_token does not match this portal's.")
        portal = portal or Portal(member_id=auth.member_id)
        portal.domain = domain or portal.domain or auth.domain
        portal.client_endpoint = client_endpoint
        portal.access_token = auth.access_token
        portal.refresh_token = auth.refresh_token or portal.refresh_token
        portal.token_expires_at = expiry_from_seconds(auth.expires_in)
        portal.token_generation += 1
        portal.application_token = auth.application_token
        portal.scope = auth.scope or portal.scope
        portal.installed_by_user_id = installed_by
        portal.status = Portal.Status.ACTIVE
        portal.status_reason = ""
        portal.uninstalled_at = None
        portal.save()
    return portal


def portal_uninstall(*, event: Bitrix24Event) -> Portal:
    """ONAPPUNINSTALL: real only when Bitrix24 has revoked our tokens (see the module docstring).

    Without CLEAN, tokens, the application_token and every frame session are wiped; background
    work stops because the portal is no longer active; links, logs, settings and the Xero
    connection are kept so a re-install resumes. With CLEAN=1 (the admin chose to delete the app's
    data) the Xero connection is revoked at Xero and everything of the portal is deleted.
    """
    try:
        # The whole row, tokens read together (the check below may refresh them).
        portal = Portal.objects.get(pk=portal_verify_event(event=event).pk)
        _require_uninstalled_at_bitrix24(portal)
    except Refused as refusal:
        _log_refused("ONAPPUNINSTALL", event.auth.member_id, refusal)
        raise
    if _clean(event):
        return portal_delete_data(portal=portal)
    with transaction.atomic():
        portal = Portal.objects.select_for_update().get(pk=portal.pk)
        portal.status = Portal.Status.UNINSTALLED
        portal.status_reason = "Uninstalled in Bitrix24"
        portal.access_token = ""
        portal.refresh_token = ""
        portal.application_token = ""
        portal.token_expires_at = None
        portal.token_generation += 1
        portal.uninstalled_at = timezone.now()
        portal.save()
        portal.frame_sessions.all().delete()
    logger.info("portal %s uninstalled (data kept for a re-install)", portal.member_id)
    return portal


def portal_delete_data(*, portal: Portal) -> Portal:
    """CLEAN uninstall: revoke the Xero connection at Xero, then delete the portal and, by cascade,
    everything stored for it (tokens, links, jobs, inbox, logs, settings, maps, sessions)."""
    from accounts.services.xero import xero_connection_disconnect

    xero_connection_disconnect(portal=portal)  # never raises for Xero's refusal: the wipe goes on
    member_id = portal.member_id
    Portal.objects.filter(pk=portal.pk).delete()
    logger.info("portal %s uninstalled with CLEAN: its data was deleted and Xero disconnected", member_id)
    portal.status = Portal.Status.UNINSTALLED
    return portal


def _require_uninstalled_at_bitrix24(portal: Portal) -> None:
    """Unverified unless Bitrix24's OAuth server has revoked the app's tokens for this portal.

    The stored access token first (app.info); when it is refused, the refresh token (single-flight,
    so a concurrent worker's refresh is not broken). A token that still works means the app is
    installed: the uninstall did not come from Bitrix24. UpstreamFailed when the OAuth server does
    not answer: nothing changes, and the keep-alive sweep finds a real uninstall later.
    """
    try:
        _installation_vouched_for(access_token=portal.access_token, member_id=portal.member_id)
    except Unverified:
        pass  # the access token is refused (or expired): ask about the refresh token
    else:
        raise Unverified("Bitrix24 says the app is still installed on this portal (its token works).")
    try:
        fresh_token = _refreshed_access_token(portal)
    except (AuthorizationLostError, InvalidGrantError):
        return  # invalid_grant: Bitrix24 revoked the grant, as it does on uninstall
    except ExternalAPIError as exc:
        raise UpstreamFailed(f"Bitrix24's OAuth server could not confirm the uninstall: {exc.message}") from exc
    try:
        _installation_vouched_for(access_token=fresh_token, member_id=portal.member_id)
    except Unverified:
        return
    raise Unverified("Bitrix24 says the app is still installed on this portal (its token works).")


def _refreshed_access_token(portal: Portal) -> str:
    """Ask the OAuth server for a new pair with the stored refresh token, and keep it (refresh
    tokens rotate: the old one is spent). An active portal goes through the single-flight refresh;
    one in needs_reauth is not refreshed by anything else, so it is asked directly — its status is
    our opinion, not Bitrix24's, and must not make a forged uninstall look real."""
    if portal.status == Portal.Status.ACTIVE:
        return token_ensure_fresh(
            portal, bitrix24_refresh, force=True, seen_generation=portal.token_generation
        ).access_token
    tokens = bitrix24_refresh(portal.refresh_token)
    # Kept through the token store, compare-and-set on the generation like every token write.
    portal.token_store().save_refreshed(
        generation=portal.token_generation, tokens=tokens, refresh_token=portal.refresh_token
    )
    return tokens.access_token


def _log_refused(event: str, member_id: str, refusal: Refused) -> None:
    security_log.warning("refused %s for member_id %r: %s", event, (member_id or "")[:64], refusal.message)


def portal_verify_event(*, event: Bitrix24Event) -> Portal:
    """The portal an event claims to come from, if its application_token matches; else Unverified.
    Every event passes here, hundreds a second in a burst: the row is read by a plain SELECT of
    only what the check and the handlers need, and kept a moment (accounts.services.event_senders)."""
    return event_sender_verify(event.auth.member_id or "", event.auth.application_token or "")


def _installation_vouched_for(*, access_token: str, member_id: str) -> dict:
    """The OAuth server's record of the installation this token belongs to (app.info `install`)."""
    if not access_token or not member_id:
        raise Unverified("The request carries no access token or member_id.")
    if not settings.BITRIX24_CLIENT_ID:
        # Without our client id any Bitrix24 app's token would pass app.info (point 8 of issue 8).
        raise Refused("BITRIX24_CLIENT_ID is not configured, so no installation can be verified.", status=503)
    try:
        info = bitrix24_app_info(access_token)
    except ExternalAPIError as exc:
        if exc.retryable:
            raise UpstreamFailed(f"Bitrix24's OAuth server did not answer: {exc.message}") from exc
        raise Unverified(f"Bitrix24 did not accept the access token: {exc.message}") from exc
    install = info.get("install") if isinstance(info.get("install"), dict) else {}
    if not app_info_belongs_to(info, member_id=member_id) or not install.get("client_endpoint"):
        raise Unverified("The access token was not issued to this app on this Bitrix24 portal.")
    return install


def _require_admin(client: Bitrix24Api) -> None:
    if not _is_admin(client):
        raise Refused("Only a Bitrix24 administrator can install this app.")


def _is_admin(client: Bitrix24Api) -> bool:
    return client.user_admin()


def _current_user_id(client: Bitrix24Api) -> int | None:
    return client.user_current().id


def _clean(event: Bitrix24Event) -> bool:
    return str((event.data or {}).get("CLEAN", "0")) in ("1", "Y")
