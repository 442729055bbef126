"""Requisites of companies and contacts (crm.requisite.*) and their addresses (crm.address.*),
through the classic crm.* API.

Follows ../shared/spec/bitrix24/api-reference/crm/requisites/. Like companies and contacts
(crm_directory.py, which keeps their state and snapshot) every value comes back as a string and
errors carry `"error": ""`; a requisite belongs to a company (ENTITY_TYPE_ID 4) or a contact (3)
that must exist, and an address is keyed by (TYPE_ID, ENTITY_TYPE_ID, ENTITY_ID).
"""

from __future__ import annotations

from typing import Any

from sandbox.bitrix24.filters import DATETIME, INT, STR, compile_filter, select_fields, sort_rows
from sandbox.bitrix24.values import classic_error, classic_fields_param, now_iso, to_int
from sandbox.bitrix24.world import Bitrix24World, Ctx, ListResult, page_of, rest_method

# --- requisites ------------------------------------------------------------------------------------
PRESETS = [
    {
        "ID": "1",
        "ENTITY_TYPE_ID": "8",
        "COUNTRY_ID": "14",
        "NAME": "Company",
        "XML_ID": "#CRM_REQUISITE_PRESET_DEF_COMPANY#",
        "ACTIVE": "Y",
        "SORT": "500",
    },
    {
        "ID": "2",
        "ENTITY_TYPE_ID": "8",
        "COUNTRY_ID": "14",
        "NAME": "Individual",
        "XML_ID": "#CRM_REQUISITE_PRESET_DEF_PERSON#",
        "ACTIVE": "Y",
        "SORT": "510",
    },
]
REQUISITE_FIELDS = [
    "ID",
    "ENTITY_TYPE_ID",
    "ENTITY_ID",
    "PRESET_ID",
    "DATE_CREATE",
    "DATE_MODIFY",
    "CREATED_BY_ID",
    "MODIFY_BY_ID",
    "NAME",
    "CODE",
    "XML_ID",
    "ORIGINATOR_ID",
    "ACTIVE",
    "ADDRESS_ONLY",
    "SORT",
    "RQ_NAME",
    "RQ_FIRST_NAME",
    "RQ_LAST_NAME",
    "RQ_SECOND_NAME",
    "RQ_COMPANY_NAME",
    "RQ_COMPANY_FULL_NAME",
    "RQ_COMPANY_REG_DATE",
    "RQ_DIRECTOR",
    "RQ_ACCOUNTANT",
    "RQ_CONTACT",
    "RQ_EMAIL",
    "RQ_PHONE",
    "RQ_FAX",
    "RQ_INN",
    "RQ_VAT_ID",
    "RQ_VAT_PAYER",
    "RQ_REG_NUMBER",
]
REQUISITE_KINDS = {
    n: INT
    if n in ("ID", "ENTITY_TYPE_ID", "ENTITY_ID", "PRESET_ID", "SORT")
    else DATETIME
    if n.startswith("DATE_")
    else STR
    for n in REQUISITE_FIELDS
}


def _owner_exists(world: Bitrix24World, entity_type: int, entity_id: int) -> bool:
    store = {3: world.data["contacts"], 4: world.data["companies"]}.get(entity_type)
    return store is not None and entity_id in store


def _requisite(world: Bitrix24World, row_id: Any) -> dict:
    try:
        row = world.data["requisites"].get(to_int(row_id))
    except ValueError:
        row = None
    if row is None:
        raise classic_error("Requisite is not found")
    return row


def _write_requisite(ctx: Ctx, row: dict, fields: dict) -> None:
    changes = {}
    for name, value in fields.items():
        if name in REQUISITE_FIELDS and name not in (
            "ID",
            "DATE_CREATE",
            "DATE_MODIFY",
            "CREATED_BY_ID",
            "MODIFY_BY_ID",
        ):
            if isinstance(value, (dict, list)):
                raise classic_error(f"Field {name} has an invalid value")
            changes[name] = None if value in (None, "") else str(value)
    merged = {**row, **changes}
    try:
        entity_type, entity_id, preset = (to_int(merged.get(k)) for k in ("ENTITY_TYPE_ID", "ENTITY_ID", "PRESET_ID"))
    except ValueError:
        raise classic_error("Required fields: ENTITY_TYPE_ID, ENTITY_ID, PRESET_ID") from None
    if entity_type not in (3, 4) or not _owner_exists(ctx.world, entity_type, entity_id):
        raise classic_error("The requisite's owner (ENTITY_TYPE_ID 3/4, ENTITY_ID) is not found")
    if str(preset) not in {p["ID"] for p in PRESETS}:
        raise classic_error(f"Preset {preset} is not found")
    if not merged.get("NAME"):
        raise classic_error("Required fields: NAME")
    row.update(changes)
    row["MODIFY_BY_ID"], row["DATE_MODIFY"] = str(ctx.user.id), now_iso()


def _delete_requisite(world: Bitrix24World, row: dict) -> None:
    world.data["requisites"].pop(int(row["ID"]), None)
    for key in [k for k in world.data["addresses"] if k[1] == 8 and k[2] == int(row["ID"])]:
        del world.data["addresses"][key]


@rest_method("crm.requisite.preset.list")
def preset_list(ctx: Ctx, params: dict) -> ListResult:
    return ListResult([dict(p) for p in PRESETS], total=len(PRESETS))


@rest_method("crm.requisite.fields")
def requisite_fields(ctx: Ctx, params: dict) -> dict:
    return {
        n: {
            "type": "integer" if REQUISITE_KINDS[n] == INT else "string",
            "isRequired": n in ("ENTITY_TYPE_ID", "ENTITY_ID", "PRESET_ID", "NAME"),
            "isReadOnly": n == "ID",
            "isImmutable": False,
            "isMultiple": False,
            "isDynamic": False,
            "title": n,
        }
        for n in REQUISITE_FIELDS
    }


@rest_method("crm.requisite.add")
def requisite_add(ctx: Ctx, params: dict) -> int:
    row = {name: None for name in REQUISITE_FIELDS}
    row.update({"ACTIVE": "Y", "ADDRESS_ONLY": "N", "SORT": "500"})
    _write_requisite(ctx, row, classic_fields_param(params))
    row_id = ctx.world.next_id("requisite")
    row.update({"ID": str(row_id), "CREATED_BY_ID": str(ctx.user.id), "DATE_CREATE": row["DATE_MODIFY"]})
    ctx.world.data["requisites"][row_id] = row
    return row_id


@rest_method("crm.requisite.get")
def requisite_get(ctx: Ctx, params: dict) -> dict:
    return dict(_requisite(ctx.world, params.get("id")))


@rest_method("crm.requisite.update")
def requisite_update(ctx: Ctx, params: dict) -> bool:
    _write_requisite(ctx, _requisite(ctx.world, params.get("id")), classic_fields_param(params))
    return True


@rest_method("crm.requisite.delete")
def requisite_delete(ctx: Ctx, params: dict) -> bool:
    _delete_requisite(ctx.world, _requisite(ctx.world, params.get("id")))
    return True


@rest_method("crm.requisite.list")
def requisite_list(ctx: Ctx, params: dict) -> ListResult:
    match = compile_filter(params.get("filter"), REQUISITE_KINDS, allow_logic=False, unknown="ignore")
    rows = sort_rows(
        [r for r in ctx.world.data["requisites"].values() if match(r)],
        params.get("order"),
        REQUISITE_KINDS,
        unknown="ignore",
    )
    chosen = select_fields(params.get("select"), REQUISITE_FIELDS, always=("ID",))
    chunk, total, nxt = page_of(rows, params.get("start"))
    return ListResult([{n: r[n] for n in chosen} for r in chunk], total=total, next=nxt)


# --- addresses -------------------------------------------------------------------------------------
ADDRESS_TYPES = {
    1: "Physical address",
    4: "Registered address",
    6: "Legal address",
    8: "Mailing address",
    9: "Beneficiary address",
    11: "Shipping address",
}
ADDRESS_FIELDS = [
    "TYPE_ID",
    "ENTITY_TYPE_ID",
    "ENTITY_ID",
    "ADDRESS_1",
    "ADDRESS_2",
    "CITY",
    "POSTAL_CODE",
    "REGION",
    "PROVINCE",
    "COUNTRY",
    "COUNTRY_CODE",
    "LOC_ADDR_ID",
    "ANCHOR_TYPE_ID",
    "ANCHOR_ID",
]
ADDRESS_KINDS = {
    n: INT if n in ("TYPE_ID", "ENTITY_TYPE_ID", "ENTITY_ID", "ANCHOR_TYPE_ID", "ANCHOR_ID", "LOC_ADDR_ID") else STR
    for n in ADDRESS_FIELDS
}


def _address_key(world: Bitrix24World, fields: dict) -> tuple[int, int, int]:
    try:
        key = tuple(to_int(fields.get(k)) for k in ("TYPE_ID", "ENTITY_TYPE_ID", "ENTITY_ID"))
    except ValueError:
        raise classic_error("Required fields: TYPE_ID, ENTITY_TYPE_ID, ENTITY_ID") from None
    if key[0] not in ADDRESS_TYPES:
        raise classic_error(f"Address type {key[0]} is not supported")
    if key[1] != 8 or key[2] not in world.data["requisites"]:
        raise classic_error("The address owner is not found (ENTITY_TYPE_ID 8 with a requisite id)")
    return key  # type: ignore[return-value]


def _address_values(fields: dict) -> dict:
    out = {}
    for name in ADDRESS_FIELDS[3:12]:
        if name in fields:
            if isinstance(fields[name], (dict, list)):
                raise classic_error(f"Field {name} has an invalid value")
            out[name] = None if fields[name] in (None, "") else str(fields[name])
    return out


@rest_method("crm.address.fields")
def address_fields(ctx: Ctx, params: dict) -> dict:
    return {
        n: {
            "type": "integer" if ADDRESS_KINDS[n] == INT else "string",
            "isRequired": n in ADDRESS_FIELDS[:3],
            "isReadOnly": n.startswith("ANCHOR"),
            "isImmutable": n in ADDRESS_FIELDS[:3],
            "isMultiple": False,
            "isDynamic": False,
            "title": n,
        }
        for n in ADDRESS_FIELDS
    }


@rest_method("crm.address.add")
def address_add(ctx: Ctx, params: dict) -> bool:
    fields = classic_fields_param(params)
    key = _address_key(ctx.world, fields)
    if key in ctx.world.data["addresses"]:
        raise classic_error("TypeAddress exists")
    requisite = ctx.world.data["requisites"][key[2]]
    row = {name: None for name in ADDRESS_FIELDS}
    row.update(
        {
            "TYPE_ID": str(key[0]),
            "ENTITY_TYPE_ID": str(key[1]),
            "ENTITY_ID": str(key[2]),
            "ANCHOR_TYPE_ID": requisite["ENTITY_TYPE_ID"],
            "ANCHOR_ID": requisite["ENTITY_ID"],
        }
    )
    row.update(_address_values(fields))
    ctx.world.data["addresses"][key] = row
    return True


@rest_method("crm.address.update")
def address_update(ctx: Ctx, params: dict) -> bool:
    fields = classic_fields_param(params)
    key = _address_key(ctx.world, fields)
    row = ctx.world.data["addresses"].get(key)
    if row is None:
        raise classic_error("Address is not found")
    row.update(_address_values(fields))
    return True


@rest_method("crm.address.delete")
def address_delete(ctx: Ctx, params: dict) -> bool:
    key = _address_key(ctx.world, classic_fields_param(params))
    if ctx.world.data["addresses"].pop(key, None) is None:
        raise classic_error("Address is not found")
    return True


@rest_method("crm.address.list")
def address_list(ctx: Ctx, params: dict) -> ListResult:
    match = compile_filter(params.get("filter"), ADDRESS_KINDS, allow_logic=False, unknown="ignore")
    rows = sort_rows(
        [r for r in ctx.world.data["addresses"].values() if match(r)],
        params.get("order"),
        ADDRESS_KINDS,
        unknown="ignore",
    )
    chosen = select_fields(params.get("select"), ADDRESS_FIELDS, always=())
    chunk, total, nxt = page_of(rows, params.get("start"))
    return ListResult([{n: r[n] for n in chosen} for r in chunk], total=total, next=nxt)
