"""Template context for the app's pages: where the portal stands for syncing (sync.services.gate)."""

from __future__ import annotations

from django.http import HttpRequest


def sync_state(request: HttpRequest) -> dict:
    """`sync_gate` (SyncGate) and `waiting_for_setup` (invoices held until Setup is saved) for the
    signed-in portal's pages; nothing elsewhere (admin, install, webhooks)."""
    portal = getattr(request, "portal", None)
    if portal is None or getattr(request, "frame_user", None) is None:
        return {}
    from sync.models import SyncSettings
    from sync.services.gate import GateState, invoices_waiting_for_setup, sync_gate

    gate = sync_gate(portal)
    settings = SyncSettings.objects.filter(portal=portal).first() if gate.state == GateState.SETUP_PENDING else None
    return {
        "setup_defaults": settings,
        "sync_gate": gate,
        "setup_pending": gate.state == GateState.SETUP_PENDING,
        "waiting_for_setup": invoices_waiting_for_setup(portal) if gate.state == GateState.SETUP_PENDING else 0,
    }
