"""The two buttons ("Create / Edit on Xero", "Update from Xero") and their progress.

Called by app.js with the frame token in the X-Frame-Token header; they answer JSON and only
enqueue jobs (the page polls /app/jobs/progress/), so a long operation never blocks a request.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import frame_login_required
from sync.models import SyncJob
from sync.services.buttons import MAX_INVOICES_PER_CLICK, invoices_push_request
from sync.services.buttons_pull import statuses_pull_request
from sync.services.gate import GateState, sync_gate
from sync.services.invoice_list import invoice_ids_for_user, visible_invoice_ids
from sync.services.job_visibility import jobs_visible_to
from sync.services.jobs_progress import MAX_PROGRESS_JOBS, jobs_progress
from sync.web.common import bitrix24_errors, parse_ids, request_kind, user_client
from sync.web.invoices import InvoiceFilterForm
from sync.web.serializers import InvoicePushRequest, with_body


def _jobs_answer(jobs: list[SyncJob], status: int = 202) -> JsonResponse:
    return JsonResponse({"jobs": [job.pk for job in jobs], "count": len(jobs)}, status=status)


def _not_connected() -> JsonResponse:
    return JsonResponse(
        {"error": "Xero is not connected. Ask a Bitrix24 administrator to connect it.", "kind": "xero"}, status=409
    )


def _buttons_refused(request: HttpRequest) -> JsonResponse | None:
    """None when the signed-in user may use the buttons now (sync.services.gate): before Setup
    only an admin may, and is told so on the page."""
    gate = sync_gate(request.portal)
    if gate.buttons_for(is_admin=request.frame_user.is_admin):
        return None
    if gate.state == GateState.SETUP_PENDING:
        return JsonResponse(
            {
                "error": "Setup has not been completed yet: ask a Bitrix24 administrator to save the Setup page.",
                "kind": "setup",
            },
            status=409,
        )
    return _not_connected()


def _push_form(request: HttpRequest) -> dict:
    """The push body of a plain form POST (no JS): the selected ids and the list's filter."""
    return {
        "ids": request.POST.getlist("ids"),
        "all_filtered": request.POST.get("all_filtered") in ("1", "true", "on"),
        "from": request.POST.get("from", ""),
        "to": request.POST.get("to", ""),
        "kind": request.POST.get("kind", ""),
    }


@require_POST
@frame_login_required
@bitrix24_errors
@with_body(InvoicePushRequest, messages={"ids": "Select at least one invoice."}, form=_push_form)
def invoice_push(request: HttpRequest, body: dict) -> JsonResponse:
    """ "Create / Edit on Xero" for explicit ids (checked against what the user may see) or for
    every invoice the user sees under the list's filter."""
    blocked = _buttons_refused(request)
    if blocked is not None:
        return blocked
    client = user_client(request)
    entity_type = request_kind(request, body["kind"]) or request.portal.invoice_entity_types[0]
    if body["all_filtered"]:
        form = InvoiceFilterForm.from_query({"from": body["from"] or "", "to": body["to"] or ""})
        if not form.is_valid():
            return JsonResponse({"error": "The date filter is not valid.", "kind": "input"}, status=400)
        values = form.values()
        # The list's days: in the page's zone (the default), as the list that showed them counted.
        ids = invoice_ids_for_user(
            client=client,
            modified_from=values["modified_from"],
            modified_to=values["modified_to"],
            entity_type=entity_type,
        )
        if not ids:
            return JsonResponse({"error": "No invoices match the filter.", "kind": "empty"}, status=400)
    else:
        ids = body["ids"]
        if not ids:
            return JsonResponse({"error": "Select at least one invoice.", "kind": "input"}, status=400)
        if len(ids) > MAX_INVOICES_PER_CLICK:
            return JsonResponse(
                {"error": f"Select at most {MAX_INVOICES_PER_CLICK} invoices.", "kind": "input"}, status=400
            )
        refused = sorted(set(ids) - visible_invoice_ids(client=client, ids=ids, entity_type=entity_type))
        if refused:
            # Nothing is queued: acting on part of a selection silently would be worse.
            return JsonResponse(
                {
                    "error": f"You cannot see invoice(s) {', '.join(map(str, refused))} in Bitrix24; nothing was sent.",
                    "kind": "forbidden",
                    "refused": refused,
                },
                status=403,
            )
    try:
        jobs = invoices_push_request(
            portal=request.portal,
            invoice_ids=ids,
            requested_by=request.frame_user.bitrix_user_id,
            entity_type=entity_type,
        )
    except ValueError as exc:
        return JsonResponse({"error": str(exc), "kind": "input"}, status=400)
    return _jobs_answer(jobs)


@require_POST
@frame_login_required
def invoice_pull(request: HttpRequest) -> JsonResponse:
    """ "Update from Xero": one job for the portal; the pull acts on the portal's linked invoices."""
    blocked = _buttons_refused(request)
    if blocked is not None:
        return blocked
    job = statuses_pull_request(portal=request.portal, requested_by=request.frame_user.bitrix_user_id)
    return _jobs_answer([job])


@require_GET
@frame_login_required
@bitrix24_errors
def jobs_progress_view(request: HttpRequest) -> JsonResponse:
    ids = parse_ids(request.GET.get("ids", ""))
    if ids is None:
        return JsonResponse({"error": "ids must be job numbers separated by commas.", "kind": "input"}, status=400)
    # Only jobs of invoices Bitrix24 lets this user see (sync/services/job_visibility.py).
    ids = jobs_visible_to(session=request.frame_user, client=user_client(request), job_ids=ids[:MAX_PROGRESS_JOBS])
    return JsonResponse(jobs_progress(portal=request.portal, job_ids=ids))


urlpatterns = [
    path("invoices/push/", invoice_push, name="invoice_push"),
    path("invoices/pull/", invoice_pull, name="invoice_pull"),
    path("jobs/progress/", jobs_progress_view, name="jobs_progress"),
]
