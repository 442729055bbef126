"""The Setup page (admins only) and the account-code suggestions endpoint.

GET /app/setup/                 web:setup             stage map both ways, invoice defaults, payments
GET /app/xero/accounts/suggest/ web:accounts_suggest  {"query", "results": [{code, name, type}]}

The page re-reads the stages from Bitrix24 each time it opens (custom stages appear with their
default mapping); the Xero selects come from the per-tenant reference cache. Saving checks
everything first and stores nothing when anything is wrong (the stage map and the settings in one
transaction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.auth import frame_login_required
from accounts.models import XeroConnection
from accounts.services.frame import frame_session_bitrix24_client
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from sync.mappers import tax_map
from sync.mappers.stage import PAID, XERO_STATUSES
from sync.models import StageMapping, SyncSettings, XeroStatus, XeroStatusMapping
from sync.services.gate import jobs_release_held
from sync.services.stages import stage_map_refresh
from sync.services.xero_budget import xero_budget_today
from sync.services.xero_reference import (
    REVENUE_TYPES,
    XeroNotConnected,
    xero_accounts,
    xero_accounts_suggest,
    xero_bank_accounts,
    xero_currencies,
    xero_tax_rates,
)
from sync.stage_map import OLD_STATUS_CATEGORY, stage_map_save

logger = logging.getLogger(__name__)

SUGGEST_LIMIT_MAX = 25
# Statuses Xero cannot undo: never a default, and the page warns when an admin chooses one.
IRREVERSIBLE = ("VOIDED", "DELETED")


@dataclass
class SetupContext:
    """Everything the page shows; `errors` by field name, `problems` for the whole form."""

    stages: list[StageMapping] = field(default_factory=list)
    xero_map: dict[str, str] = field(default_factory=dict)
    # A portal with old and new invoices: the Xero -> Bitrix24 map of the second kind (old ones).
    xero_map_more: dict[int, dict[str, str]] = field(default_factory=dict)
    entity_types: tuple[int, ...] = (SMART_INVOICE,)
    settings: SyncSettings | None = None
    connection: XeroConnection | None = None
    accounts: list[dict] = field(default_factory=list)
    bank_accounts: list[dict] = field(default_factory=list)
    tax_rates: list[dict] = field(default_factory=list)
    currencies: list[dict] = field(default_factory=list)
    bitrix24_rates: list[dict] = field(default_factory=list)
    stage_error: str = ""
    xero_error: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Proposals shown on a Setup never saved (accepting them unchanged must lead to working sync).
    proposed: list[str] = field(default_factory=list)
    xero_map_more_posted: dict[int, dict[str, str]] = field(default_factory=dict)
    drift_choices: list = field(default_factory=lambda: list(SyncSettings.DriftWinner.choices))


def _load(request: HttpRequest, *, refresh_stages: bool) -> SetupContext:
    portal = request.portal
    ctx = SetupContext(connection=XeroConnection.objects.filter(portal=portal).first())
    client = frame_session_bitrix24_client(session=request.frame_user)
    if refresh_stages:
        try:
            stage_map_refresh(portal=portal, client=client)
        except ExternalAPIError as exc:
            ctx.stage_error = f"Could not read the invoice stages from Bitrix24: {exc.message}"
    ctx.settings, _ = SyncSettings.objects.get_or_create(portal=portal)
    ctx.stages = list(StageMapping.objects.filter(portal=portal))
    ctx.entity_types = portal.invoice_entity_types
    maps: dict[int, dict[str, str]] = {t: {} for t in ctx.entity_types}
    for entity_type, status, stage_id in XeroStatusMapping.objects.filter(portal=portal).values_list(
        "entity_type", "xero_status", "stage_id"
    ):
        maps.setdefault(entity_type, {})[status] = stage_id
    ctx.xero_map = maps[ctx.entity_types[0]]
    ctx.xero_map_more = {t: maps[t] for t in ctx.entity_types[1:]}
    try:
        ctx.accounts = xero_accounts(portal)
        ctx.bank_accounts = xero_bank_accounts(portal)
        ctx.tax_rates = [rate for rate in xero_tax_rates(portal) if rate["revenue"]]
        ctx.currencies = xero_currencies(portal)
    except XeroNotConnected as exc:
        ctx.xero_error = exc.message
    except ExternalAPIError as exc:
        ctx.xero_error = f"Could not read the chart of accounts from Xero: {exc.message}"
    try:
        vats = (client.result("catalog.vat.list", {}) or {}).get("vats") or []
    except ExternalAPIError:
        vats = []  # the tax-rate map then shows the rates already stored
    keys = {"none"} | {_rate_key(v.get("rate")) for v in vats if v.get("rate") is not None}
    keys |= set((ctx.settings.tax_types or {}).keys())
    ctx.bitrix24_rates = []
    for key in sorted(keys, key=lambda k: (k != "none", float(k) if k != "none" else 0)):
        # Only Xero sales tax rates of the same effective rate are offered; an unmapped rate gets
        # the best of them proposed (15% -> the 15% output rate, 0% -> zero-rated, none -> no tax).
        options = tax_map.matching(key, ctx.tax_rates)
        stored = ctx.settings.tax_types.get(key, "")
        proposed = "" if stored else tax_map.propose(key, ctx.tax_rates)
        ctx.bitrix24_rates.append(
            {
                "key": key,
                "label": "Rows without tax" if key == "none" else f"{key}%",
                "value": stored or proposed,
                "proposed": bool(proposed),
                "options": options,
                "stored_mismatch": tax_map.mismatch(key, stored, ctx.tax_rates) if stored and ctx.tax_rates else "",
            }
        )
    return ctx


def _propose(ctx: SetupContext) -> None:
    """What a first Setup offers, in memory only (saving stores it): record payments to the
    organisation's first bank account (Accounts of Type BANK) when it has one, and then map the
    success stages to Paid; otherwise leave them as they are, with a note."""
    settings = ctx.settings
    if settings is None or settings.setup_completed or ctx.xero_error:
        return
    if not settings.payment_account_code:
        bank = next((a for a in ctx.bank_accounts if a.get("type") == "BANK" and a.get("code")), None)
        if bank is not None:
            settings.record_payment_on_paid = True
            settings.payment_account_code = bank["code"]
            ctx.proposed.append("payment_account_code")
    codes = {a["code"] for a in ctx.accounts}
    if settings.default_account_code not in codes:
        revenue = [a for a in ctx.accounts if a["type"] in REVENUE_TYPES]
        if revenue:
            settings.default_account_code = revenue[0]["code"]
            ctx.proposed.append("default_account_code")
    if not settings.default_currency and ctx.currencies:
        # Xero lists the organisation's base currency first.
        settings.default_currency = ctx.currencies[0]["code"]
        ctx.proposed.append("default_currency")
    if not settings.default_tax_type and ctx.tax_rates:
        # For new Xero items: the organisation's standard sales rate (the highest effective rate).
        standard = max(ctx.tax_rates, key=lambda r: r["rate"] or 0.0)
        settings.default_tax_type = standard["tax_type"]
        ctx.proposed.append("default_tax_type")
    paid_ok = settings.record_payment_on_paid and bool(settings.payment_account_code)
    for stage in ctx.stages:
        if stage.semantics == StageMapping.Semantics.SUCCESS and not stage.xero_status and paid_ok:
            stage.xero_status = PAID
            ctx.proposed.append(f"stage:{stage.stage_id}")


def _rate_key(rate: object) -> str:
    # "15.0" and "15" are one rate; the settings store the plain form.
    number = float(rate)  # type: ignore[arg-type]
    return str(int(number)) if number == int(number) else str(number)


KIND_LABELS = {SMART_INVOICE: "invoice stage", OLD_INVOICE: "old invoice status"}


def _xero_field(ctx: SetupContext, entity_type: int, status: str) -> str:
    """The form field of one Xero status: "xero:<status>" for the portal's first kind of invoices
    (the only one on most portals), "xero<entity type>:<status>" for the second."""
    return f"xero:{status}" if entity_type == ctx.entity_types[0] else f"xero{entity_type}:{status}"


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
                        _xero_field(ctx, entity_type, value),
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


def _validate_settings(ctx: SetupContext, data) -> dict:
    """The SyncSettings values from the form, with field errors collected in ctx.errors."""
    values: dict = {}
    if ctx.xero_error:
        return values  # the Xero selects were not shown; keep what is stored
    codes = {a["code"] for a in ctx.accounts}
    bank_codes = {a["code"] for a in ctx.bank_accounts}
    tax_types = {r["tax_type"] for r in ctx.tax_rates}
    currencies = {c["code"] for c in ctx.currencies}

    def pick(name: str, allowed: set[str], message: str, *, required: bool = True) -> str:
        value = (data.get(name) or "").strip()
        if not value and not required:
            return ""
        if value not in allowed:
            ctx.errors.setdefault(name, []).append(message)
        return value

    values["default_account_code"] = pick(
        "default_account_code", codes, "Choose an active Xero account for invoice lines."
    )
    values["default_tax_type"] = pick("default_tax_type", tax_types, "Choose a Xero tax rate that applies to sales.")
    values["default_currency"] = pick("default_currency", currencies, "Choose a currency enabled in Xero.")
    chosen_map = {}
    for row in ctx.bitrix24_rates:
        name = f"tax:{row['key']}"
        value = (data.get(name) or "").strip()
        if value:
            if value not in tax_types:
                ctx.errors.setdefault(name, []).append("Choose a Xero tax rate that applies to sales.")
            else:
                # A saved mismatch is refused with the reason (issue 11 point 3).
                problem = tax_map.mismatch(row["key"], value, ctx.tax_rates)
                if problem:
                    ctx.errors.setdefault(name, []).append(problem)
            chosen_map[row["key"]] = value
    values["tax_types"] = chosen_map or {"none": "NONE"}
    _validate_amounts(ctx, data, values, codes)
    values["record_payment_on_paid"] = data.get("record_payment_on_paid") == "on"
    values["payment_account_code"] = pick(
        "payment_account_code", bank_codes, "Choose a Xero bank account to record payments to.", required=False
    )
    if values["record_payment_on_paid"] and not values["payment_account_code"]:
        ctx.errors.setdefault("payment_account_code", []).append(
            "Recording payments needs the bank account they are recorded to."
        )
    values["create_bitrix24_payment_on_paid"] = data.get("create_bitrix24_payment_on_paid") == "on"
    # Which side automatic sync keeps when an invoice was changed in Xero (drift is always shown).
    winner = data.get("drift_winner") or (ctx.settings.drift_winner if ctx.settings else "")
    values["drift_winner"] = winner if winner in SyncSettings.DriftWinner.values else SyncSettings.DriftWinner.BITRIX24
    return values


def _validate_amounts(ctx: SetupContext, data, values: dict, codes: set[str]) -> None:
    """The exactness choices (issue 11): a tolerance for drafts, hand-entered amounts, exchange rates."""
    raw = (data.get("totals_tolerance_cents") or "0").strip()
    try:
        cents = int(raw)
        if not 0 <= cents <= 100:
            raise ValueError
        values["totals_tolerance_cents"] = cents
    except ValueError:
        ctx.errors.setdefault("totals_tolerance_cents", []).append("Enter a whole number of cents from 0 to 100.")
    account = (data.get("manual_amount_account_code") or "").strip()
    if account and account not in codes:
        ctx.errors.setdefault("manual_amount_account_code", []).append("Choose an active Xero account.")
    values["manual_amount_account_code"] = account
    source = (data.get("currency_rate_source") or SyncSettings.CurrencyRateSource.XERO).strip()
    if source not in SyncSettings.CurrencyRateSource.values:
        ctx.errors.setdefault("currency_rate_source", []).append("Choose Xero's rate or Bitrix24's.")
    values["currency_rate_source"] = source


def _validate_map(ctx: SetupContext, data) -> tuple[dict[str, str], dict[str, str]]:
    """The two maps from the form. Values are checked again by stage_map_save; here they are also
    tied to their fields so the page can show each problem where it belongs."""
    known = {s.stage_id for s in ctx.stages}
    b24_to_xero: dict[str, str] = {}
    for key in data:
        if key.startswith("stage:"):
            stage_id, status = key[len("stage:") :], (data.get(key) or "").strip()
            b24_to_xero[stage_id] = status
            if stage_id not in known:
                ctx.errors.setdefault(key, []).append("This stage is no longer in Bitrix24; reload the page.")
            elif status and status not in XERO_STATUSES:
                ctx.errors.setdefault(key, []).append(f'"{status}" is not a Xero invoice status.')
    maps: dict[int, dict[str, str]] = {}
    for entity_type in ctx.entity_types:
        kind_map = maps.setdefault(entity_type, {})
        for status in XERO_STATUSES:
            key = _xero_field(ctx, entity_type, status)
            if key in data:
                stage_id = (data.get(key) or "").strip()
                kind_map[status] = stage_id
                if stage_id and stage_id not in known:
                    ctx.errors.setdefault(key, []).append("This stage is no longer in Bitrix24; reload the page.")
    for key in data:
        prefix, colon, status = key.partition(":")
        if colon and prefix.startswith("xero") and status not in XERO_STATUSES:
            ctx.problems.append(f'"{status}" is not a Xero invoice status.')
    ctx.xero_map_more_posted = {t: maps[t] for t in ctx.entity_types[1:]}
    return b24_to_xero, maps[ctx.entity_types[0]]


def _validate_paid(ctx: SetupContext, b24_to_xero: dict[str, str], values: dict) -> None:
    """A stage may ask for Paid only when payments are recorded: Xero sets PAID through a payment
    and refuses the status itself, so the map must not promise what every push would fail."""
    recording = values.get("record_payment_on_paid", ctx.settings.record_payment_on_paid if ctx.settings else False)
    account = values.get("payment_account_code", ctx.settings.payment_account_code if ctx.settings else "")
    if recording and account:
        return
    for stage_id, status in b24_to_xero.items():
        if status == PAID:
            ctx.errors.setdefault(f"stage:{stage_id}", []).append(
                "Xero marks an invoice Paid only through a payment: switch on “Record a Xero payment” "
                "and choose its bank account below, or choose another status."
            )


@require_http_methods(["GET", "POST"])
@frame_login_required(admin=True)
def setup(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        ctx = _load(request, refresh_stages=True)
        _propose(ctx)
        return _render(request, ctx)

    ctx = _load(request, refresh_stages=False)
    b24_to_xero, xero_to_b24 = _validate_map(ctx, request.POST)
    values = _validate_settings(ctx, request.POST)
    _validate_paid(ctx, b24_to_xero, values)
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
            kind_map.update({s: request.POST.get(_xero_field(ctx, entity_type, s), v) for s, v in kind_map.items()})
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
