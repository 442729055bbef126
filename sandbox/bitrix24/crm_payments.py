"""Payments on new invoices (crm.item.payment.*), minimal: enough to record "paid in Xero".

crm.item.payment.add takes only entityTypeId/entityId and makes an **empty** payment (sum 0):
api-reference/crm/universal/payment/crm-item-payment-add.md has no other parameter, and the
documented crm.item.payment.list answer shows payments of `"sum":0`. Its line items come from
crm.item.payment.product.add (paymentId, rowId, quantity; products-in-payment/), and the sum is
what those rows cost (price incl. tax x quantity). Paying it does not move the invoice's stage —
on a real portal that is up to automation rules, so a connector must move the stage itself.
"""

from __future__ import annotations

from sandbox.bitrix24 import crm_items
from sandbox.bitrix24.crm_productrows import rows_of
from sandbox.bitrix24.values import money, now_iso, to_float, to_int, to_yn
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, on_reset, on_snapshot, rest_method

PUBLIC = ("id", "accountNumber", "paid", "datePaid", "empPaidId", "paySystemId", "sum", "currency", "paySystemName")


@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["payments"] = {}


def _forget(world: Bitrix24World, invoice_id: int) -> None:
    for payment_id in [p["id"] for p in world.data["payments"].values() if p["entityId"] == invoice_id]:
        del world.data["payments"][payment_id]


crm_items.ON_DELETE.append(_forget)


def _out(payment: dict) -> dict:
    return {name: payment[name] for name in PUBLIC}


def _payment(ctx: Ctx, params: dict, action: str) -> tuple[dict, dict]:
    try:
        payment = ctx.world.data["payments"].get(to_int(params.get("id")))
    except ValueError:
        payment = None
    if payment is None:
        raise B24Error(400, "NOT_FOUND", "Payment not found")
    return payment, crm_items.invoice_for(ctx, payment["entityId"], action)


@rest_method("crm.item.payment.add")
def payment_add(ctx: Ctx, params: dict) -> int:
    crm_items.check_entity_type(params)
    invoice = crm_items.invoice_for(ctx, params.get("entityId"), "update")
    world = ctx.world
    number = 1 + sum(1 for p in world.data["payments"].values() if p["entityId"] == invoice["id"])
    payment = {
        "id": world.next_id("payment"),
        "entityId": invoice["id"],
        "accountNumber": f"{invoice['accountNumber']}/{number}",
        "paid": "N",
        "datePaid": None,
        "empPaidId": None,
        "paySystemId": 1,
        "sum": 0,  # empty until products are added (crm-item-payment-list.md shows "sum":0)
        "currency": invoice["currencyId"],
        "paySystemName": "Cash",
        "products": [],  # {"id", "paymentId", "rowId", "quantity"}
    }
    world.data["payments"][payment["id"]] = payment
    return payment["id"]


def _resum(world: Bitrix24World, payment: dict) -> None:
    rows = {r["id"]: r for r in rows_of(world, payment["entityId"])}
    total = sum(rows[p["rowId"]]["priceBrutto"] * p["quantity"] for p in payment["products"] if p["rowId"] in rows)
    payment["sum"] = money(total)


@rest_method("crm.item.payment.product.add")
def payment_product_add(ctx: Ctx, params: dict) -> int:
    """products-in-payment/crm-item-payment-product-add.md: paymentId, rowId, quantity -> the id."""
    payment, invoice = _payment(ctx, {"id": params.get("paymentId")}, "update")
    try:
        row_id = to_int(params.get("rowId"))
        quantity = to_float(params.get("quantity"))
    except ValueError:
        raise B24Error(400, "100", "Required fields are not provided: rowId, quantity") from None
    if row_id not in {r["id"] for r in rows_of(ctx.world, invoice["id"])}:
        raise B24Error(400, "0", f"Product row {row_id} is not found")
    item = {"id": ctx.world.next_id("payment_product"), "paymentId": payment["id"], "rowId": row_id}
    item["quantity"] = int(quantity) if quantity.is_integer() else quantity
    payment["products"].append(item)
    _resum(ctx.world, payment)
    return item["id"]


@rest_method("crm.item.payment.product.list")
def payment_product_list(ctx: Ctx, params: dict) -> list[dict]:
    payment, _ = _payment(ctx, {"id": params.get("paymentId")}, "view")
    return [dict(p) for p in payment["products"]]


@rest_method("crm.item.payment.list")
def payment_list(ctx: Ctx, params: dict) -> list[dict]:
    crm_items.check_entity_type(params)
    invoice = crm_items.invoice_for(ctx, params.get("entityId"), "view")
    return [_out(p) for p in ctx.world.data["payments"].values() if p["entityId"] == invoice["id"]]


@rest_method("crm.item.payment.get")
def payment_get(ctx: Ctx, params: dict) -> dict:
    payment, _ = _payment(ctx, params, "view")
    return _out(payment)


def _set_paid(ctx: Ctx, params: dict, paid: bool) -> bool:
    payment, _ = _payment(ctx, params, "update")
    payment["paid"] = to_yn(paid)
    payment["datePaid"] = now_iso() if paid else None
    payment["empPaidId"] = ctx.user.id if paid else None
    return True


@rest_method("crm.item.payment.pay")
def payment_pay(ctx: Ctx, params: dict) -> bool:
    return _set_paid(ctx, params, True)


@rest_method("crm.item.payment.unpay")
def payment_unpay(ctx: Ctx, params: dict) -> bool:
    return _set_paid(ctx, params, False)


@rest_method("crm.item.payment.delete")
def payment_delete(ctx: Ctx, params: dict) -> bool:
    payment, _ = _payment(ctx, params, "update")
    del ctx.world.data["payments"][payment["id"]]
    return True


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    return {"payments": [{**_out(p), "entityId": p["entityId"]} for p in world.data["payments"].values()]}
