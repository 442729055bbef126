"""Can this portal sync now? — the one answer every caller asks (issue 17: it existed in four
differing versions: the sweeps' blocker, the push pass, the pull pass and the landing page).

Background sync needs an active portal (installed, tokens good) and an active Xero connection (a
tenant chosen, tokens good). Setup is a separate question (`setup_needed`): events are kept while
it is not done, and the home page sends admins to it first.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Portal, XeroConnection
from sync.models import SyncSettings


@dataclass(frozen=True)
class Readiness:
    """What a sync pass needs, found once: the portal and its connection when they exist, and which
    of the two stops it ("" when none; "portal" or "xero" otherwise)."""

    portal: Portal | None
    connection: XeroConnection | None
    stopped_by: str

    @property
    def ready(self) -> bool:
        return not self.stopped_by


def portal_readiness(portal: Portal | int) -> Readiness:
    """The portal (or its id) and its Xero connection, and whether background sync may run."""
    if isinstance(portal, int):
        found = Portal.objects.filter(pk=portal).first()
        if found is None:
            return Readiness(None, None, "portal")
        portal = found
    if not portal.is_active:
        return Readiness(portal, None, "portal")
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        return Readiness(portal, connection, "xero")
    return Readiness(portal, connection, "")


def portal_sync_blocker(portal: Portal) -> str:
    """Why background sync cannot run for this portal now, or "" when it can."""
    readiness = portal_readiness(portal)
    if readiness.stopped_by == "portal":
        return f"portal {portal.domain} is {portal.get_status_display().lower()}"
    if readiness.connection is None and readiness.stopped_by:
        return f"portal {portal.domain} has no Xero connection"
    if readiness.stopped_by:
        return f"the Xero connection of {portal.domain} is {readiness.connection.get_status_display().lower()}"
    return ""


def setup_needed(portal: Portal) -> bool:
    """True until an admin has saved the Setup page once (the home page sends admins there first)."""
    return not SyncSettings.objects.filter(portal=portal, setup_completed=True).exists()
