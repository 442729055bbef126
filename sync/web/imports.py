"""The Import page (admins only): Xero contacts -> Bitrix24 companies, Xero items -> products.

GET  /app/import/                  web:imports          the two actions, and the last runs
POST /app/import/                  web:imports          start a run (kind=contacts|items, currency)
GET  /app/import/progress/?job=ID  web:import_progress  {"status", "processed", "total", "created",
                                                         "updated", "skipped", "failed", "errors", "ft"}

POST answers JSON {"job", "progress_url"} to fetch() (Accept: application/json) and a 303 to the page
with ?job= otherwise, so the page works without JavaScript.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.auth import frame_login_required
from accounts.models import XeroConnection
from accounts.services.frame import frame_session_bitrix24_client
from connector.input_guard import positive_id
from integrations.common.errors import ExternalAPIError
from sync.models import SyncJob, SyncSettings
from sync.services.imports import CONTACTS_CUSTOMERS, ImportRefused, import_job_start, import_progress
from sync.web.common import MalformedBody, json_body
from sync.web.serializers import ImportStartRequest

KINDS = {"contacts": SyncJob.Kind.IMPORT_CONTACTS, "items": SyncJob.Kind.IMPORT_ITEMS}
RECENT_RUNS = 5
# A malformed form, said in the page's words (the page shows the first one).
IMPORT_FIELD_ERRORS = {
    "kind": "Choose what to import.",
    "currency": "Choose one of the portal's currencies for the product prices.",
    "contacts": "Choose which Xero contacts to import: customers or all.",
}


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _bitrix24_currencies(request: HttpRequest) -> tuple[list[dict], str, str]:
    """(currencies of the portal, the one to preselect, an error) — the saved default when the
    portal has it, else the portal's base currency."""
    client = frame_session_bitrix24_client(session=request.frame_user)
    try:
        listed = client.currencies_list()
        base = client.currency_base()
    except ExternalAPIError as exc:
        return [], "", f"Could not read the currencies from Bitrix24: {exc.message}"
    currencies = [{"code": c.code, "name": c.name or c.code} for c in listed]
    saved = SyncSettings.objects.filter(portal=request.portal).values_list("default_currency", flat=True).first()
    codes = {c["code"] for c in currencies}
    chosen = saved if saved in codes else base if base in codes else (currencies[0]["code"] if currencies else "")
    return currencies, chosen, ""


def _page(request: HttpRequest, *, error: str = "", status: int = 200, job: SyncJob | None = None) -> HttpResponse:
    portal = request.portal
    connection = XeroConnection.objects.filter(portal=portal).first()
    currencies, chosen, currency_error = _bitrix24_currencies(request)
    if job is None and request.GET.get("job", "").isdigit():
        job = SyncJob.objects.filter(portal=portal, pk=int(request.GET["job"]), kind__in=list(KINDS.values())).first()
    recent = list(
        SyncJob.objects.filter(portal=portal, kind__in=list(KINDS.values())).order_by("-created_at")[:RECENT_RUNS]
    )
    running = {j.kind: j for j in recent if j.status in (SyncJob.Status.PENDING, SyncJob.Status.RUNNING)}
    return render(
        request,
        "sync/imports.html",
        {
            "connected": bool(connection and connection.is_active),
            "connection": connection,
            "currencies": currencies,
            "chosen_currency": request.POST.get("currency") or chosen,
            "currency_error": currency_error,
            "error": error,
            "job": job,
            "job_progress": import_progress(job) if job else None,
            "recent": [(j, import_progress(j)) for j in recent],
            "running_contacts": running.get(SyncJob.Kind.IMPORT_CONTACTS),
            "running_items": running.get(SyncJob.Kind.IMPORT_ITEMS),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@frame_login_required(admin=True)
def imports(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    try:
        parsed = ImportStartRequest(
            data=json_body(request) if request.content_type == "application/json" else request.POST
        )
    except MalformedBody as exc:
        return JsonResponse({"error": str(exc), "kind": "input"}, status=400)
    if not parsed.is_valid():
        field = next(iter(parsed.errors))
        error = IMPORT_FIELD_ERRORS.get(field, f"The field {field!r} is not valid.")
        if _wants_json(request):
            return JsonResponse({"error": error, "kind": "input", "fields": parsed.errors}, status=400)
        return _page(request, error=error, status=400)
    body = parsed.validated_data
    kind, currency = KINDS[body["kind"]], body["currency"]
    error = ""
    if kind == SyncJob.Kind.IMPORT_ITEMS:
        currencies, _, currency_error = _bitrix24_currencies(request)
        if currency_error:
            error = currency_error
        elif currency not in {c["code"] for c in currencies}:
            error = "Choose one of the portal's currencies for the product prices."
    if not error:
        try:
            job = import_job_start(
                portal=request.portal,
                kind=kind,
                requested_by=request.frame_user.bitrix_user_id,
                currency=currency if kind == SyncJob.Kind.IMPORT_ITEMS else "",
                contacts=body["contacts"] or CONTACTS_CUSTOMERS,
            )
        except ImportRefused as refused:
            error = str(refused)
    if error:
        if _wants_json(request):
            return JsonResponse({"error": error}, status=400)
        return _page(request, error=error, status=400)
    progress_url = f"{reverse('web:import_progress')}?{urlencode({'job': job.pk})}"
    if _wants_json(request):
        return JsonResponse({"job": job.pk, "kind": job.kind, "progress_url": progress_url}, status=202)
    query = urlencode({"ft": request.frame_token, "job": job.pk})
    return HttpResponseRedirect(f"{reverse('web:imports')}?{query}", status=303)


@require_GET
@frame_login_required(admin=True)
def import_progress_view(request: HttpRequest) -> JsonResponse:
    job_id = positive_id(request.GET.get("job", ""))
    if job_id is None:
        return JsonResponse({"error": "job must be an import's number.", "kind": "input"}, status=400)
    job = SyncJob.objects.filter(portal=request.portal, pk=job_id, kind__in=list(KINDS.values())).first()
    if job is None:
        return JsonResponse({"error": "No such import on this portal."}, status=404)
    # A fresh sign-in token with each answer keeps a long import's page signed in.
    return JsonResponse({"job": job.pk, "kind": job.kind, **import_progress(job), "ft": request.frame_token})


urlpatterns = [
    path("import/", imports, name="imports"),
    path("import/progress/", import_progress_view, name="import_progress"),
]
