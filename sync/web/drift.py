"""Drift, preview and reconciliation pages (sync.services.drift / preview / reconcile).

- POST invoices/<id>/accept/: keep Xero's version of a "Changed in Xero" invoice (restore is the
  ordinary "Create / Edit on Xero" button, which forces the push where Xero differs).
- GET invoices/<id>/preview/: what Xero would receive and compute, next to Bitrix24's numbers.
- GET reconcile/ (administrators): the last comparison of all linked invoices with Xero, counts by
  kind, a filter, repair of one / the selected / all; POST reconcile/run/ starts one now.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import frame_login_required
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from sync.models import InvoiceLink, ReconciliationRun, Trigger
from sync.services.drift import drift_accept
from sync.services.invoice_list import visible_invoice_ids
from sync.services.preview import invoice_preview
from sync.services.reconcile import KIND_LABELS, latest_run, repairable_ids
from sync.web.common import bitrix24_errors, invoice_refused_page, request_kind, user_client, xero_ready

# A run still "running" after this long was lost (a worker killed mid-run); a click starts a new one.
STALE_RUN = dt.timedelta(minutes=30)


@require_POST
@frame_login_required
@bitrix24_errors
def invoice_accept_xero(request: HttpRequest, invoice_id: int) -> JsonResponse:
    entity_type = request_kind(request, request.GET.get("kind")) or SMART_INVOICE
    if not visible_invoice_ids(client=user_client(request), ids=[invoice_id], entity_type=entity_type):
        return JsonResponse(
            {"error": gettext("You cannot see this invoice in Bitrix24."), "kind": "forbidden"}, status=403
        )
    link = InvoiceLink.objects.filter(
        portal=request.portal, bitrix24_entity_type=entity_type, bitrix24_id=invoice_id
    ).first()
    if link is None or not link.drift:
        return JsonResponse(
            {"error": gettext("This invoice has no changes made in Xero to accept."), "kind": "input"}, status=409
        )
    drift_accept(portal=request.portal, link=link, user_id=request.frame_user.bitrix_user_id)
    return JsonResponse(
        {
            "jobs": [],
            "count": 0,
            "message": gettext(
                "Xero's version is kept; automatic sync leaves it alone. "
                "Create / Edit on Xero still sends Bitrix24's version."
            ),
        }
    )


@require_GET
@frame_login_required
@bitrix24_errors
def invoice_preview_page(request: HttpRequest, invoice_id: int) -> HttpResponse:
    try:
        preview = invoice_preview(
            portal=request.portal,
            client=user_client(request),
            invoice_id=invoice_id,
            entity_type=request_kind(request, request.GET.get("kind")) or SMART_INVOICE,
        )
    except ExternalAPIError as exc:
        return invoice_refused_page(request, invoice_id, exc)
    return render(request, "sync/invoice_preview.html", {"preview": preview, "xero_ready": xero_ready(request.portal)})


@require_GET
@frame_login_required(admin=True)
def reconcile_page(request: HttpRequest) -> HttpResponse:
    run = latest_run(request.portal)
    kind = request.GET.get("kind", "")
    if kind not in KIND_LABELS:
        kind = ""
    rows = [row for row in run.rows if not kind or kind in row["kinds"]] if run else []
    missing = run.missing if run and kind in ("", "not_in_xero") else []
    orphans = run.orphans if run and kind in ("", "orphan") else []
    labels = dict(KIND_LABELS)
    return render(
        request,
        "sync/reconcile.html",
        {
            "run": run,
            "kind": kind,
            "kinds": [(key, gettext(labels[key]), (run.counts or {}).get(key, 0) if run else 0) for key in KIND_LABELS],
            "rows": rows,
            "missing": missing,
            "orphans": orphans,
            "repair_ids": ",".join(map(str, repairable_ids(run, kind))) if run else "",
            "xero_ready": xero_ready(request.portal),
            "running": bool(run and run.status == run.Status.RUNNING),
        },
    )


@require_POST
@frame_login_required(admin=True)
def reconcile_run(request: HttpRequest) -> JsonResponse:
    from sync.tasks.reconcile import reconcile_task

    if not xero_ready(request.portal):
        return JsonResponse({"error": gettext("Xero is not connected."), "kind": "xero"}, status=409)
    running = ReconciliationRun.objects.filter(
        portal=request.portal, status=ReconciliationRun.Status.RUNNING, started_at__gte=timezone.now() - STALE_RUN
    ).first()
    if running is None:
        # The run row first, so the page shows "running" (and refreshes itself) until it is done.
        running = ReconciliationRun.objects.create(portal=request.portal, trigger=Trigger.BUTTON)
        portal_id, run_id = request.portal.pk, running.pk
        transaction.on_commit(lambda: reconcile_task.delay(portal_id, Trigger.BUTTON, run_id))
    return JsonResponse(
        {
            "jobs": [],
            "count": 0,
            "reload": True,
            "message": gettext("Comparing every linked invoice with Xero; the page refreshes with the result."),
        }
    )


urlpatterns = [
    path("invoices/<int:invoice_id>/accept/", invoice_accept_xero, name="invoice_accept_xero"),
    path("invoices/<int:invoice_id>/preview/", invoice_preview_page, name="invoice_preview"),
    path("reconcile/", reconcile_page, name="reconcile"),
    path("reconcile/run/", reconcile_run, name="reconcile_run"),
]
