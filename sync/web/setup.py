"""The Setup page (admins only) and the account-code suggestions endpoint.

GET /app/setup/                 web:setup             stage map both ways, invoice defaults, payments
GET /app/xero/accounts/suggest/ web:accounts_suggest  {"query", "results": [{code, name, type}]}

What the page shows is read in setup_context.py, a posted form is checked in setup_form.py. Saving
checks everything first and stores nothing when anything is wrong (the stage map and the settings
in one transaction).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.auth import frame_login_required
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from sync.mappers.stage import XERO_STATUSES
from sync.models import SyncSettings, XeroStatus
from sync.services.gate import jobs_release_held
from sync.services.xero_budget import xero_budget_today
from sync.services.xero_reference import (
    REVENUE_TYPES,
    XeroNotConnected,
    xero_accounts_suggest,
)
from sync.stage_map import OLD_STATUS_CATEGORY, stage_map_save
from sync.web.setup_context import SetupContext, setup_context_load, setup_defaults_propose, xero_field
from sync.web.setup_form import validate_map, validate_paid, validate_settings

logger = logging.getLogger(__name__)

SUGGEST_LIMIT_MAX = 25
# Statuses Xero cannot undo: never a default, and the page warns when an admin chooses one.
IRREVERSIBLE = ("VOIDED", "DELETED")


KIND_LABELS = {SMART_INVOICE: "invoice stage", OLD_INVOICE: "old invoice status"}


def _xero_tables(ctx: SetupContext) -> list[dict]:
    """One Xero status -> Bitrix24 table per kind of invoice the portal has."""
    maps = {ctx.entity_types[0]: ctx.xero_map, **ctx.xero_map_more}
    tables = []
    for entity_type in ctx.entity_types:
        old = entity_type == OLD_INVOICE
        stages = [s for s in ctx.stages if (s.category_id == OLD_STATUS_CATEGORY) == old]
        tables.append(
            {
                "entity_type": entity_type,
                "title": f"Xero status → Bitrix24 {KIND_LABELS[entity_type]}",
                "many_kinds": len(ctx.entity_types) > 1,
                "stages": stages,
                "pipelines": len({s.category_id for s in stages}) > 1,
                "rows": [
                    (
                        value,
                        XeroStatus(value).label,
                        maps[entity_type].get(value, ""),
                        xero_field(ctx, entity_type, value),
                    )
                    for value in XERO_STATUSES
                ],
            }
        )
    return tables


def _render(request: HttpRequest, ctx: SetupContext, *, status: int = 200) -> HttpResponse:
    accounts = ctx.accounts
    return render(
        request,
        "sync/setup.html",
        {
            "ctx": ctx,
            "stages": ctx.stages,
            "categories": sorted({s.category_id for s in ctx.stages}),
            "xero_statuses": [(value, XeroStatus(value).label) for value in XERO_STATUSES],
            "xero_rows": [(value, XeroStatus(value).label, ctx.xero_map.get(value, "")) for value in XERO_STATUSES],
            "xero_tables": _xero_tables(ctx),
            "revenue_accounts": [a for a in accounts if a["type"] in REVENUE_TYPES],
            "other_accounts": [a for a in accounts if a["type"] not in REVENUE_TYPES],
            "saved": request.GET.get("saved") == "1",
            "currency_rate_sources": SyncSettings.CurrencyRateSource.choices,
            "xero_ready": not ctx.xero_error,
            "irreversible": IRREVERSIBLE,
            "paid_allowed": bool(
                ctx.settings and ctx.settings.record_payment_on_paid and ctx.settings.payment_account_code
            ),
            "xero_budget": xero_budget_today(request.portal),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@frame_login_required(admin=True)
def setup(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        ctx = setup_context_load(request, refresh_stages=True)
        setup_defaults_propose(ctx)
        return _render(request, ctx)

    ctx = setup_context_load(request, refresh_stages=False)
    b24_to_xero, xero_to_b24 = validate_map(ctx, request.POST)
    values = validate_settings(ctx, request.POST)
    validate_paid(ctx, b24_to_xero, values)
    if not ctx.errors and not ctx.problems:
        try:
            with transaction.atomic():
                stage_map_save(request.portal, b24_to_xero, xero_to_b24, more_xero_to_b24=ctx.xero_map_more_posted)
                if values:
                    # Complete once the Xero defaults are chosen too (they need a connection);
                    # the invoices held until now go (sync.services.gate).
                    SyncSettings.objects.filter(pk=ctx.settings.pk).update(**values, setup_completed=True)
                    jobs_release_held(request.portal)
        except ValidationError as exc:
            ctx.problems.extend(exc.messages)
    if ctx.errors or ctx.problems:
        # Show what the user chose, not what is stored, next to each message.
        for stage in ctx.stages:
            stage.xero_status = request.POST.get(f"stage:{stage.stage_id}", stage.xero_status)
        ctx.xero_map.update({s: request.POST.get(f"xero:{s}", v) for s, v in ctx.xero_map.items()})
        for entity_type, kind_map in ctx.xero_map_more.items():
            kind_map.update({s: request.POST.get(xero_field(ctx, entity_type, s), v) for s, v in kind_map.items()})
        for name, value in values.items():
            setattr(ctx.settings, name, value)
        for row in ctx.bitrix24_rates:
            row["value"] = request.POST.get(f"tax:{row['key']}", row["value"])
        return _render(request, ctx, status=400)
    query = urlencode({"ft": request.frame_token, "saved": "1"})
    return HttpResponseRedirect(f"{reverse('web:setup')}?{query}", status=303)


@require_GET
@frame_login_required
def accounts_suggest(request: HttpRequest) -> JsonResponse:
    """Account codes for the "Add New Product" form, from the cache: no Xero call while it is fresh.
    409 with {"error"} when Xero is not connected; 502 when Xero could not be read to fill it."""
    query = request.GET.get("q", "")[:100]
    try:
        limit = max(1, min(SUGGEST_LIMIT_MAX, int(request.GET.get("limit") or 10)))
    except ValueError:
        limit = 10
    try:
        results = xero_accounts_suggest(portal=request.portal, query=query, limit=limit)
    except XeroNotConnected as exc:
        return JsonResponse({"query": query, "results": [], "error": exc.message}, status=409)
    except ExternalAPIError as exc:
        return JsonResponse({"query": query, "results": [], "error": f"Xero: {exc.message}"}, status=502)
    return JsonResponse({"query": query, "results": results})


urlpatterns = [
    path("setup/", setup, name="setup"),
    path("xero/accounts/suggest/", accounts_suggest, name="accounts_suggest"),
]
