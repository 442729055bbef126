"""What the Setup page shows: the stage maps, the portal's settings, the Xero reference lists and
the Bitrix24 tax rates, read fresh each time; and what a first Setup proposes (in memory only).

The page re-reads the stages from Bitrix24 each time it opens (custom stages appear with their
default mapping); the Xero selects come from the per-tenant reference cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest

from accounts.models import XeroConnection
from accounts.services.frame import frame_session_bitrix24_client
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from sync.mappers import tax_map
from sync.mappers.stage import PAID
from sync.models import StageMapping, SyncSettings, XeroStatusMapping
from sync.services.stages import stage_map_refresh
from sync.services.xero_reference import (
    REVENUE_TYPES,
    XeroNotConnected,
    xero_accounts,
    xero_bank_accounts,
    xero_currencies,
    xero_tax_rates,
)


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


def setup_context_load(request: HttpRequest, *, refresh_stages: bool) -> SetupContext:
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
        vats = client.vats_list()
    except ExternalAPIError:
        vats = []  # the tax-rate map then shows the rates already stored
    keys = {"none"} | {_rate_key(v.rate) for v in vats if v.rate is not None}
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


def setup_defaults_propose(ctx: SetupContext) -> None:
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


def xero_field(ctx: SetupContext, entity_type: int, status: str) -> str:
    """The form field of one Xero status: "xero:<status>" for the portal's first kind of invoices
    (the only one on most portals), "xero<entity type>:<status>" for the second."""
    return f"xero:{status}" if entity_type == ctx.entity_types[0] else f"xero{entity_type}:{status}"
