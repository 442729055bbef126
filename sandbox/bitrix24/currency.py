"""The portal's currencies (crm.currency.*): NZD is the base, with USD, EUR, AUD and GBP.

AMOUNT is how many base units AMOUNT_CNT units of the currency cost; the classic API returns
every value as a string.
"""

from __future__ import annotations

from sandbox.bitrix24.values import now_iso
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, ListResult, on_reset, on_snapshot, rest_method

BASE = "NZD"

# code -> (full name, rate in NZD, sort, format)
CURRENCIES = {
    "NZD": ("New Zealand Dollar", "1.0000", 100, "NZ$#"),
    "USD": ("US Dollar", "1.6500", 200, "US$#"),
    "EUR": ("Euro", "1.8000", 300, "&euro;#"),
    "AUD": ("Australian Dollar", "1.0900", 400, "A$#"),
    "GBP": ("Pound Sterling", "2.1000", 500, "&pound;#"),
}


@on_reset
def _reset(world: Bitrix24World) -> None:
    stamp = now_iso()
    world.data["currencies"] = {
        code: {
            "CURRENCY": code,
            "AMOUNT_CNT": "1",
            "AMOUNT": rate,
            "SORT": str(sort),
            "BASE": "Y" if code == BASE else "N",
            "FULL_NAME": name,
            "LID": "en",
            "FORMAT_STRING": fmt,
            "DEC_POINT": ".",
            "THOUSANDS_SEP": ",",
            "DECIMALS": "2",
            "DATE_UPDATE": stamp,
        }
        for code, (name, rate, sort, fmt) in CURRENCIES.items()
    }


def base_currency(world: Bitrix24World) -> str:
    return next(code for code, row in world.data["currencies"].items() if row["BASE"] == "Y")


def exists(world: Bitrix24World, code: str) -> bool:
    return code in world.data["currencies"]


def to_base(world: Bitrix24World, amount: float, code: str) -> float:
    """An amount in `code` expressed in the base (reporting) currency."""
    row = world.data["currencies"].get(code)
    if row is None:
        return amount
    return amount * float(row["AMOUNT"]) / float(row["AMOUNT_CNT"])


@rest_method("crm.currency.list")
def currency_list(ctx: Ctx, params: dict) -> ListResult:
    rows = list(ctx.world.data["currencies"].values())
    order = params.get("order") if isinstance(params.get("order"), dict) else {}
    for field, direction in reversed(list(order.items())):
        if field in ("SORT", "CURRENCY"):
            key = (lambda r: int(r["SORT"])) if field == "SORT" else (lambda r: r["CURRENCY"])
            rows.sort(key=key, reverse=str(direction).upper() == "DESC")
    if not order:
        rows.sort(key=lambda r: int(r["SORT"]))
    # The documented answer carries "total": 0 beside the rows (crm/currency/crm-currency-list.md).
    return ListResult([dict(r) for r in rows], total=0)


@rest_method("crm.currency.get")
def currency_get(ctx: Ctx, params: dict) -> dict:
    code = str(params.get("id") or "").upper()
    row = ctx.world.data["currencies"].get(code)
    if row is None:
        raise B24Error(400, "", "Currency is not found")
    return dict(row)


@rest_method("crm.currency.base.get")
def base_get(ctx: Ctx, params: dict) -> str:
    return base_currency(ctx.world)


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    return {"currencies": [dict(r) for r in world.data["currencies"].values()]}
