"""Reconciliation tasks (sync.services.reconcile): one portal on demand, every portal nightly."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from accounts.models import Portal
from sync.models import ReconciliationRun, Trigger
from sync.services.jobs import portal_sync_blocker
from sync.services.reconcile import reconcile_portal

logger = logging.getLogger(__name__)


@shared_task(name="sync.tasks.reconcile.reconcile_task")
def reconcile_task(portal_id: int, trigger: str = Trigger.BUTTON, run_id: int | None = None) -> dict:
    portal = Portal.objects.filter(pk=portal_id).first()
    run = ReconciliationRun.objects.filter(pk=run_id, portal_id=portal_id).first() if run_id else None
    if portal is None or not portal.is_active:
        if run is not None:
            ReconciliationRun.objects.filter(pk=run.pk).update(
                status=ReconciliationRun.Status.FAILED, error="The portal is not active.", finished_at=timezone.now()
            )
        return {"skipped": "portal not active"}
    run = reconcile_portal(portal=portal, trigger=trigger, run=run)
    return {"run": run.pk, "status": run.status, "checked": run.checked, "xero_calls": run.xero_calls}


@shared_task(name="sync.tasks.reconcile.reconcile_nightly_task")
def reconcile_nightly_task() -> dict:
    """Every portal that can sync, one after another (each within its own tenant's throttle)."""
    done = 0
    for portal in Portal.objects.exclude(status=Portal.Status.UNINSTALLED).order_by("pk"):
        if portal_sync_blocker(portal):
            continue
        try:
            reconcile_portal(portal=portal, trigger=Trigger.SWEEP)
            done += 1
        except Exception:  # one portal's surprise must not stop the others' nightly check
            logger.exception("reconciliation of %s failed", portal.domain)
    return {"portals": done}
