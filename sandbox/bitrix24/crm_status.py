"""Invoice pipelines (crm.category.*) and the CRM directories (crm.status.*) with invoice stages.

The default invoice pipeline has id 3, not 1, so a client that hard-codes "DT31_1:N" fails here as
it would on many real portals. Stages carry SEMANTICS null / "S" / "F"; there is no EXTRA block for
invoices (docs §1.5). Classic directory rows are strings, as the PHP API returns them.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from sandbox.bitrix24.filters import INT, STR, compile_filter, sort_rows
from sandbox.bitrix24.values import dict_param, int_param, to_int, to_yn
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, ListResult, on_reset, on_snapshot, rest_method

INVOICE_TYPE = 31  # smart invoices (crm.item.*); crm_items.py uses this one
OLD_INVOICE_TYPE = 5  # old invoices (crm.invoice.*)
DEFAULT_INVOICE_CATEGORY = 3

# (code, name, sort, semantics, color): the legacy invoice statuses new invoices start with.
DEFAULT_STAGES = (
    ("N", "New", 10, None, "#39A8EF"),
    ("S", "Sent to client", 20, None, "#2FC6F6"),
    ("P", "Paid", 30, "S", "#7BD500"),
    ("D", "Declined", 40, "F", "#FF5752"),
)

# Other directories a connector meets (company types for Xero contacts, sources).
OTHER_DIRECTORIES = {
    "COMPANY_TYPE": (
        "Company type",
        [("CUSTOMER", "Client"), ("SUPPLIER", "Supplier"), ("PARTNER", "Partner"), ("OTHER", "Other")],
    ),
    "CONTACT_TYPE": (
        "Contact type",
        [("CLIENT", "Clients"), ("SUPPLIER", "Suppliers"), ("PARTNER", "Partners"), ("OTHER", "Other")],
    ),
    "SOURCE": ("Source", [("CALL", "Call"), ("EMAIL", "E-Mail"), ("WEB", "Website"), ("OTHER", "Other")]),
}

STATUS_KINDS = {
    "ID": INT,
    "ENTITY_ID": STR,
    "STATUS_ID": STR,
    "NAME": STR,
    "SORT": INT,
    "SYSTEM": STR,
    "CATEGORY_ID": INT,
    "SEMANTICS": STR,
}


def stage_entity(category_id: int) -> str:
    return f"SMART_INVOICE_STAGE_{category_id}"


def stage_prefix(category_id: int) -> str:
    return f"DT31_{category_id}"


# --- state --------------------------------------------------------------------------------------
@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["categories"] = {}  # id -> category (camelCase, as crm.category.* returns it)
    world.data["statuses"] = {}  # ID (int) -> directory row
    world._next_ids["category"] = DEFAULT_INVOICE_CATEGORY - 1
    add_category(world, "Invoices", is_default=True)
    for entity_id, (_, values) in OTHER_DIRECTORIES.items():
        for sort, (code, name) in enumerate(values, start=1):
            _add_status(world, entity_id, code, name, sort * 10, system="Y")


def add_category(world: Bitrix24World, name: str, is_default: bool = False, sort: int = 500) -> dict:
    category_id = world.next_id("category")
    category = {
        "id": category_id,
        "name": name,
        "sort": sort,
        "entityTypeId": INVOICE_TYPE,
        "isDefault": "Y" if is_default else "N",
        "originId": None,
        "originatorId": None,
    }
    world.data["categories"][category_id] = category
    for code, stage_name, stage_sort, semantics, color in DEFAULT_STAGES:
        _add_status(
            world,
            stage_entity(category_id),
            f"{stage_prefix(category_id)}:{code}",
            stage_name,
            stage_sort,
            system="Y",
            semantics=semantics,
            color=color,
            category_id=category_id,
        )
    return category


def _add_status(
    world, entity_id, status_id, name, sort, *, system="N", semantics=None, color="", category_id=None
) -> dict:
    row = {
        "ID": str(world.next_id("status")),
        "ENTITY_ID": entity_id,
        "STATUS_ID": status_id,
        "NAME": name,
        "NAME_INIT": name if system == "Y" else "",
        "SORT": str(sort),
        "SYSTEM": system,
        "CATEGORY_ID": None if category_id is None else str(category_id),
        "COLOR": color,
        "SEMANTICS": semantics,
    }
    world.data["statuses"][int(row["ID"])] = row
    return row


def default_category(world: Bitrix24World) -> dict:
    return next(c for c in world.data["categories"].values() if c["isDefault"] == "Y")


def stages(world: Bitrix24World, category_id: int) -> list[dict]:
    """The pipeline's stages in order: by SORT, as the kanban shows them."""
    entity = stage_entity(category_id)
    rows = [r for r in world.data["statuses"].values() if r["ENTITY_ID"] == entity]
    return sorted(rows, key=lambda r: (int(r["SORT"]), int(r["ID"])))


def stage_ids(world: Bitrix24World, category_id: int) -> set[str]:
    return {r["STATUS_ID"] for r in stages(world, category_id)}


def _category_id(params: dict) -> None:
    entity_type = int_param(params, "entityTypeId")
    if entity_type != INVOICE_TYPE:
        raise B24Error(400, "NOT_FOUND", "Smart process not found")


# --- crm.category.* -------------------------------------------------------------------------------
@rest_method("crm.category.list")
def category_list(ctx: Ctx, params: dict) -> ListResult:
    _category_id(params)
    rows = sorted(ctx.world.data["categories"].values(), key=lambda c: (c["sort"], c["id"]))
    return ListResult({"categories": [dict(c) for c in rows]}, total=len(rows))


@rest_method("crm.category.get")
def category_get(ctx: Ctx, params: dict) -> dict:
    _category_id(params)
    category = ctx.world.data["categories"].get(_as_int(params.get("id")))
    if category is None:
        raise B24Error(400, "NOT_FOUND", "Category not found")
    return {"category": dict(category)}


@rest_method("crm.category.add", admin=True)
def category_add(ctx: Ctx, params: dict) -> dict:
    _category_id(params)
    fields = dict_param(params, "fields", required=True)
    name = str(fields.get("name") or "").strip()
    if not name:
        raise B24Error(400, "CRM_FIELD_ERROR_REQUIRED", "Field 'name' is required")
    sort = _as_int(fields.get("sort")) or 500
    return {"category": dict(add_category(ctx.world, name, sort=sort))}


def _as_int(value: Any) -> int | None:
    try:
        return to_int(value)
    except ValueError:
        return None


# --- crm.status.* -------------------------------------------------------------------------------
@rest_method("crm.status.entity.types")
def entity_types(ctx: Ctx, params: dict) -> list[dict]:
    out = [{"ID": entity_id, "NAME": name, "SEMANTIC_INFO": []} for entity_id, (name, _) in OTHER_DIRECTORIES.items()]
    if any(r["ENTITY_ID"] == "INVOICE_STATUS" for r in ctx.world.data["statuses"].values()):
        out.append({"ID": "INVOICE_STATUS", "NAME": "Invoice status", "SEMANTIC_INFO": []})
    for category in sorted(ctx.world.data["categories"].values(), key=lambda c: c["id"]):
        out.append(
            {
                "ID": stage_entity(category["id"]),
                "NAME": "Invoice stages" + ("" if category["isDefault"] == "Y" else f" ({category['name']})"),
                "PARENT_ID": None,
                "SEMANTIC_INFO": [],
                "PREFIX": stage_prefix(category["id"]),
                "FIELD_ATTRIBUTE_SCOPE": stage_prefix(category["id"]),
                "ENTITY_TYPE_ID": INVOICE_TYPE,
                "IS_ENABLED": True,
                "CATEGORY_ID": category["id"],
            }
        )
    return out


@rest_method("crm.status.list")
def status_list(ctx: Ctx, params: dict) -> ListResult:
    flt = params.get("filter") or {}
    if isinstance(flt, dict) and isinstance(flt.get("ENTITY_ID"), (list, dict)):
        raise B24Error(400, "", "ENTITY_ID must be a string: one directory per call")
    match = compile_filter(flt, STATUS_KINDS, allow_logic=False, unknown="ignore")
    rows = [r for r in ctx.world.data["statuses"].values() if match(r)]
    order = params.get("order") or {"SORT": "ASC"}
    rows = sort_rows(rows, order, STATUS_KINDS, unknown="ignore")
    return ListResult([dict(r) for r in rows], total=len(rows))


@rest_method("crm.status.get")
def status_get(ctx: Ctx, params: dict) -> dict:
    row = ctx.world.data["statuses"].get(_as_int(params.get("id")))
    if row is None:
        raise B24Error(400, "", "Not found")
    return dict(row)


def _invoice_category_of(world, entity_id: str) -> int | None:
    for category_id in world.data["categories"]:
        if stage_entity(category_id) == entity_id:
            return category_id
    return None


@rest_method("crm.status.add", admin=True)
def status_add(ctx: Ctx, params: dict) -> int:
    world = ctx.world
    fields = dict_param(params, "fields", required=True)
    entity_id = str(fields.get("ENTITY_ID") or "")
    name = str(fields.get("NAME") or "").strip()
    if not entity_id or not name:
        raise B24Error(400, "", "Required fields: ENTITY_ID, NAME")
    category_id = _invoice_category_of(world, entity_id)
    known = {r["ENTITY_ID"] for r in world.data["statuses"].values()}
    if category_id is None and entity_id not in known:
        raise B24Error(400, "", f"Entity ID '{entity_id}' is not supported")
    status_id = str(fields.get("STATUS_ID") or "").strip()
    semantics = fields.get("SEMANTICS") or None
    if semantics not in (None, "S", "F"):
        raise B24Error(400, "", "SEMANTICS must be 'S', 'F' or empty")
    if category_id is not None:
        prefix = stage_prefix(category_id) + ":"
        if not status_id:
            status_id = "UC_" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(6))
        if not status_id.startswith(prefix):
            status_id = prefix + status_id  # the prefix is added automatically for pipelines
        if semantics == "S" and any(r["SEMANTICS"] == "S" for r in stages(world, category_id)):
            raise B24Error(400, "", "A pipeline has exactly one success stage")
    elif not status_id:
        raise B24Error(400, "", "Required fields: STATUS_ID")
    if len(status_id) > 50:
        raise B24Error(400, "", "STATUS_ID is longer than 50 characters")
    if any(r["ENTITY_ID"] == entity_id and r["STATUS_ID"] == status_id for r in world.data["statuses"].values()):
        raise B24Error(400, "", f"Status '{status_id}' already exists")
    sort = _as_int(fields.get("SORT")) or 10
    row = _add_status(
        world,
        entity_id,
        status_id,
        name,
        sort,
        semantics=semantics,
        color=str(fields.get("COLOR") or ""),
        category_id=category_id,
    )
    return int(row["ID"])


@rest_method("crm.status.update", admin=True)
def status_update(ctx: Ctx, params: dict) -> bool:
    row = ctx.world.data["statuses"].get(_as_int(params.get("id")))
    if row is None:
        raise B24Error(400, "", "Not found")
    fields = dict_param(params, "fields", required=True)
    if "NAME" in fields and str(fields["NAME"]).strip():
        row["NAME"] = str(fields["NAME"]).strip()
    if "SORT" in fields and _as_int(fields["SORT"]) is not None:
        row["SORT"] = str(_as_int(fields["SORT"]))
    if "COLOR" in fields:
        row["COLOR"] = str(fields["COLOR"] or "")
    return True


@rest_method("crm.status.delete", admin=True)
def status_delete(ctx: Ctx, params: dict) -> bool:
    world = ctx.world
    status_key = _as_int(params.get("id"))
    row = world.data["statuses"].get(status_key)
    if row is None:
        raise B24Error(400, "", "Not found")
    extra = params.get("params") if isinstance(params.get("params"), dict) else {}
    try:
        forced = to_yn(extra.get("FORCED", "N")) == "Y"
    except ValueError:
        forced = False
    if row["SYSTEM"] == "Y" and not forced:
        raise B24Error(400, "", "Can't delete system status")
    invoices = world.data.get("invoices", {}).values()
    if row["ENTITY_ID"].startswith("SMART_INVOICE_STAGE_") and any(i["stageId"] == row["STATUS_ID"] for i in invoices):
        raise B24Error(400, "", "There are items in this stage; move them first")
    del world.data["statuses"][status_key]
    return True


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    return {
        "categories": [dict(c) for c in world.data["categories"].values()],
        "stages": [
            dict(r) for r in world.data["statuses"].values() if r["ENTITY_ID"].startswith("SMART_INVOICE_STAGE_")
        ],
    }
