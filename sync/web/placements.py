"""Where a placement opens: the invoice card's toolbar -> that invoice's page; the invoice list's
row menu -> a page with the selected invoice(s) and the two actions.

PLACEMENT_OPTIONS names the object with ENTITY_ID (new invoices' DETAIL_TOOLBAR) or ID (list
menus, tabs) — bitrix24-api.md §6 — so both are read. The entity type is not sent; it follows from
the placement code: CRM_SMART_INVOICE_* for new invoices (31), CRM_INVOICE_* for old ones (5), whose
pages then carry ?kind=5.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from accounts.auth import frame_login_required
from sync.services.invoice_list import invoices_by_ids_for_user
from sync.sources import OLD_INVOICE, SMART_INVOICE
from sync.web.common import bitrix24_errors, parse_ids, request_kind, user_client, xero_ready


def placement_invoice_ids(options: Any) -> list[int]:
    """Invoice ids in PLACEMENT_OPTIONS: ENTITY_ID or ID, one id, "1,2" or a list; [] if none."""
    if not isinstance(options, dict):
        return []
    for key in ("ENTITY_ID", "ID"):
        raw = options.get(key)
        if raw in (None, "", []):
            continue
        ids = parse_ids(raw if isinstance(raw, (list, str)) else [raw])
        if ids:
            return ids
    return []


def placement_entity_type(placement: str) -> int:
    """The entity type of the invoices a placement code is about."""
    return OLD_INVOICE if (placement or "").upper().startswith("CRM_INVOICE_") else SMART_INVOICE


def placement_landing(placement: str, ids: list[int], *, token: str) -> str:
    """The page (with the frame token) a placement opens on."""
    params = {"ft": token}
    if placement_entity_type(placement) != SMART_INVOICE:
        params["kind"] = str(placement_entity_type(placement))
    query = urlencode(params)
    code = (placement or "").upper()
    if ids and code.endswith("_LIST_MENU"):
        return f"{reverse('web:invoice_selection')}?{query}&ids={','.join(map(str, ids))}"
    if ids:
        return f"{reverse('web:invoice_detail', args=[ids[0]])}?{query}"
    return f"{reverse('web:invoices')}?{query}"


@require_GET
@frame_login_required
@bitrix24_errors
def invoice_selection(request: HttpRequest) -> HttpResponse:
    ids = parse_ids(request.GET.get("ids", "")) or []
    entity_type = request_kind(request, request.GET.get("kind")) or request.portal.invoice_entity_types[0]
    rows = invoices_by_ids_for_user(client=user_client(request), ids=ids, entity_type=entity_type) if ids else []
    return render(
        request,
        "sync/invoice_selection.html",
        {
            "rows": rows,
            "asked": ids,
            "missing": len(set(ids) - {r.id for r in rows}),
            "xero_ready": xero_ready(request.portal),
            "kind": entity_type,
        },
    )


urlpatterns = [
    path("invoices/selected/", invoice_selection, name="invoice_selection"),
]
