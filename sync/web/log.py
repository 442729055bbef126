"""The Sync log page: what happened to each invoice and why, grouped by invoice (latest outcome
first, attempts counted, one Retry), echoes and unchanged skips behind a filter, "Needs attention".

Admins see the whole portal's log. Other users see only entries of invoices Bitrix24 lets them
see (checked with their own token for the ids on the page), and may retry only those.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import frame_login_required
from sync.models import SyncJob, SyncLogEntry
from sync.services.invoice_list import visible_invoice_ids
from sync.services.jobs import job_retry
from sync.services.log_jobs import entry_entity_type, log_entry_job
from sync.services.log_page import sync_log_grouped
from sync.web.common import bitrix24_errors, user_client
from sync.web.serializers import LogRetryRequest, with_body


def _int(value, default: int = 1) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


@require_GET
@frame_login_required
@bitrix24_errors
def log_page(request: HttpRequest) -> HttpResponse:
    is_admin = request.frame_user.is_admin
    on = ("1", "on", "true")
    # "failed=1" is the old name of "Needs attention".
    attention = request.GET.get("attention") in on or request.GET.get("failed") in on
    show_quiet = request.GET.get("all") in on
    log = sync_log_grouped(
        portal=request.portal,
        client=None if is_admin else user_client(request),
        is_admin=is_admin,
        page=_int(request.GET.get("page")),
        show_quiet=show_quiet,
        attention=attention,
    )
    suffix = ("&attention=1" if attention else "") + ("&all=1" if show_quiet else "")
    return render(
        request,
        "sync/log.html",
        {
            "log": log,
            "prev_query": f"page={log.page - 1}{suffix}" if log.page > 1 else "",
            "next_query": f"page={log.page + 1}{suffix}" if log.page < log.pages else "",
        },
    )


@require_POST
@frame_login_required
@bitrix24_errors
@with_body(LogRetryRequest, messages={"entry": "entry must be a log entry's number."})
def log_retry(request: HttpRequest, body: dict) -> JsonResponse:
    """Retry the job behind a failed entry: admins, or a user who can see the invoice."""
    try:
        entry, job = log_entry_job(portal=request.portal, entry_id=body["entry"])
    except SyncLogEntry.DoesNotExist:
        return JsonResponse({"error": "No such log entry.", "kind": "input"}, status=404)
    if not request.frame_user.is_admin:
        visible = entry.bitrix24_id.isdigit() and int(entry.bitrix24_id) in visible_invoice_ids(
            client=user_client(request), ids=[int(entry.bitrix24_id)], entity_type=entry_entity_type(entry)
        )
        if not visible:
            return JsonResponse({"error": "You cannot see this invoice in Bitrix24.", "kind": "forbidden"}, status=403)
    if job is None or job.status not in (SyncJob.Status.FAILED, SyncJob.Status.PENDING):
        return JsonResponse({"error": "There is nothing to retry for this entry.", "kind": "input"}, status=409)
    job = job_retry(job.pk, portal=request.portal)
    return JsonResponse({"jobs": [job.pk], "count": 1, "status": job.status}, status=202)


urlpatterns = [
    path("log/", log_page, name="log"),
    path("log/retry/", log_retry, name="log_retry"),
]
