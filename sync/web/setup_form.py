"""Checking a posted Setup form: every field against what Bitrix24 and Xero offer, each problem
tied to its field (ctx.errors) or to the whole form (ctx.problems), before anything is stored.

The form is an HTML form whose fields are named after the portal's own stages and tax rates
("stage:<id>", "xero:<status>", "tax:<rate>"), so it is checked here rather than by a fixed
serializer; the view answers 400 with the page and every message when anything is wrong.
"""

from __future__ import annotations

from sync.mappers import tax_map
from sync.mappers.stage import PAID, XERO_STATUSES
from sync.models import SyncSettings
from sync.web.setup_context import SetupContext, xero_field


def validate_settings(ctx: SetupContext, data) -> dict:
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


def validate_map(ctx: SetupContext, data) -> tuple[dict[str, str], dict[str, str]]:
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
            key = xero_field(ctx, entity_type, status)
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


def validate_paid(ctx: SetupContext, b24_to_xero: dict[str, str], values: dict) -> None:
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
