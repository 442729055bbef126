"""Installing, re-installing and uninstalling the app on a Bitrix24 portal.

Trust rules (docs/bitrix24-api.md §4.3–§4.4, style B.1):
- The installer page and a first ONAPPINSTALL prove themselves through Bitrix24's OAuth server:
  `app.info` with the delivered access token names the installation's member_id and client_endpoint,
  which is the only client_endpoint we ever store (a form field could point us anywhere).
- Everything later proves itself with the stored application_token, compared in constant time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import Refused, Unverified, UpstreamFailed
from accounts.models import Portal
from integrations.bitrix24.client import Bitrix24Client
from integrations.bitrix24.inbound import Bitrix24Event, FramePost, application_token_matches
from integrations.bitrix24.oauth import app_info_belongs_to, bitrix24_app_info
from integrations.common.errors import ExternalAPIError

logger = logging.getLogger(__name__)

SMART_INVOICE_EVENTS = ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE")
CLASSIC_INVOICE_EVENTS = ("ONCRMINVOICEADD", "ONCRMINVOICEUPDATE", "ONCRMINVOICESETSTATUS")
SMART_INVOICE_PLACEMENTS = ("CRM_SMART_INVOICE_DETAIL_TOOLBAR", "CRM_SMART_INVOICE_LIST_MENU")
# Old invoices have no per-row menu placement (widgets/placement-list.md lists the toolbars only).
CLASSIC_INVOICE_PLACEMENTS = ("CRM_INVOICE_DETAIL_TOOLBAR", "CRM_INVOICE_LIST_TOOLBAR")
EVENTS_BY_TYPE = {31: SMART_INVOICE_EVENTS, 5: CLASSIC_INVOICE_EVENTS}
PLACEMENTS_BY_TYPE = {31: SMART_INVOICE_PLACEMENTS, 5: CLASSIC_INVOICE_PLACEMENTS}
ALREADY_BOUND_CODES = {"ERROR_HANDLER_ALREADY_EXIST", "ERROR_PLACEMENT_HANDLER_ALREADY_EXIST"}
SMART_INVOICE_TYPE_ID = 31
# Offline (pull) events: the queue the sync engine drains with reservation, which needs this plan
# feature (docs/bitrix24-api.md §5.4). Deletes are not bound: they never change Xero.
OFFLINE_FEATURE = "rest_offline_extended"
OFFLINE_INVOICE_EVENTS = ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE")


@dataclass(frozen=True)
class InstallOutcome:
    portal: Portal
    created: bool
    events: tuple[str, ...]
    placements: tuple[str, ...]


def event_handler_url() -> str:
    return f"{settings.PUBLIC_URL}/bitrix24/events/"


def placement_handler_url() -> str:
    return f"{settings.PUBLIC_URL}/bitrix24/placement/"


def expiry_from_seconds(seconds: Any) -> datetime | None:
    try:
        return timezone.now() + timedelta(seconds=int(seconds))
    except (TypeError, ValueError):
        return None


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
        domain=str(install.get("domain") or frame.domain),
        client_endpoint=str(install["client_endpoint"]),
    )
    client = Bitrix24Client(target, user_token=frame.auth_id, interactive=True)
    try:
        _require_admin(client)
        installed_by = _current_user_id(client)
        target.invoice_mode = _detect_invoice_mode(client)
        events = portal_bind_events(portal=target, client=client)
        target.offline_events = portal_bind_offline_events(portal=target, client=client)
        placements = portal_bind_placements(portal=target, client=client)
    except ExternalAPIError as exc:
        raise UpstreamFailed(f"Bitrix24 refused a setup call: {exc.message}") from exc

    with transaction.atomic():
        portal = Portal.objects.select_for_update().filter(member_id=frame.member_id).first()
        created = portal is None
        portal = portal or Portal(member_id=frame.member_id)
        portal.domain = target.domain
        portal.client_endpoint = target.client_endpoint
        portal.server_endpoint = frame.server_endpoint or portal.server_endpoint
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


def _stage_map_defaults(*, portal: Portal, client: Bitrix24Client) -> None:
    """Map every invoice stage to a Xero status by its semantics, so invoices flow from the first
    change; the admin reviews the map in the app's setup page. Not fatal: setup can redo it."""
    from sync.services.stages import stage_map_refresh

    try:
        stage_map_refresh(portal=portal, client=client)
    except ExternalAPIError as exc:
        logger.warning("portal %s: default stage map not applied yet: %s", portal.member_id, exc)


def portal_record_install_event(*, event: Bitrix24Event) -> Portal:
    """ONAPPINSTALL, which may come before or after the installer page.

    A known portal with an application_token must present the same token. A new (or uninstalled,
    hence wiped) one is vouched for by the OAuth server and must come from an admin, exactly like
    the installer page; the event's own client_endpoint is never trusted.
    """
    auth = event.auth
    if not auth.access_token:
        raise Unverified("ONAPPINSTALL without an access token.")
    known = Portal.objects.filter(member_id=auth.member_id).first()
    if known is not None and known.application_token:
        if not application_token_matches(known.application_token, auth.application_token):
            raise Unverified("ONAPPINSTALL application_token does not match this portal's.")
        client_endpoint, domain = known.client_endpoint, auth.domain or known.domain
        installed_by = known.installed_by_user_id
    else:
        install = _installation_vouched_for(access_token=auth.access_token, member_id=auth.member_id)
        client_endpoint, domain = str(install["client_endpoint"]), str(install.get("domain") or auth.domain)
        target = Portal(member_id=auth.member_id, domain=domain, client_endpoint=client_endpoint)
        try:
            _require_admin(Bitrix24Client(target, user_token=auth.access_token, interactive=True))
        except ExternalAPIError as exc:
            raise Unverified(f"Bitrix24 did not confirm the installing user: {exc.message}") from exc
        installed_by = auth.user_id

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
        portal.domain = domain
        portal.client_endpoint = client_endpoint
        portal.server_endpoint = auth.server_endpoint or portal.server_endpoint
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
    """ONAPPUNINSTALL: the only proof is the stored application_token (REST access is already gone).

    Tokens, the application_token and every frame session are wiped; background work stops because
    the portal is no longer active. The Xero connection is kept so a re-install resumes with it.
    """
    portal = portal_verify_event(event=event)
    with transaction.atomic():
        portal = Portal.objects.select_for_update().get(pk=portal.pk)
        portal.status = Portal.Status.UNINSTALLED
        portal.status_reason = "Uninstalled in Bitrix24" + (" (clean: app data deleted)" if _clean(event) else "")
        portal.access_token = ""
        portal.refresh_token = ""
        portal.application_token = ""
        portal.token_expires_at = None
        portal.token_generation += 1
        portal.uninstalled_at = timezone.now()
        portal.save()
        portal.frame_sessions.all().delete()
    logger.info("portal %s uninstalled", portal.member_id)
    return portal


def portal_verify_event(*, event: Bitrix24Event) -> Portal:
    """The portal an event claims to come from, if its application_token matches; else Unverified."""
    auth = event.auth
    portal = Portal.objects.filter(member_id=auth.member_id or "").first()
    if portal is None or not portal.application_token:
        raise Unverified("Unknown or uninstalled portal.")
    if not application_token_matches(portal.application_token, auth.application_token or ""):
        raise Unverified("application_token does not match.")
    return portal


def portal_bind_events(*, portal: Portal, client: Bitrix24Client) -> tuple[str, ...]:
    """Bind our events to the events URL. Bindings to another URL (PUBLIC_URL moved) are removed;
    an existing identical binding counts as success, so a re-install never fails on it."""
    invoice_events = tuple(name for t in portal.invoice_entity_types for name in EVENTS_BY_TYPE[t])
    wanted = (*invoice_events, "ONAPPUNINSTALL")
    handler = event_handler_url()
    # Only our online handlers without auth_type; offline bindings (sync engine) are left alone.
    bound = {
        (str(b.get("event", "")).upper(), str(b.get("handler", "")))
        for b in client.result("event.get", {}) or []
        if not int(b.get("offline") or 0) and str(b.get("auth_type") or "0") == "0"
    }
    for name, url in bound:
        if name in wanted and url != handler:
            client.call("event.unbind", {"event": name, "handler": url})
    for name in wanted:
        if (name, handler) not in bound:
            _bind_tolerating_duplicates(client, "event.bind", {"event": name, "handler": handler})
    return wanted


def portal_bind_offline_events(*, portal: Portal, client: Bitrix24Client) -> bool:
    """Bind the invoice events as offline events when the plan allows reserving them
    (`feature.get rest_offline_extended` = Y); True when they are bound. Idempotent: bindings that
    exist are kept. A plan without the feature, or a portal refusing feature.get or the binding,
    only means the sync relies on online events and the sweep: logged, never fatal. When the plan
    lost the feature, our offline bindings are removed so no queue builds up that nobody drains."""
    if SMART_INVOICE_TYPE_ID not in portal.invoice_entity_types:
        return False
    try:
        answer = client.result("feature.get", {"CODE": OFFLINE_FEATURE})
        allowed = isinstance(answer, dict) and str(answer.get("value", "")).upper() == "Y"
        bound = {
            str(b.get("event", "")).upper()
            for b in client.result("event.get", {}) or []
            if int(b.get("offline") or 0) and str(b.get("auth_type") or "0") == "0"
        }
        if not allowed:
            for name in OFFLINE_INVOICE_EVENTS:
                if name in bound:
                    client.call("event.unbind", {"event": name, "event_type": "offline"})
            logger.info("portal %s: no %s on its plan; offline events not used", portal.member_id, OFFLINE_FEATURE)
            return False
        for name in OFFLINE_INVOICE_EVENTS:
            if name not in bound:
                _bind_tolerating_duplicates(client, "event.bind", {"event": name, "event_type": "offline"})
    except ExternalAPIError as exc:
        if exc.retryable:
            raise
        logger.info("portal %s: offline events not available (%s); using online events only", portal.member_id, exc)
        return False
    return True


def portal_bind_placements(*, portal: Portal, client: Bitrix24Client) -> tuple[str, ...]:
    """Bind the invoice placements (title "Xero") to the placement URL, replacing stale handlers."""
    codes = tuple(code for t in portal.invoice_entity_types for code in PLACEMENTS_BY_TYPE[t])
    handler = placement_handler_url()
    bound = {
        (str(b.get("placement", "")).upper(), b.get("handler", "")) for b in client.result("placement.get", {}) or []
    }
    for code, url in bound:
        if code in codes and url != handler:
            client.call("placement.unbind", {"PLACEMENT": code, "HANDLER": url})
    for code in codes:
        if (code, handler) not in bound:
            _bind_tolerating_duplicates(
                client, "placement.bind", {"PLACEMENT": code, "HANDLER": handler, "TITLE": "Xero"}
            )
    return codes


def _bind_tolerating_duplicates(client: Bitrix24Client, method: str, params: dict) -> None:
    try:
        client.call(method, params)
    except ExternalAPIError as exc:
        if exc.code not in ALREADY_BOUND_CODES:
            raise


def _installation_vouched_for(*, access_token: str, member_id: str) -> dict:
    """The OAuth server's record of the installation this token belongs to (app.info `install`)."""
    if not access_token or not member_id:
        raise Unverified("The request carries no access token or member_id.")
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


def _require_admin(client: Bitrix24Client) -> None:
    if not _is_admin(client):
        raise Refused("Only a Bitrix24 administrator can install this app.")


def _is_admin(client: Bitrix24Client) -> bool:
    # user.admin answers true/false; some portals answer "Y"/"N" or 1/0 through old gateways.
    return client.result("user.admin", {}) in (True, "Y", "y", 1, "1", "true")


def _current_user_id(client: Bitrix24Client) -> int | None:
    return _int_or_none((client.result("user.current", {}) or {}).get("ID"))


def _detect_invoice_mode(client: Bitrix24Client) -> str:
    """Which invoices the portal shows, asked the way a user would meet them, in one batch call:
    new invoices if crm.item.list answers for entity type 31, old ones if crm.invoice.list answers
    (a portal with old invoices turned off refuses crm.invoice.*). A portal refusing both is taken
    as a new-invoice one (the kind Bitrix24 keeps developing)."""
    outcome = client.batch(
        {
            "new": ("crm.item.list", {"entityTypeId": SMART_INVOICE_TYPE_ID, "select": ["id"], "start": -1}),
            "old": ("crm.invoice.list", {"select": ["ID"], "start": -1}),
        }
    )
    for error in outcome.errors.values():
        if error.retryable:
            raise error
    has_new, has_old = "new" in outcome.results, "old" in outcome.results
    if has_old and has_new:
        return Portal.InvoiceMode.BOTH
    return Portal.InvoiceMode.CLASSIC if has_old else Portal.InvoiceMode.SMART


def _clean(event: Bitrix24Event) -> bool:
    return str((event.data or {}).get("CLEAN", "0")) in ("1", "Y")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
