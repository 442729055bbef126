"""The Invoices page (where the app opens) and one invoice's page.

Every Bitrix24 read uses the signed-in user's own token (sync.web.common.user_client), so Bitrix24
decides what they see. The two buttons and their progress are in sync/web/buttons.py.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from accounts.auth import frame_login_required
from connector.i18n import page_zone
from integrations.common.errors import ExternalAPIError
from sync.services.drift import online_url_ensure
from sync.services.invoice_detail import invoice_for_user
from sync.services.invoice_list import DEFAULT_PAGE_SIZE, PAGE_SIZES, invoices_for_user
from sync.services.xero_budget import xero_budget_today
from sync.sources import SOURCES, portal_sources
from sync.web.common import bitrix24_errors, invoice_refused_page, request_kind, user_client, xero_ready

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


def zone_label(zone) -> str:
    """The page's zone as the filter's hint names it: "Pacific/Auckland", "UTC+03:00" (a portal's
    offset), "UTC"."""
    name = str(getattr(zone, "key", None) or zone.tzname(None) or "UTC")
    return "UTC" if name in ("Etc/UTC", "UTC+00:00") else name


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
            # The range's days are the page's days (sync.services.invoice_list.InvoiceFilter).
            "days_zone": zone_label(page_zone()),
            "xero_ready": xero_ready(request.portal),
            "kind": values["entity_type"],
            # A portal with old and new invoices: a switch between the two lists.
            "kinds": [(s.entity_type, s.title, _query(values, entity_type=s.entity_type, page=1)) for s in kinds]
            if len(kinds) > 1
            else [],
        },
    )


# --- one invoice -----------------------------------------------------------------------------------


@require_GET
@frame_login_required
@bitrix24_errors
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    try:
        detail = invoice_for_user(
            client=user_client(request),
            invoice_id=invoice_id,
            entity_type=request_kind(request, request.GET.get("kind")),
        )
    except ExternalAPIError as exc:
        return invoice_refused_page(request, invoice_id, exc)
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
            # A queued invoice says when the Xero budget is why it waits (sync/services/xero_budget.py).
            "budget_pacing": _budget_pacing(request.portal) if detail.row.link_state == "queued" else None,
        },
    )


def _budget_pacing(portal):
    budget = xero_budget_today(portal)
    return budget if budget is not None and budget.pacing else None


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


urlpatterns = [
    path("invoices/", invoice_list, name="invoices"),
    path("invoices/<int:invoice_id>/", invoice_detail, name="invoice_detail"),
]
