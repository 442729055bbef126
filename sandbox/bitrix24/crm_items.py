"""New invoices through the universal crm.item.* methods (entityTypeId 31, camelCase fields).

Items are stored as the dict crm.item.get returns, in id order, so the default `id ASC` list needs
no sort and a page costs one pass over the portal's invoices. Users whose invoice permission is
"own" see only invoices assigned to them: lists leave the rest out without a word, get/update/
delete answer 400 ACCESS_DENIED (docs §7).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sandbox.bitrix24 import crm_status, currency, notify
from sandbox.bitrix24.filters import DATETIME, FLAG, FLOAT, INT, STR, compile_filter, select_fields, sort_rows
from sandbox.bitrix24.values import (
    date_iso,
    dict_param,
    int_param,
    money,
    now_iso,
    to_date_iso,
    to_float,
    to_int,
    to_yn,
    today,
)
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, ListResult, User, on_reset, page_of, rest_method

INVOICE_TYPE = crm_status.INVOICE_TYPE
OLD_INVOICE_TYPE = crm_status.OLD_INVOICE_TYPE

# name, crm.item.fields type, filter kind, title, read-only, immutable, multiple
FIELDS: list[tuple[str, str, str, str, bool, bool, bool]] = [
    ("id", "integer", INT, "ID", True, False, False),
    ("xmlId", "string", STR, "External ID", False, False, False),
    ("title", "string", STR, "Name", False, False, False),
    ("createdBy", "user", INT, "Created by", True, False, False),
    ("updatedBy", "user", INT, "Updated by", True, False, False),
    ("movedBy", "user", INT, "Moved by", True, False, False),
    ("createdTime", "datetime", DATETIME, "Created on", True, False, False),
    ("updatedTime", "datetime", DATETIME, "Updated on", True, False, False),
    ("movedTime", "datetime", DATETIME, "Moved on", True, False, False),
    ("categoryId", "crm_category", INT, "Pipeline", False, True, False),
    ("opened", "boolean", FLAG, "Available to everyone", False, False, False),
    ("previousStageId", "crm_status", STR, "Previous stage", True, False, False),
    ("begindate", "date", DATETIME, "Invoice date", False, False, False),
    ("closedate", "date", DATETIME, "Due date", False, False, False),
    ("companyId", "crm_company", INT, "Company", False, False, False),
    ("contactId", "crm_contact", INT, "Contact", False, False, False),
    ("opportunity", "double", FLOAT, "Amount", False, False, False),
    ("isManualOpportunity", "boolean", FLAG, "Manual amount calculation", False, False, False),
    ("taxValue", "double", FLOAT, "Tax amount", False, False, False),
    ("currencyId", "crm_currency", STR, "Currency", False, False, False),
    ("mycompanyId", "crm_company", INT, "Your company details", False, False, False),
    ("sourceId", "crm_status", STR, "Source", False, False, False),
    ("sourceDescription", "text", STR, "Source information", False, False, False),
    ("accountNumber", "string", STR, "Invoice #", True, False, False),
    ("comments", "text", STR, "Comment", False, False, False),
    ("stageId", "crm_status", STR, "Stage", False, False, False),
    ("assignedById", "user", INT, "Responsible person", False, False, False),
    ("observers", "user", INT + "[]", "Observers", False, False, True),
    ("contactIds", "crm_contact", INT + "[]", "Contacts", False, False, True),
    ("entityTypeId", "integer", INT, "Entity type", True, False, False),
    ("parentId2", "crm_entity", INT, "Deal", False, False, False),
    ("parentId7", "crm_entity", INT, "Estimate", False, False, False),
]
FIELD_NAMES = [f[0] for f in FIELDS]
KINDS = {f[0]: f[2] for f in FIELDS}
_WRITABLE = {f[0] for f in FIELDS if not f[4]}

# Hooks for the modules that hang data off an invoice (rows, payments) — they import this one.
ON_DELETE: list[Callable[[Bitrix24World, int], None]] = []


def row_totals(world: Bitrix24World, item: dict) -> tuple[float, float] | None:
    """(amount, tax) from the invoice's product rows, None without rows; replaced by crm_productrows."""
    return None


@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["invoices"] = {}


# --- shared with the product-row and payment modules --------------------------------------------
def check_entity_type(params: dict, key: str = "entityTypeId") -> None:
    try:
        entity_type = to_int(params.get(key))
    except ValueError:
        entity_type = None
    if entity_type == OLD_INVOICE_TYPE:
        raise B24Error(400, "ENTITY_TYPE_NOT_SUPPORTED", "Entity type 5 (old invoices) is not supported by crm.item")
    if entity_type != INVOICE_TYPE:
        raise B24Error(400, "NOT_FOUND", "Smart process not found")


def can_see(user: User, item: dict) -> bool:
    return user.admin or user.invoices != "own" or item["assignedById"] == user.id


def invoice_for(ctx: Ctx, invoice_id: Any, action: str = "view") -> dict:
    """The invoice, or Bitrix24's NOT_FOUND / ACCESS_DENIED for this user and action."""
    try:
        item = ctx.world.data["invoices"].get(to_int(invoice_id))
    except ValueError:
        item = None
    if item is None:
        raise B24Error(400, "NOT_FOUND", "Item not found")
    if not can_see(ctx.user, item):
        raise B24Error(400, "ACCESS_DENIED", f"You do not have permission to {action} this item")
    return item


def touch(item: dict, user: User | None) -> None:
    item["updatedTime"] = now_iso()
    if user is not None:
        item["updatedBy"] = user.id


def apply_row_totals(world: Bitrix24World, item: dict) -> bool:
    """With automatic amounts (isManualOpportunity N), the invoice's amount and tax follow its rows."""
    if item["isManualOpportunity"] != "N":
        return False
    totals = row_totals(world, item)
    if totals is None:
        return False
    opportunity, tax = totals
    changed = (item["opportunity"], item["taxValue"]) != (opportunity, tax)
    item["opportunity"], item["taxValue"] = opportunity, tax
    return changed


# --- writes --------------------------------------------------------------------------------------
def _not_valid(name: str, value: Any = None) -> B24Error:
    title = next((f[3] for f in FIELDS if f[0] == name), name)
    return B24Error(400, "CRM_FIELD_ERROR_VALUE_NOT_VALID", f'Invalid value for field "{title}" ({name}): {value!r}')


def _coerce(world: Bitrix24World, name: str, value: Any) -> Any:
    kind = KINDS[name]
    multiple = kind.endswith("[]")
    try:
        if multiple:
            if isinstance(value, dict):
                value = list(value.values())
            if value in (None, ""):
                return []
            if not isinstance(value, list):
                raise B24Error(400, "100", f'Value of a multiple field "{name}" must be an array')
            return [to_int(v) for v in value]
        if name in ("begindate", "closedate"):
            return to_date_iso(value)
        if kind == FLAG:
            return to_yn(value)
        if value is None or value == "":
            return {INT: 0, FLOAT: 0.0}.get(kind)
        if kind == INT:
            number = to_int(value)
            if number < 0:
                raise ValueError(value)
            return number
        if kind == FLOAT:
            return money(to_float(value))
        if isinstance(value, (dict, list)):
            raise ValueError(value)
        return str(value)
    except ValueError:
        raise _not_valid(name, value) from None


def _validate(world: Bitrix24World, item: dict, changes: dict) -> None:
    if "currencyId" in changes and not currency.exists(world, changes["currencyId"] or ""):
        raise _not_valid("currencyId", changes["currencyId"])
    for name in ("assignedById",):
        if name in changes and changes[name] not in world.users:
            raise _not_valid(name, changes[name])
    for user_id in changes.get("observers", []):
        if user_id not in world.users:
            raise _not_valid("observers", user_id)
    category_id = changes.get("categoryId", item.get("categoryId"))
    if category_id not in world.data["categories"]:
        raise _not_valid("categoryId", category_id)
    if "stageId" in changes and changes["stageId"] not in crm_status.stage_ids(world, category_id):
        raise B24Error(
            400,
            "CRM_FIELD_ERROR_VALUE_NOT_VALID",
            f'Stage "{changes["stageId"]}" does not belong to pipeline {category_id} '
            f"(stages: {', '.join(sorted(crm_status.stage_ids(world, category_id)))})",
        )


def _changes(world: Bitrix24World, item: dict, fields: dict, *, creating: bool) -> dict:
    changes = {}
    for name, value in fields.items():
        if name not in _WRITABLE or (name == "categoryId" and not creating):
            continue  # unknown and read-only keys are ignored, as Bitrix24 does
        changes[name] = _coerce(world, name, value)
    # contactId is the first of contactIds; writing either keeps the two in step.
    if "contactIds" in changes:
        changes["contactId"] = changes["contactIds"][0] if changes["contactIds"] else 0
    elif "contactId" in changes:
        changes["contactIds"] = [changes["contactId"]] if changes["contactId"] else []
    _validate(world, item, changes)
    return changes


def _stage_moved(item: dict, new_stage: str, user: User) -> None:
    if new_stage != item.get("stageId"):
        item["previousStageId"] = item.get("stageId")
        item["stageId"] = new_stage
        item["movedBy"] = user.id
        item["movedTime"] = now_iso()


def _first_my_company(world: Bitrix24World) -> int:
    for company in world.data.get("companies", {}).values():
        if company.get("IS_MY_COMPANY") == "Y":
            return int(company["ID"])
    return 0


def new_invoice(world: Bitrix24World, user: User, fields: dict) -> dict:
    category_id = crm_status.default_category(world)["id"]
    stamp = now_iso()
    item: dict[str, Any] = {name: None for name in FIELD_NAMES}
    item.update(
        {
            "categoryId": category_id,
            "opened": "Y",
            "begindate": date_iso(today()),
            "closedate": date_iso(today() + timedelta(days=7)),
            "companyId": 0,
            "contactId": 0,
            "contactIds": [],
            "observers": [],
            "opportunity": 0.0,
            "isManualOpportunity": "N",
            "taxValue": 0.0,
            "currencyId": currency.base_currency(world),
            "mycompanyId": _first_my_company(world),
            "assignedById": user.id,
            "entityTypeId": INVOICE_TYPE,
            "parentId2": 0,
            "parentId7": 0,
            "comments": "",
            "createdBy": user.id,
            "updatedBy": user.id,
            "movedBy": user.id,
            "createdTime": stamp,
            "updatedTime": stamp,
            "movedTime": stamp,
        }
    )
    changes = _changes(world, item, fields, creating=True)
    category_id = changes.get("categoryId", category_id)
    first_stage = crm_status.stages(world, category_id)[0]["STATUS_ID"]
    item.update(changes)
    item["stageId"] = changes.get("stageId", first_stage)
    item["id"] = world.next_id("invoice")
    item["title"] = item["title"] or f"Invoice #{item['id']}"
    item["accountNumber"] = f"INV-{item['id']}"
    world.data["invoices"][item["id"]] = item
    return item


def project(item: dict, names: list[str]) -> dict:
    out = {}
    for name in names:
        value = item[name]
        out[name] = list(value) if isinstance(value, list) else value
    return out


# --- crm.item.* ----------------------------------------------------------------------------------
def _upper_name(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).upper()


@rest_method("crm.item.fields")
def item_fields(ctx: Ctx, params: dict) -> dict:
    check_entity_type(params)
    return {
        "fields": {
            name: {
                "type": b24type,
                "isRequired": False,
                "isReadOnly": readonly,
                "isImmutable": immutable,
                "isMultiple": multiple,
                "isDynamic": False,
                "title": title,
                "upperName": _upper_name(name),
            }
            for name, b24type, _, title, readonly, immutable, multiple in FIELDS
        }
    }


@rest_method("crm.item.add")
def item_add(ctx: Ctx, params: dict) -> dict:
    check_entity_type(params)
    fields = dict_param(params, "fields", required=True)
    item = new_invoice(ctx.world, ctx.user, fields)
    notify.invoice_event(ctx.world, "ADD", item["id"], ctx.user)
    return {"item": project(item, FIELD_NAMES)}


@rest_method("crm.item.get")
def item_get(ctx: Ctx, params: dict) -> dict:
    check_entity_type(params)
    item = invoice_for(ctx, int_param(params, "id"), "view")
    return {"item": project(item, FIELD_NAMES)}


@rest_method("crm.item.update")
def item_update(ctx: Ctx, params: dict) -> dict:
    check_entity_type(params)
    item = invoice_for(ctx, int_param(params, "id"), "update")
    fields = dict_param(params, "fields")
    changes = _changes(ctx.world, item, fields, creating=False)
    new_stage = changes.pop("stageId", None)
    item.update(changes)
    if new_stage is not None:
        _stage_moved(item, new_stage, ctx.user)
    if not item["title"]:
        item["title"] = f"Invoice #{item['id']}"
    apply_row_totals(ctx.world, item)  # a written amount does not stick while rows drive it
    touch(item, ctx.user)
    notify.invoice_event(ctx.world, "UPDATE", item["id"], ctx.user)
    return {"item": project(item, FIELD_NAMES)}


@rest_method("crm.item.delete")
def item_delete(ctx: Ctx, params: dict) -> list:
    check_entity_type(params)
    item = invoice_for(ctx, int_param(params, "id"), "delete")
    del ctx.world.data["invoices"][item["id"]]
    for hook in ON_DELETE:
        hook(ctx.world, item["id"])
    notify.invoice_event(ctx.world, "DELETE", item["id"], ctx.user)
    return []


@rest_method("crm.item.list")
def item_list(ctx: Ctx, params: dict) -> ListResult:
    check_entity_type(params)
    match = compile_filter(params.get("filter"), KINDS)
    user = ctx.user
    rows = [item for item in ctx.world.data["invoices"].values() if can_see(user, item) and match(item)]
    rows = sort_rows(rows, params.get("order"), KINDS)
    names = select_fields(params.get("select"), FIELD_NAMES)
    chunk, total, nxt = page_of(rows, params.get("start"))
    return ListResult({"items": [project(item, names) for item in chunk]}, total=total, next=nxt)
