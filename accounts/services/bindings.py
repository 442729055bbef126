"""The app's bindings on a portal: its invoice events (online to our events URL, and offline ones
for the sync engine's queue when the plan has them) and its placements (toolbar and list-menu
buttons), kept idempotent so a re-install or a retry after a failure is harmless; and which kinds of
invoice the portal has. Everything is asked through the Bitrix24 facade with the installing
admin's token."""

from __future__ import annotations

import logging

from django.conf import settings

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api, app, invoices
from integrations.bitrix24.api.app import (
    ALREADY_BOUND_CODES,
    INVOICE_EVENTS_BY_TYPE,
    INVOICE_PLACEMENTS_BY_TYPE,
    OFFLINE_FEATURE,
    OFFLINE_INVOICE_EVENTS,
)
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError

logger = logging.getLogger(__name__)


def event_handler_url() -> str:
    return f"{settings.PUBLIC_URL}/bitrix24/events/"


def placement_handler_url() -> str:
    return f"{settings.PUBLIC_URL}/bitrix24/placement/"


def portal_bind_events(*, portal: Portal, client: Bitrix24Api) -> tuple[str, ...]:
    """Bind our events to the events URL. Bindings to another URL (PUBLIC_URL moved) are removed;
    an existing identical binding counts as success, so a re-install never fails on it."""
    invoice_events = tuple(name for t in portal.invoice_entity_types for name in INVOICE_EVENTS_BY_TYPE[t])
    wanted = (*invoice_events, "ONAPPUNINSTALL")
    handler = event_handler_url()
    # Only our online handlers without auth_type; offline bindings (sync engine) are left alone.
    bound = {(b.event, b.handler) for b in client.events_list() if not b.offline and b.with_app_auth}
    for name, url in bound:
        if name in wanted and url != handler:
            client.event_unbind(name, url)
    for name in wanted:
        if (name, handler) not in bound:
            _bind_tolerating_duplicates(client, app.event_bind(name, handler))
    return wanted


def portal_bind_offline_events(*, portal: Portal, client: Bitrix24Api) -> bool:
    """Bind the invoice events as offline events when the plan allows reserving them
    (`feature.get rest_offline_extended` = Y); True when they are bound. Idempotent: bindings that
    exist are kept. A plan without the feature, or a portal refusing feature.get or the binding,
    only means the sync relies on online events and the sweep: logged, never fatal. When the plan
    lost the feature, our offline bindings are removed so no queue builds up that nobody drains."""
    if SMART_INVOICE not in portal.invoice_entity_types:
        return False
    try:
        allowed = client.feature_enabled(OFFLINE_FEATURE)
        bound = {b.event for b in client.events_list() if b.offline and b.with_app_auth}
        if not allowed:
            for name in OFFLINE_INVOICE_EVENTS:
                if name in bound:
                    client.event_unbind_offline(name)
            logger.info("portal %s: no %s on its plan; offline events not used", portal.member_id, OFFLINE_FEATURE)
            return False
        for name in OFFLINE_INVOICE_EVENTS:
            if name not in bound:
                _bind_tolerating_duplicates(client, app.event_bind_offline(name))
    except ExternalAPIError as exc:
        if exc.retryable:
            raise
        logger.info("portal %s: offline events not available (%s); using online events only", portal.member_id, exc)
        return False
    return True


def portal_bind_placements(*, portal: Portal, client: Bitrix24Api) -> tuple[str, ...]:
    """Bind the invoice placements (title "Xero") to the placement URL, replacing stale handlers."""
    codes = tuple(code for t in portal.invoice_entity_types for code in INVOICE_PLACEMENTS_BY_TYPE[t])
    handler = placement_handler_url()
    bound = {(b.placement, b.handler) for b in client.placements_list()}
    for code, url in bound:
        if code in codes and url != handler:
            client.placement_unbind(code, url)
    for code in codes:
        if (code, handler) not in bound:
            _bind_tolerating_duplicates(client, app.placement_bind(code, handler, "Xero"))
    return codes


def _bind_tolerating_duplicates(client: Bitrix24Api, command: app.Command[bool]) -> None:
    try:
        client.run(command)
    except ExternalAPIError as exc:
        if exc.code not in ALREADY_BOUND_CODES:
            raise


def portal_invoice_mode(client: Bitrix24Api) -> str:
    """Which invoices the portal shows, asked the way a user would meet them, in one batch call:
    new invoices if crm.item.list answers for entity type 31, old ones if crm.invoice.list answers
    (a portal with old invoices turned off refuses crm.invoice.*). A portal refusing both is taken
    as a new-invoice one (the kind Bitrix24 keeps developing)."""
    outcome = client.batch(invoices.invoice_kinds_probe())
    for error in outcome.errors.values():
        if error.retryable:
            raise error
    has_new, has_old = outcome.ran("new"), outcome.ran("old")
    if has_old and has_new:
        return Portal.InvoiceMode.BOTH
    return Portal.InvoiceMode.CLASSIC if has_old else Portal.InvoiceMode.SMART
