"""The Invoices page (where the app opens), one invoice, and the two buttons with their progress.

Every Bitrix24 read uses the signed-in user's own token (frame_session_bitrix24_client), so
Bitrix24 decides what they see and act on. The action endpoints are called by app.js with the
frame token in the X-Frame-Token header and answer JSON; they only enqueue jobs (the page polls
/app/jobs/progress/), so a long operation never blocks a request.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import frame_login_required
from accounts.models import Portal
from accounts.services.frame import frame_session_bitrix24_client
from accounts.services.xero import xero_connection_of
from connector.input_guard import positive_id
from integrations.bitrix24.errors import UserTokenError
from integrations.common.errors import ExternalAPIError
from sync.models import SyncJob
from sync.services.buttons import MAX_INVOICES_PER_CLICK, invoices_push_request
from sync.services.buttons_pull import statuses_pull_request
from sync.services.drift import online_url_ensure
from sync.services.gate import GateState, sync_gate
from sync.services.invoice_list import (
    DEFAULT_PAGE_SIZE,
    MAX_PROGRESS_JOBS,
    PAGE_SIZES,
    invoice_for_user,
    invoice_ids_for_user,
    invoices_for_user,
    jobs_progress,
    visible_invoice_ids,
)
from sync.services.job_visibility import jobs_visible_to
from sync.sources import SOURCES, portal_sources
from sync.web.serializers import InvoicePushRequest

REOPEN = "Your Bitrix24 session expired — reopen the app from Bitrix24."


# --- shared by the page modules (log, placements) -------------------------------------------------


def bitrix24_errors(view: Callable) -> Callable:
    """Bitrix24 failures as a clear page (or JSON for fetch calls) instead of a 500.

    An expired or refused user token cannot be refreshed by us (we keep no user refresh tokens):
    the user reopens the app and Bitrix24 posts a fresh one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        wants_json = request.method == "POST" or request.headers.get("Accept", "").startswith("application/json")
        try:
            return view(request, *args, **kwargs)
        except UserTokenError:
            status, message, kind = 401, REOPEN, "session_expired"
        except ExternalAPIError as exc:
            status = 503 if exc.retryable else 502
            message, kind = f"Bitrix24 did not answer as expected: {exc.message}", "bitrix24"
        if wants_json:
            return JsonResponse({"error": message, "kind": kind}, status=status)
        return render(request, "sync/error.html", {"message": message, "kind": kind}, status=status)

    return wrapper


def xero_ready(portal: Portal) -> bool:
    connection = xero_connection_of(portal=portal)
    return bool(connection and connection.is_active)


def user_client(request: HttpRequest):
    return frame_session_bitrix24_client(session=request.frame_user)


def json_body(request: HttpRequest) -> dict:
    """fetch() sends JSON; a plain form POST (no JS) sends fields. Accept both."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested deeper than any real body
            return {}
        return body if isinstance(body, dict) else {}
    return {
        "ids": request.POST.getlist("ids"),
        "all_filtered": request.POST.get("all_filtered") in ("1", "true", "on"),
        "from": request.POST.get("from", ""),
        "to": request.POST.get("to", ""),
    }


def parse_ids(raw) -> list[int] | None:
    """Positive integer ids from a list or "1,2,3"; None when any is not one."""
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list):
        return None
    ids = [positive_id(value) for value in raw]
    if any(i is None for i in ids):
        return None
    return list(dict.fromkeys(ids))


# --- the list --------------------------------------------------------------------------------------


_DATE_WORDS = _("Write the day as the date picker does, e.g. 2026-03-31.")


class InvoiceFilterForm(forms.Form):
    # Labels and messages in the page's own words (the filter shows them beside the form).
    date_from = forms.DateField(required=False, label=_("Changed from"), error_messages={"invalid": _DATE_WORDS})
    date_to = forms.DateField(required=False, label=_("Changed to"), error_messages={"invalid": _DATE_WORDS})
    size = forms.TypedChoiceField(
        choices=[(n, n) for n in PAGE_SIZES],
        coerce=int,
        required=False,
        empty_value=DEFAULT_PAGE_SIZE,
        label=_("Rows per page"),
        error_messages={"invalid_choice": _("Choose one of the listed sizes; the list shows the usual size.")},
    )
    order = forms.ChoiceField(
        choices=[("desc", _("Newest first")), ("asc", _("Oldest first"))],
        required=False,
        label=_("Sort"),
        error_messages={"invalid_choice": _("Sort newest or oldest first; the list shows the newest first.")},
    )
    page = forms.IntegerField(
        min_value=1,
        required=False,
        label=_("Page"),
        error_messages={
            "invalid": _("A page is a whole number; the first page is shown."),
            "min_value": _("Pages start at 1; the first page is shown."),
        },
    )
    # Which kind of Bitrix24 invoices a portal with both lists: 31 new, 5 old (empty: the first).
    kind = forms.TypedChoiceField(
        choices=[(t, t) for t in SOURCES], coerce=int, required=False, empty_value=None, label=_("Invoices")
    )

    @classmethod
    def from_query(cls, query) -> InvoiceFilterForm:
        # The query uses short names (?from=&to=), which read better in a URL than the field names.
        data = {
            "date_from": query.get("from", ""),
            "date_to": query.get("to", ""),
            "size": query.get("size", ""),
            "order": query.get("order", ""),
            "page": query.get("page", ""),
            "kind": query.get("kind", ""),
        }
        return cls(data)

    def values(self) -> dict:
        """The filter to use: the valid fields, defaults for the rest (an error is shown beside)."""
        clean = self.cleaned_data if self.is_bound and hasattr(self, "cleaned_data") else {}
        date_from, date_to = clean.get("date_from"), clean.get("date_to")
        if date_from and date_to and date_from > date_to:
            date_from, date_to = date_to, date_from  # a reversed range means the same days
        return {
            "modified_from": date_from,
            "modified_to": date_to,
            "page_size": clean.get("size") or DEFAULT_PAGE_SIZE,
            "order": clean.get("order") or "desc",
            "page": clean.get("page") or 1,
            "entity_type": clean.get("kind") or None,
        }


LIST_KEYS = ("from", "to", "size", "order", "page", "kind")


def _list_state(request: HttpRequest):
    """The list's query: the request's own, remembered for this sign-in; or, when it has none (the
    menu's link, a page that links back plainly), the one remembered."""
    session = request.frame_user
    if any(request.GET.get(key) for key in LIST_KEYS):
        state = urlencode([(key, request.GET[key]) for key in LIST_KEYS if request.GET.get(key)])[:200]
        if state != session.list_state:
            type(session).objects.filter(pk=session.pk).update(list_state=state)
        return request.GET
    return QueryDict(session.list_state or "")


def _query(values: dict, **changes) -> str:
    """The list's query string with some values changed (pager and sort links keep the filter)."""
    merged = {**values, **changes}
    parts = {
        "from": merged["modified_from"].isoformat() if merged["modified_from"] else "",
        "to": merged["modified_to"].isoformat() if merged["modified_to"] else "",
        "size": merged["page_size"],
        "order": merged["order"],
        "page": merged["page"],
        "kind": merged.get("entity_type") or "",
    }
    return "&".join(f"{key}={value}" for key, value in parts.items() if value not in ("", None))


@require_GET
@frame_login_required
@bitrix24_errors
def invoice_list(request: HttpRequest) -> HttpResponse:
    query = _list_state(request)
    form = InvoiceFilterForm.from_query(query)
    form.is_valid()
    values = form.values()
    kinds = portal_sources(request.portal)
    if values["entity_type"] not in {s.entity_type for s in kinds}:
        values["entity_type"] = kinds[0].entity_type
    page = invoices_for_user(client=user_client(request), **values)
    values["page"] = page.page
    pages = range(max(1, page.page - 2), min(page.pages, page.page + 2) + 1)
    return render(
        request,
        "sync/invoices.html",
        {
            "form": form,
            "values": values,
            "list_query": _query(values),
            "page": page,
            "page_links": [(n, _query(values, page=n)) for n in pages],
            "prev_query": _query(values, page=page.page - 1) if page.page > 1 else "",
            "next_query": _query(values, page=page.page + 1) if page.page < page.pages else "",
            "sort_query": _query(values, order="asc" if values["order"] == "desc" else "desc", page=1),
            "page_sizes": PAGE_SIZES,
            "filtered": bool(values["modified_from"] or values["modified_to"]),
            "xero_ready": xero_ready(request.portal),
            "kind": values["entity_type"],
            # A portal with old and new invoices: a switch between the two lists.
            "kinds": [(s.entity_type, s.title, _query(values, entity_type=s.entity_type, page=1)) for s in kinds]
            if len(kinds) > 1
            else [],
        },
    )


def _kind(request: HttpRequest, raw: object) -> int | None:
    """The entity type a request names (?kind= or the body's "kind"), if the portal has it."""
    try:
        entity_type = int(str(raw or "").strip() or 0)
    except ValueError:
        return None
    return entity_type if entity_type in request.portal.invoice_entity_types else None


# --- one invoice -----------------------------------------------------------------------------------


@require_GET
@frame_login_required
@bitrix24_errors
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    try:
        detail = invoice_for_user(
            client=user_client(request), invoice_id=invoice_id, entity_type=_kind(request, request.GET.get("kind"))
        )
    except ExternalAPIError as exc:
        if exc.retryable or (exc.code or "").upper() not in ("ACCESS_DENIED", "NOT_FOUND"):
            raise
        denied = (exc.code or "").upper() == "ACCESS_DENIED"
        return render(
            request,
            "sync/invoice_denied.html",
            {"invoice_id": invoice_id, "denied": denied, "message": exc.message},
            status=403 if denied else 404,
        )
    # Xero's customer-facing link, fetched once for an approved invoice when its page is opened.
    online_url_ensure(portal=request.portal, link=detail.row.link)
    lines = [_line(row) for row in detail.product_rows]
    return render(
        request,
        "sync/invoice_detail.html",
        {
            "detail": detail,
            "row": detail.row,
            "lines": lines,
            "lines_total": sum((line["total"] for line in lines), Decimal(0)),
            "xero_ready": xero_ready(request.portal),
            "back_query": _back_query(request),
            "kind": detail.row.entity_type,
        },
    )


def _line(row: dict) -> dict:
    """A product row with its total (price × quantity, as Bitrix24 shows the row's sum)."""
    try:
        price, quantity = Decimal(str(row.get("price") or 0)), Decimal(str(row.get("quantity") or 0))
    except (InvalidOperation, ValueError):
        price, quantity = Decimal(0), Decimal(0)
    return {**row, "total": (price * quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)}


def _back_query(request: HttpRequest) -> str:
    """The list's state (page, size, dates, sort) the user came from, to go back to it."""
    form = InvoiceFilterForm.from_query(request.GET)
    if not form.is_valid() or not any(request.GET.get(k) for k in LIST_KEYS):
        return ""
    return _query(form.values())


# --- the buttons -----------------------------------------------------------------------------------


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


@require_POST
@frame_login_required
@bitrix24_errors
def invoice_push(request: HttpRequest) -> JsonResponse:
    """ "Create / Edit on Xero" for explicit ids (checked against what the user may see) or for
    every invoice the user sees under the list's filter."""
    blocked = _buttons_refused(request)
    if blocked is not None:
        return blocked
    parsed = InvoicePushRequest(data=json_body(request))
    if not parsed.is_valid():
        field = next(iter(parsed.errors), "")
        message = "Select at least one invoice." if field == "ids" else f"The field {field!r} is not valid."
        return JsonResponse({"error": message, "kind": "input", "fields": parsed.errors}, status=400)
    body = parsed.validated_data
    client = user_client(request)
    entity_type = _kind(request, body["kind"]) or request.portal.invoice_entity_types[0]
    if body["all_filtered"]:
        form = InvoiceFilterForm.from_query({"from": body["from"] or "", "to": body["to"] or ""})
        if not form.is_valid():
            return JsonResponse({"error": "The date filter is not valid.", "kind": "input"}, status=400)
        values = form.values()
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
    path("invoices/", invoice_list, name="invoices"),
    path("invoices/<int:invoice_id>/", invoice_detail, name="invoice_detail"),
    path("invoices/push/", invoice_push, name="invoice_push"),
    path("invoices/pull/", invoice_pull, name="invoice_pull"),
    path("jobs/progress/", jobs_progress_view, name="jobs_progress"),
]
