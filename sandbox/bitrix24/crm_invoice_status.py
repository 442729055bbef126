"""crm.invoice.status.*: the INVOICE_STATUS directory of old invoices' statuses.

Follows ../shared/spec/bitrix24/api-reference/crm/outdated/invoice-status-old/*.md. The rows are
kept with the other directories (crm_status.py), so crm.status.list {"ENTITY_ID": "INVOICE_STATUS"}
and crm.invoice.status.list answer the same rows. Custom statuses get a free one-letter STATUS_ID
(the sale module's status ids are short); system statuses cannot be deleted, nor a status in use.
"""

from __future__ import annotations

import string

from sandbox.bitrix24 import crm_status
from sandbox.bitrix24.filters import compile_filter, sort_rows
from sandbox.bitrix24.old_invoice_values import not_valid
from sandbox.bitrix24.values import classic_error, dict_param, int_param, to_int
from sandbox.bitrix24.world import Bitrix24World, Ctx, ListResult, rest_method

STATUS_ENTITY = "INVOICE_STATUS"
# (STATUS_ID, NAME, SORT, SEMANTICS): the statuses a portal with old invoices starts with.
DEFAULT_STATUSES = (
    ("N", "New", 10, None),
    ("S", "Sent to client", 20, None),
    ("P", "Paid", 130, "S"),
    ("D", "Declined", 140, "F"),
)


def statuses(world: Bitrix24World) -> list[dict]:
    rows = [r for r in world.data["statuses"].values() if r["ENTITY_ID"] == STATUS_ENTITY]
    return sorted(rows, key=lambda r: (int(r["SORT"]), int(r["ID"])))


def status_semantics(world: Bitrix24World, status_id: str) -> str | None:
    for row in statuses(world):
        if row["STATUS_ID"] == status_id:
            return row.get("SEMANTICS")
    return None


# --- crm.invoice.status.* (the INVOICE_STATUS directory) -------------------------------------------
STATUS_FIELDS = ("ID", "ENTITY_ID", "STATUS_ID", "NAME", "NAME_INIT", "SORT", "SYSTEM")


def status_out(row: dict) -> dict:
    return {name: row.get(name) for name in STATUS_FIELDS}


def _status_row(world: Bitrix24World, params: dict) -> dict:
    key = int_param(params, "id")
    row = world.data["statuses"].get(key)
    if row is None or row["ENTITY_ID"] != STATUS_ENTITY:
        raise classic_error("Not found")
    return row


@rest_method("crm.invoice.status.fields")
def status_fields(ctx: Ctx, params: dict) -> dict:
    read_only = {"ENTITY_ID", "ID", "NAME_INIT", "STATUS_ID", "SYSTEM"}
    types = {"ID": "integer", "SORT": "integer", "SYSTEM": "char"}
    return {
        name: {
            "type": types.get(name, "string"),
            "isRequired": name in ("NAME", "SORT"),
            "isReadOnly": name in read_only,
            "isImmutable": False,
            "isMultiple": False,
            "isDynamic": False,
            "title": name,
        }
        for name in STATUS_FIELDS
    }


@rest_method("crm.invoice.status.list")
def status_list(ctx: Ctx, params: dict) -> ListResult:
    match = compile_filter(params.get("filter"), crm_status.STATUS_KINDS, allow_logic=False, unknown="ignore")
    rows = [r for r in statuses(ctx.world) if match(r)]
    rows = sort_rows(rows, params.get("order") or {"SORT": "ASC"}, crm_status.STATUS_KINDS, unknown="ignore")
    return ListResult([status_out(r) for r in rows], total=len(rows))


@rest_method("crm.invoice.status.get")
def status_get(ctx: Ctx, params: dict) -> dict:
    return status_out(_status_row(ctx.world, params))


@rest_method("crm.invoice.status.add", admin=True)
def status_add(ctx: Ctx, params: dict) -> int:
    world = ctx.world
    fields = dict_param(params, "fields", required=True)
    name = str(fields.get("NAME") or "").strip()
    if not name:
        raise classic_error("Field NAME is required")
    try:
        sort = to_int(fields.get("SORT") or 0)
    except ValueError:
        raise not_valid("SORT", fields.get("SORT")) from None
    if sort <= 0:
        raise classic_error("Field SORT is required")
    taken = {r["STATUS_ID"] for r in statuses(world)}
    status_id = next((c for c in string.ascii_uppercase if c not in taken), None)
    if status_id is None:
        raise classic_error("No free status identifier is left")
    row = crm_status._add_status(world, STATUS_ENTITY, status_id, name, sort)
    return int(row["ID"])


@rest_method("crm.invoice.status.update", admin=True)
def status_update(ctx: Ctx, params: dict) -> bool:
    row = _status_row(ctx.world, params)
    fields = dict_param(params, "fields", required=True)
    if "NAME" in fields:
        name = str(fields["NAME"] or "").strip()
        if not name:
            raise classic_error("Field NAME is required")
        row["NAME"] = name
    if "SORT" in fields:
        try:
            row["SORT"] = str(to_int(fields["SORT"]))
        except ValueError:
            raise not_valid("SORT", fields["SORT"]) from None
    return True


@rest_method("crm.invoice.status.delete", admin=True)
def status_delete(ctx: Ctx, params: dict) -> bool:
    world = ctx.world
    row = _status_row(world, params)
    if row["SYSTEM"] == "Y":
        raise classic_error("Can't delete system status")
    if any(inv["STATUS_ID"] == row["STATUS_ID"] for inv in world.data["old_invoices"].values()):
        raise classic_error("There are invoices in this status; move them first")
    del world.data["statuses"][int(row["ID"])]
    return True
