"""Payments on new invoices (crm.item.payment.*), minimal: enough to record "paid in Xero".

A payment covers the invoice's product rows at the time it is added; its sum defaults to the
invoice's amount. Paying it does not move the invoice's stage — on a real portal that is up to
automation rules, so a connector must move the stage itself.
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
    fields = params.get("fields") if isinstance(params.get("fields"), dict) else {}
    try:
        amount = money(to_float(fields["sum"])) if fields.get("sum") not in (None, "") else invoice["opportunity"]
    except ValueError:
        raise B24Error(400, "INVALID_ARG_VALUE", f"Invalid payment sum {fields.get('sum')!r}") from None
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
        "sum": amount,
        "currency": invoice["currencyId"],
        "paySystemName": "Cash",
        "rowIds": [r["id"] for r in rows_of(world, invoice["id"])],
    }
    world.data["payments"][payment["id"]] = payment
    return payment["id"]


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
