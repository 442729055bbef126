"""Product rows of new invoices (crm.item.productrow.*, ownerType "SI").

A row is written the way Bitrix24 takes it — `price` (final unit price: after discount, with tax),
the discount (percent or absolute) and `taxRate`/`taxIncluded` — and the other prices are derived
from those, as in the docs' worked example (§1.4):

    price 90000, taxRate 10, discountRate 10  ->  priceExclusive 81818.18 (price / 1.10),
    priceNetto 90909.09 (before discount), discountSum 9090.91, priceBrutto 100000.00

`price` includes tax whether or not `taxIncluded` is Y (the flag only says how the form shows it),
so an invoice's amount is sum(price x quantity) and its tax sum((price - priceExclusive) x quantity).

Row changes on an invoice with automatic amounts (isManualOpportunity N) recompute its
opportunity and taxValue, bump updatedTime and raise ONCRMDYNAMICITEMUPDATE once per call. The
docs leave open whether a real portal sends that event for row-only changes; we send it because
the amount visibly changes, and a connector must not depend on it either way (sweep by
updatedTime as well).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.bitrix24 import crm_items, currency, notify
from sandbox.bitrix24.app_state import state
from sandbox.bitrix24.crm_items import FIELD_NAMES, project
from sandbox.bitrix24.filters import FLAG, FLOAT, INT, STR, compile_filter, sort_rows
from sandbox.bitrix24.values import dict_param, int_param, money, to_float, to_int, to_yn
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, ListResult, on_reset, on_snapshot, page_of, rest_method

OWNER_TYPE = "SI"

ROW_FIELDS = [
    ("id", "integer", INT, True),
    ("ownerId", "integer", INT, True),
    ("ownerType", "string", STR, True),
    ("productId", "integer", INT, False),
    ("productName", "string", STR, False),
    ("price", "double", FLOAT, False),
    ("priceAccount", "double", FLOAT, True),
    ("priceExclusive", "double", FLOAT, True),
    ("priceNetto", "double", FLOAT, True),
    ("priceBrutto", "double", FLOAT, True),
    ("quantity", "double", FLOAT, False),
    ("discountTypeId", "integer", INT, False),
    ("discountRate", "double", FLOAT, False),
    ("discountSum", "double", FLOAT, False),
    ("taxRate", "double", FLOAT, False),
    ("taxIncluded", "char", FLAG, False),
    ("customized", "char", FLAG, False),
    ("measureCode", "integer", INT, False),
    ("measureName", "string", STR, False),
    ("sort", "integer", INT, False),
    ("xmlId", "string", STR, False),
    ("type", "integer", INT, False),
    ("storeId", "integer", INT, False),
]
ROW_NAMES = [f[0] for f in ROW_FIELDS]
ROW_KINDS = {f[0]: f[2] for f in ROW_FIELDS}
_INPUTS = (
    "productId",
    "productName",
    "price",
    "quantity",
    "discountTypeId",
    "discountRate",
    "discountSum",
    "taxRate",
    "taxIncluded",
    "customized",
    "measureCode",
    "measureName",
    "sort",
    "xmlId",
    "type",
    "storeId",
)


@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["productRows"] = {}  # id -> row
    world.data["rowsByOwner"] = {}  # invoice id -> [row id, ...] in creation order


def rows_of(world: Bitrix24World, invoice_id: int) -> list[dict]:
    rows = world.data["productRows"]
    return [rows[i] for i in world.data["rowsByOwner"].get(invoice_id, [])]


def _totals(world: Bitrix24World, item: dict) -> tuple[float, float] | None:
    rows = rows_of(world, item["id"])
    if not rows:
        return None
    amount = sum(r["price"] * r["quantity"] for r in rows)
    tax = sum((r["price"] - r["price"] / (1 + (r["taxRate"] or 0) / 100)) * r["quantity"] for r in rows)
    return money(amount), money(tax)


def _forget_owner(world: Bitrix24World, invoice_id: int) -> None:
    for row_id in world.data["rowsByOwner"].pop(invoice_id, []):
        world.data["productRows"].pop(row_id, None)


crm_items.row_totals = _totals
crm_items.ON_DELETE.append(_forget_owner)


# --- the arithmetic --------------------------------------------------------------------------------
def derive(row: dict, world: Bitrix24World, currency_id: str) -> None:
    """Fill the read-only prices (and the discount field not written) from the written ones.

    Each step starts from the previous one *rounded*, as a real portal does: the documented
    crm.item.productrow.add answer (price 80000, taxRate 20, discountRate 20) has priceExclusive
    66666.67, priceNetto 83333.34 (= 66666.67 / 0.8) and priceBrutto 100000.01 (= 83333.34 x 1.2),
    not 83333.33 / 100000.00 (api-reference/crm/universal/product-rows/crm-item-productrow-add.md).
    """
    price = row["price"]
    tax_factor = 1 + (row["taxRate"] or 0) / 100
    exclusive = _half_up(price / tax_factor)
    if row["discountTypeId"] == 1:
        netto = _half_up(exclusive + row["discountSum"])
        row["discountRate"] = money(row["discountSum"] / netto * 100) if netto else 0.0
    else:
        rate = row["discountRate"]
        netto = _half_up(exclusive / (1 - rate / 100)) if rate < 100 else exclusive
        row["discountSum"] = _half_up(netto - exclusive)
    row["priceExclusive"] = exclusive
    row["priceNetto"] = netto
    row["priceBrutto"] = _half_up(netto * tax_factor)
    row["priceAccount"] = money(currency.to_base(world, price, currency_id))


def _half_up(value: float) -> float:
    return float(Decimal(repr(value + 0.0)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _bad(name: str, value: Any) -> B24Error:
    return B24Error(400, "INVALID_ARG_VALUE", f"Invalid value {value!r} for product row field '{name}'")


def _coerce(world: Bitrix24World, fields: dict) -> dict:
    out: dict[str, Any] = {}
    for name in _INPUTS:
        if name not in fields:
            continue
        value = fields[name]
        try:
            if name == "taxRate":
                out[name] = None if value in (None, "") else to_float(value)
                if out[name] is not None and out[name] < 0:
                    raise ValueError(value)
            elif name in ("taxIncluded", "customized"):
                out[name] = to_yn(value)
            elif name in ("productName", "measureName", "xmlId"):
                if isinstance(value, (dict, list)):
                    raise ValueError(value)
                out[name] = "" if value is None else str(value)
            elif ROW_KINDS[name] == INT:
                out[name] = 0 if value in (None, "") else to_int(value)
            else:
                out[name] = 0.0 if value in (None, "") else to_float(value)
        except ValueError:
            raise _bad(name, value) from None
    if out.get("discountTypeId", 2) not in (1, 2):
        raise _bad("discountTypeId", out["discountTypeId"])
    if not 0 <= out.get("discountRate", 0) <= 100:
        raise _bad("discountRate", out["discountRate"])
    if out.get("productId", 0) < 0:
        raise _bad("productId", out["productId"])
    return out


def _build(world: Bitrix24World, invoice: dict, fields: dict, base: dict | None = None) -> dict:
    changes = _coerce(world, fields)
    row = (
        dict(base)
        if base
        else {
            "id": None,
            "ownerId": invoice["id"],
            "ownerType": OWNER_TYPE,
            "productId": 0,
            "productName": "",
            "price": 0.0,
            "quantity": 1.0,
            "discountTypeId": 2,
            "discountRate": 0.0,
            "discountSum": 0.0,
            "taxRate": None,
            "taxIncluded": "N",
            "customized": "Y",
            "measureCode": 796,
            "measureName": "pcs",
            "sort": 10,
            "xmlId": "",
            "type": 1,
            "storeId": None,
        }
    )
    row.update(changes)
    if row["productId"] and not row["productName"]:
        product = world.data.get("products", {}).get(row["productId"])
        if product is not None:
            row["productName"] = product["name"]
    derive(row, world, invoice["currencyId"])
    return row


def _store(world: Bitrix24World, row: dict) -> dict:
    if row["id"] is None:
        row["id"] = world.next_id("productRow")
        world.data["rowsByOwner"].setdefault(row["ownerId"], []).append(row["id"])
    world.data["productRows"][row["id"]] = row
    return row


def _owner_changed(ctx: Ctx, invoice: dict) -> None:
    """Rows drive the amount of an automatic-amount invoice: recompute, touch, tell the app."""
    if invoice["isManualOpportunity"] != "N":
        return
    totals = _totals(ctx.world, invoice) or (0.0, 0.0)
    invoice["opportunity"], invoice["taxValue"] = totals
    crm_items.touch(invoice, ctx.user)
    notify.invoice_event(ctx.world, "UPDATE", invoice["id"], ctx.user)


def _owner(ctx: Ctx, owner_type: Any, owner_id: Any, action: str) -> dict:
    if owner_type in (None, "") or owner_id in (None, ""):
        raise B24Error(400, "100", "Required fields: ownerType, ownerId")
    if str(owner_type) == "I":
        raise B24Error(400, "ENTITY_TYPE_NOT_SUPPORTED", "Old invoices (I) have no crm.item.productrow rows")
    if str(owner_type) != OWNER_TYPE:
        raise B24Error(400, "OWNER_NOT_FOUND", f"Owner of type '{owner_type}' is not found")
    try:
        invoice = ctx.world.data["invoices"].get(to_int(owner_id))
    except ValueError:
        invoice = None
    if invoice is None:
        raise B24Error(400, "OWNER_NOT_FOUND", "Owner is not found")
    if not crm_items.can_see(ctx.user, invoice):
        raise B24Error(400, "ACCESS_DENIED", f"You do not have permission to {action} this item")
    return invoice


def _row(ctx: Ctx, row_id: Any, action: str) -> tuple[dict, dict]:
    try:
        row = ctx.world.data["productRows"].get(to_int(row_id))
    except ValueError:
        row = None
    if row is None:
        raise B24Error(400, "NOT_FOUND", "Product row not found")
    return row, _owner(ctx, row["ownerType"], row["ownerId"], action)


def _out(row: dict) -> dict:
    return {name: row[name] for name in ROW_NAMES}


# --- crm.item.productrow.* -------------------------------------------------------------------------
@rest_method("crm.item.productrow.fields")
def row_fields(ctx: Ctx, params: dict) -> dict:
    return {
        "fields": {
            name: {
                "type": b24type,
                "isRequired": name in ("ownerId", "ownerType", "productId"),
                "isReadOnly": readonly,
                "isImmutable": name in ("ownerId", "ownerType"),
                "isMultiple": False,
                "isDynamic": False,
                "title": name,
            }
            for name, b24type, _, readonly in ROW_FIELDS
        }
    }


@rest_method("crm.item.productrow.list")
def row_list(ctx: Ctx, params: dict) -> ListResult:
    flt = params.get("filter")
    if not isinstance(flt, dict) or "=ownerType" not in flt or "=ownerId" not in flt:
        raise B24Error(400, "INVALID_ARG_VALUE", "The filter must contain =ownerType and =ownerId")
    owner_ids = flt["=ownerId"] if isinstance(flt["=ownerId"], list) else [flt["=ownerId"]]
    # crm-item-productrow-list.md: "`=` — equals (works with arrays as well)", but no example shows
    # one; `productrow_owner_arrays: false` (POST /_sandbox/bitrix24/settings) makes a portal that
    # refuses them, so the connector's fallback (one invoice per command) is tested too.
    if isinstance(flt["=ownerId"], list) and state(ctx.world).settings.get("productrow_owner_arrays") is False:
        raise B24Error(400, "INVALID_ARG_VALUE", "Invalid value for filter field =ownerId: an array is not allowed")
    rows: list[dict] = []
    for owner_id in owner_ids:
        invoice = _owner(ctx, flt["=ownerType"], owner_id, "view")
        rows.extend(rows_of(ctx.world, invoice["id"]))
    match = compile_filter({k: v for k, v in flt.items() if k not in ("=ownerType", "=ownerId")}, ROW_KINDS)
    rows = [r for r in rows if match(r)]
    order = params.get("order") or {"sort": "ASC", "id": "ASC"}
    rows = sort_rows(rows, order, ROW_KINDS)
    chunk, total, nxt = page_of(rows, params.get("start"))
    return ListResult({"productRows": [_out(r) for r in chunk]}, total=total, next=nxt)


@rest_method("crm.item.productrow.get")
def row_get(ctx: Ctx, params: dict) -> dict:
    row, _ = _row(ctx, int_param(params, "id"), "view")
    return {"productRow": _out(row)}


@rest_method("crm.item.productrow.add")
def row_add(ctx: Ctx, params: dict) -> dict:
    fields = dict_param(params, "fields", required=True)
    invoice = _owner(ctx, fields.get("ownerType"), fields.get("ownerId"), "update")
    row = _store(ctx.world, _build(ctx.world, invoice, fields))
    _owner_changed(ctx, invoice)
    return {"productRow": _out(row)}


@rest_method("crm.item.productrow.update")
def row_update(ctx: Ctx, params: dict) -> dict:
    row, invoice = _row(ctx, int_param(params, "id"), "update")
    fields = dict_param(params, "fields", required=True)
    row = _store(ctx.world, _build(ctx.world, invoice, fields, base=row))
    _owner_changed(ctx, invoice)
    return {"productRow": _out(row)}


@rest_method("crm.item.productrow.set")
def row_set(ctx: Ctx, params: dict) -> dict:
    invoice = _owner(ctx, params.get("ownerType"), params.get("ownerId"), "update")
    given = params.get("productRows")
    if given in (None, ""):
        given = []
    if isinstance(given, dict):
        given = list(given.values())
    if not isinstance(given, list) or not all(isinstance(r, dict) for r in given):
        raise B24Error(400, "INVALID_ARG_VALUE", "productRows must be an array of product rows")
    built = [_build(ctx.world, invoice, fields) for fields in given]  # all valid before any change
    _forget_owner(ctx.world, invoice["id"])
    stored = [_store(ctx.world, row) for row in built]
    _owner_changed(ctx, invoice)
    return {"productRows": [_out(r) for r in stored]}


@rest_method("crm.item.productrow.delete")
def row_delete(ctx: Ctx, params: dict) -> list:
    row, invoice = _row(ctx, int_param(params, "id"), "update")
    del ctx.world.data["productRows"][row["id"]]
    ctx.world.data["rowsByOwner"][invoice["id"]].remove(row["id"])
    _owner_changed(ctx, invoice)
    return []


@rest_method("crm.item.productrow.getAvailableForPayment")
def available_for_payment(ctx: Ctx, params: dict) -> dict:
    invoice = _owner(ctx, params.get("ownerType"), params.get("ownerId"), "view")
    paid_rows = {
        rid
        for p in ctx.world.data.get("payments", {}).values()
        if p["entityId"] == invoice["id"]
        for rid in p.get("rowIds", [])
    }
    return {"productRows": [_out(r) for r in rows_of(ctx.world, invoice["id"]) if r["id"] not in paid_rows]}


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    invoices = []
    for item in world.data["invoices"].values():
        out = project(item, FIELD_NAMES)
        out["productRows"] = [_out(r) for r in rows_of(world, item["id"])]
        invoices.append(out)
    return {"invoices": invoices}
