"""Receiving a Bitrix24 event: verify who sent it, then hand it to the right place."""

from __future__ import annotations

import logging

from accounts.events import EVENT_HANDLERS
from accounts.services.portal import portal_record_install_event, portal_uninstall, portal_verify_event
from integrations.bitrix24.inbound import Bitrix24Event

logger = logging.getLogger(__name__)


def bitrix24_event_receive(*, event: Bitrix24Event) -> str:
    """ "installed", "uninstalled", "accepted" (a handler took it) or "ignored"; Unverified when
    the application_token does not match (nothing changes then)."""
    name = (event.event or "").upper()
    if name == "ONAPPINSTALL":
        portal_record_install_event(event=event)
        return "installed"
    if name == "ONAPPUNINSTALL":
        portal_uninstall(event=event)
        return "uninstalled"
    portal = portal_verify_event(event=event)
    if not portal.is_active:
        logger.info("event %s for inactive portal %s ignored", name, portal.member_id)
        return "ignored"
    handler = EVENT_HANDLERS.get(name)
    if handler is None:
        logger.info("event %s for portal %s has no handler; ignored", name, portal.member_id)
        return "ignored"
    handler(portal=portal, event=event)
    return "accepted"
