"""The product catalogue (catalog.*): one CRM catalogue, sections, products, prices, VAT rates.

Products live in iblock 25 (a common cloud id; never 1) and every product call names it:
list needs iblockId in the filter and id + iblockId in select. Prices are separate records
(catalog.price.*) per product and price type; the base price type is 1. Catalog errors carry
numeric codes as strings, like the real module's.
"""

from __future__ import annotations

from typing import Any

from sandbox.bitrix24 import currency
from sandbox.bitrix24.filters import DATETIME, FLOAT, INT, STR, compile_filter, select_fields, sort_rows
from sandbox.bitrix24.values import money, now_iso, to_float, to_int, to_yn
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, ListResult, on_reset, on_snapshot, page_of, rest_method

IBLOCK_ID = 25
BASE_PRICE_TYPE = 1
VATS = [
    {"id": 1, "name": "No GST", "rate": None, "active": "Y", "sort": 100, "excludeVat": "Y"},
    {"id": 2, "name": "GST 0%", "rate": 0.0, "active": "Y", "sort": 200, "excludeVat": "N"},
    {"id": 3, "name": "GST 15%", "rate": 15.0, "active": "Y", "sort": 300, "excludeVat": "N"},
]

PRODUCT_FIELDS = [
    "id",
    "iblockId",
    "iblockSectionId",
    "name",
    "active",
    "code",
    "xmlId",
    "sort",
    "previewText",
    "detailText",
    "vatId",
    "vatIncluded",
    "measure",
    "type",
    "createdBy",
    "modifiedBy",
    "dateCreate",
    "timestampX",
]
PRODUCT_KINDS = {
    n: INT
    if n in ("id", "iblockId", "iblockSectionId", "sort", "vatId", "measure", "type", "createdBy", "modifiedBy")
    else DATETIME
    if n in ("dateCreate", "timestampX")
    else STR
    for n in PRODUCT_FIELDS
}
SECTION_FIELDS = [
    "id",
    "iblockId",
    "iblockSectionId",
    "name",
    "xmlId",
    "code",
    "sort",
    "active",
    "description",
    "descriptionType",
]
SECTION_KINDS = {n: INT if n in ("id", "iblockId", "iblockSectionId", "sort") else STR for n in SECTION_FIELDS}
PRICE_FIELDS = [
    "id",
    "productId",
    "catalogGroupId",
    "price",
    "currency",
    "extraId",
    "quantityFrom",
    "quantityTo",
    "timestampX",
]
PRICE_KINDS = {
    n: FLOAT if n == "price" else STR if n == "currency" else DATETIME if n == "timestampX" else INT
    for n in PRICE_FIELDS
}


@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["products"] = {}
    world.data["sections"] = {}
    world.data["prices"] = {}


def _error(code: str, text: str) -> B24Error:
    return B24Error(400, code, text)


def _required(fields: dict, *names: str) -> None:
    missing = [n for n in names if fields.get(n) in (None, "")]
    if missing:
        raise _error("200040300010", "Required fields: " + ", ".join(missing))


def _fields(params: dict) -> dict:
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise _error("100", "Could not find value for parameter {fields}")
    return fields


def _check_iblock(value: Any) -> int:
    try:
        iblock = to_int(value)
    except ValueError:
        iblock = None
    if iblock != IBLOCK_ID:
        raise _error("200040300000", f"Iblock {value} is not a product catalog")
    return iblock


def _typed(kinds: dict, name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    kind = kinds[name]
    try:
        if kind == INT:
            return to_int(value)
        if kind == FLOAT:
            return money(to_float(value))
    except ValueError:
        raise _error("100", f"Invalid value {value!r} for field {name}") from None
    if isinstance(value, (dict, list)):
        raise _error("100", f"Invalid value for field {name}")
    return str(value)


def _list(rows: list[dict], params: dict, kinds: dict, names: list[str], require_iblock: bool) -> tuple:
    flt = params.get("filter") if isinstance(params.get("filter"), dict) else {}
    if require_iblock:
        if "iblockId" not in flt and "=iblockId" not in flt:
            raise _error("200040300010", "Required filter field: iblockId")
        _check_iblock(flt.get("iblockId", flt.get("=iblockId")))
    match = compile_filter(flt, kinds, allow_logic=False)
    order = params.get("order") or {"id": "ASC"}
    if isinstance(order, dict):
        order = {k: str(v).upper() for k, v in order.items()}
    rows = sort_rows([r for r in rows if match(r)], order, kinds)
    chosen = select_fields(params.get("select"), names)
    return page_of([{n: r[n] for n in chosen} for r in rows], params.get("start"))


# --- catalog.catalog / vat -----------------------------------------------------------------------
@rest_method("catalog.catalog.list")
def catalog_list(ctx: Ctx, params: dict) -> ListResult:
    catalogs = [
        {
            "id": IBLOCK_ID,
            "iblockId": IBLOCK_ID,
            # A number in the documented answer (catalog/catalog/catalog-catalog-list.md: 0), not
            # the iblock type's code.
            "iblockTypeId": 0,
            "lid": "s1",
            "name": "CRM product catalog",
            "productIblockId": None,
            "skuPropertyId": None,
            "subscription": "N",
            "vatId": 3,
            "yandexExport": "N",
        }
    ]
    return ListResult({"catalogs": catalogs}, total=1)


@rest_method("catalog.vat.list")
def vat_list(ctx: Ctx, params: dict) -> ListResult:
    return ListResult({"vats": [dict(v) for v in VATS]}, total=len(VATS))


# --- price types (catalog/price-type/catalog-price-type-list.md, -get.md) ----------------------------
PRICE_TYPE_FIELDS = ["id", "name", "base", "sort", "xmlId", "createdBy", "modifiedBy", "dateCreate", "timestampX"]
PRICE_TYPE_KINDS = {
    n: INT if n in ("id", "sort", "createdBy", "modifiedBy") else DATETIME if n in ("dateCreate", "timestampX") else STR
    for n in PRICE_TYPE_FIELDS
}


def _price_types() -> list[dict]:
    stamp = "2023-08-30T13:43:41+03:00"
    return [
        {
            "id": BASE_PRICE_TYPE,
            "name": "BASE",
            "base": "Y",
            "sort": 100,
            "xmlId": "BASE",
            "createdBy": 1,
            "modifiedBy": 1,
            "dateCreate": stamp,
            "timestampX": stamp,
        }
    ]


@rest_method("catalog.priceType.list")
def price_type_list(ctx: Ctx, params: dict) -> ListResult:
    chunk, total, nxt = _list(_price_types(), params, PRICE_TYPE_KINDS, PRICE_TYPE_FIELDS, False)
    return ListResult({"priceTypes": chunk}, total=total, next=nxt)


@rest_method("catalog.priceType.get")
def price_type_get(ctx: Ctx, params: dict) -> dict:
    found = [t for t in _price_types() if str(t["id"]) == str(params.get("id"))]
    if not found:
        raise _error("201000000000", "Price type with such identifier does not exist")  # -get.md errors
    return {"priceType": found[0]}


# --- sections ------------------------------------------------------------------------------------
@rest_method("catalog.section.add")
def section_add(ctx: Ctx, params: dict) -> dict:
    fields = _fields(params)
    _required(fields, "iblockId", "name")
    _check_iblock(fields["iblockId"])
    section = {n: None for n in SECTION_FIELDS}
    section.update({"active": "Y", "sort": 500, "descriptionType": "text"})
    section.update({n: _typed(SECTION_KINDS, n, v) for n, v in fields.items() if n in SECTION_FIELDS and n != "id"})
    if section["iblockSectionId"] and section["iblockSectionId"] not in ctx.world.data["sections"]:
        raise _error("200040300020", "Parent section is not found")
    section["id"] = ctx.world.next_id("section")
    ctx.world.data["sections"][section["id"]] = section
    return {"section": dict(section)}


@rest_method("catalog.section.list")
def section_list(ctx: Ctx, params: dict) -> ListResult:
    chunk, total, nxt = _list(list(ctx.world.data["sections"].values()), params, SECTION_KINDS, SECTION_FIELDS, True)
    return ListResult({"sections": chunk}, total=total, next=nxt)


# --- products ------------------------------------------------------------------------------------
def _product_values(world: Bitrix24World, fields: dict) -> dict:
    out = {}
    for name, value in fields.items():
        if name not in PRODUCT_FIELDS or name in (
            "id",
            "iblockId",
            "createdBy",
            "modifiedBy",
            "dateCreate",
            "timestampX",
            "type",
        ):
            continue
        if name in ("active", "vatIncluded"):
            try:
                out[name] = to_yn(value)
            except ValueError:
                raise _error("100", f"Invalid value {value!r} for field {name}") from None
        else:
            out[name] = _typed(PRODUCT_KINDS, name, value)
    if out.get("iblockSectionId") and out["iblockSectionId"] not in world.data["sections"]:
        raise _error("200040300020", f"Section {out['iblockSectionId']} is not found")
    if out.get("vatId") and out["vatId"] not in {v["id"] for v in VATS}:
        raise _error("200040300020", f"VAT rate {out['vatId']} is not found")
    if "name" in out and not out["name"]:
        raise _error("200040300010", "Required fields: name")
    return out


def _product(world: Bitrix24World, product_id: Any) -> dict:
    try:
        product = world.data["products"].get(to_int(product_id))
    except ValueError:
        product = None
    if product is None:
        raise _error("200040300040", "Product is not exists")
    return product


@rest_method("catalog.product.add", admin=True)
def product_add(ctx: Ctx, params: dict) -> dict:
    fields = _fields(params)
    _required(fields, "iblockId", "name")
    _check_iblock(fields["iblockId"])
    product = {n: None for n in PRODUCT_FIELDS}
    stamp = now_iso()
    product.update(
        {
            "iblockId": IBLOCK_ID,
            "active": "Y",
            "sort": 500,
            "vatIncluded": "N",
            "measure": 5,
            "type": 1,
            "createdBy": ctx.user.id,
            "modifiedBy": ctx.user.id,
            "dateCreate": stamp,
            "timestampX": stamp,
        }
    )
    product.update(_product_values(ctx.world, fields))
    product["id"] = ctx.world.next_id("product")
    ctx.world.data["products"][product["id"]] = product
    # catalog/product/catalog-product-add.md: add and update answer {"element": …}; only get says "product".
    return {"element": dict(product)}


@rest_method("catalog.product.get")
def product_get(ctx: Ctx, params: dict) -> dict:
    return {"product": dict(_product(ctx.world, params.get("id")))}


@rest_method("catalog.product.update", admin=True)
def product_update(ctx: Ctx, params: dict) -> dict:
    product = _product(ctx.world, params.get("id"))
    product.update(_product_values(ctx.world, _fields(params)))
    product.update({"modifiedBy": ctx.user.id, "timestampX": now_iso()})
    return {"element": dict(product)}  # catalog/product/catalog-product-update.md


@rest_method("catalog.product.delete", admin=True)
def product_delete(ctx: Ctx, params: dict) -> bool:
    product = _product(ctx.world, params.get("id"))
    del ctx.world.data["products"][product["id"]]
    for price_id in [p["id"] for p in ctx.world.data["prices"].values() if p["productId"] == product["id"]]:
        del ctx.world.data["prices"][price_id]
    return True


@rest_method("catalog.product.list")
def product_list(ctx: Ctx, params: dict) -> ListResult:
    select = params.get("select")
    if not isinstance(select, list) or "id" not in select or "iblockId" not in select:
        raise _error("200040300010", "Required select fields: id, iblockId")
    chunk, total, nxt = _list(list(ctx.world.data["products"].values()), params, PRODUCT_KINDS, PRODUCT_FIELDS, True)
    return ListResult({"products": chunk}, total=total, next=nxt)


# --- prices --------------------------------------------------------------------------------------
def _price_values(world: Bitrix24World, fields: dict) -> dict:
    out = {
        n: _typed(PRICE_KINDS, n, v) for n, v in fields.items() if n in PRICE_FIELDS and n not in ("id", "timestampX")
    }
    if "productId" in out:
        _product(world, out["productId"])
    if "catalogGroupId" in out and out["catalogGroupId"] != BASE_PRICE_TYPE:
        raise _error("200040300020", f"Price type {out['catalogGroupId']} is not found")
    if "currency" in out and not currency.exists(world, out["currency"] or ""):
        raise _error("200040300020", f"Currency {out['currency']} is not found")
    return out


@rest_method("catalog.price.add", admin=True)
def price_add(ctx: Ctx, params: dict) -> dict:
    fields = _fields(params)
    _required(fields, "productId", "catalogGroupId", "price", "currency")
    price = {n: None for n in PRICE_FIELDS}
    price.update(_price_values(ctx.world, fields))
    price.update({"id": ctx.world.next_id("price"), "timestampX": now_iso()})
    ctx.world.data["prices"][price["id"]] = price
    return {"price": dict(price)}


@rest_method("catalog.price.update", admin=True)
def price_update(ctx: Ctx, params: dict) -> dict:
    try:
        price = ctx.world.data["prices"].get(to_int(params.get("id")))
    except ValueError:
        price = None
    if price is None:
        raise _error("200040300040", "Price is not exists")
    price.update(_price_values(ctx.world, _fields(params)))
    price["timestampX"] = now_iso()
    return {"price": dict(price)}


@rest_method("catalog.price.list")
def price_list(ctx: Ctx, params: dict) -> ListResult:
    chunk, total, nxt = _list(list(ctx.world.data["prices"].values()), params, PRICE_KINDS, PRICE_FIELDS, False)
    return ListResult({"prices": chunk}, total=total, next=nxt)


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    return {
        "products": [dict(p) for p in world.data["products"].values()],
        "sections": [dict(s) for s in world.data["sections"].values()],
        "prices": [dict(p) for p in world.data["prices"].values()],
    }
