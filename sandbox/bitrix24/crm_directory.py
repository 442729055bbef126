"""Companies, contacts, requisites and addresses through the classic crm.* API (UPPER_CASE).

The classic API speaks PHP: every value comes back as a string ("ID": "12"), add answers the new
id as a number, update/delete answer true, errors often carry `"error": ""`. Phones, e-mails and
web sites are multifields ([{"ID", "VALUE_TYPE", "VALUE", "TYPE_ID"}]), returned by list only
when named in `select`. Unknown filter keys are ignored, `logic` is not supported (docs §8).

Requisites and addresses (crm.requisite.*, crm.address.*) are in crm_requisites.py; their state is
reset and shown here with the companies and contacts they belong to.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.bitrix24 import currency, notify
from sandbox.bitrix24.crm_requisites import _delete_requisite
from sandbox.bitrix24.filters import DATETIME, FLOAT, INT, STR, compile_filter, select_fields, sort_rows
from sandbox.bitrix24.values import classic_error, classic_fields_param, now_iso, to_int, to_yn
from sandbox.bitrix24.world import B24Error, Bitrix24World, Ctx, ListResult, on_reset, on_snapshot, page_of, rest_method

MULTIFIELDS = {
    "PHONE": ("WORK", "MOBILE", "FAX", "HOME", "PAGER", "MAILING", "OTHER"),
    "EMAIL": ("WORK", "HOME", "MAILING", "OTHER"),
    "WEB": ("WORK", "HOME", "VK", "LIVEJOURNAL", "TWITTER", "FACEBOOK", "OTHER"),
    "IM": ("TELEGRAM", "VK", "SKYPE", "VIBER", "BITRIX24", "OPENLINE", "IMOL", "ICQ", "MSN", "JABBER", "OTHER"),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ADDRESS = [
    "ADDRESS",
    "ADDRESS_2",
    "ADDRESS_CITY",
    "ADDRESS_POSTAL_CODE",
    "ADDRESS_REGION",
    "ADDRESS_PROVINCE",
    "ADDRESS_COUNTRY",
    "ADDRESS_COUNTRY_CODE",
]
_ORIGIN = ["ORIGINATOR_ID", "ORIGIN_ID", "ORIGIN_VERSION"]
_AUDIT = ["ASSIGNED_BY_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "DATE_CREATE", "DATE_MODIFY"]

ENTITIES = {
    "company": {
        "type_id": 4,
        "fields": [
            "ID",
            "TITLE",
            "COMPANY_TYPE",
            "INDUSTRY",
            "EMPLOYEES",
            "CURRENCY_ID",
            "REVENUE",
            "OPENED",
            "COMMENTS",
            "IS_MY_COMPANY",
            "HAS_PHONE",
            "HAS_EMAIL",
            *_AUDIT,
            *_ORIGIN,
            *_ADDRESS,
        ],
        "required": ("TITLE",),
        "defaults": {
            "COMPANY_TYPE": "CUSTOMER",
            "OPENED": "Y",
            "IS_MY_COMPANY": "N",
            "REVENUE": "0",
            "EMPLOYEES": "EMPLOYEES_1",
        },
    },
    "contact": {
        "type_id": 3,
        "fields": [
            "ID",
            "HONORIFIC",
            "NAME",
            "SECOND_NAME",
            "LAST_NAME",
            "TYPE_ID",
            "SOURCE_ID",
            "SOURCE_DESCRIPTION",
            "POST",
            "COMMENTS",
            "OPENED",
            "EXPORT",
            "BIRTHDATE",
            "COMPANY_ID",
            "HAS_PHONE",
            "HAS_EMAIL",
            *_AUDIT,
            *_ORIGIN,
            *_ADDRESS,
        ],
        "required": (),
        "defaults": {"TYPE_ID": "CLIENT", "OPENED": "Y", "EXPORT": "Y"},
    },
}
_READ_ONLY = {"ID", "HAS_PHONE", "HAS_EMAIL", "CREATED_BY_ID", "MODIFY_BY_ID", "DATE_CREATE", "DATE_MODIFY"}
_FLAGS = {"OPENED", "IS_MY_COMPANY", "EXPORT"}
_INT_FIELDS = {"ID", "ASSIGNED_BY_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "COMPANY_ID"}


def _kinds(kind: str) -> dict:
    out = {}
    for name in ENTITIES[kind]["fields"]:
        out[name] = (
            INT
            if name in _INT_FIELDS
            else DATETIME
            if name.startswith("DATE_")
            else FLOAT
            if name == "REVENUE"
            else STR
        )
    out.update({name: STR + "[]" for name in MULTIFIELDS})
    return out


KINDS = {kind: _kinds(kind) for kind in ENTITIES}


def _store(world: Bitrix24World, kind: str) -> dict:
    return world.data["companies" if kind == "company" else "contacts"]


@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["companies"] = {}  # id -> row (strings), with "_fm": multifield values
    world.data["contacts"] = {}
    world.data["requisites"] = {}
    world.data["addresses"] = {}  # (TYPE_ID, ENTITY_TYPE_ID, ENTITY_ID) -> row


def _get_row(world: Bitrix24World, kind: str, row_id: Any) -> dict:
    try:
        row = _store(world, kind).get(to_int(row_id))
    except ValueError:
        row = None
    if row is None:
        raise classic_error("Not found")
    return row


# --- writes --------------------------------------------------------------------------------------
def _scalar(world: Bitrix24World, kind: str, name: str, value: Any) -> str | None:
    if isinstance(value, (dict, list)):
        raise B24Error(400, "ERROR_CORE", f"Field {name} has an invalid value")
    if value is None or value == "":
        return None
    if name in _FLAGS:
        try:
            return to_yn(value)
        except ValueError:
            raise B24Error(400, "ERROR_CORE", f"Field {name} has an invalid value") from None
    if name in _INT_FIELDS:
        try:
            number = to_int(value)
        except ValueError:
            raise B24Error(400, "ERROR_CORE", f"Field {name} has an invalid value") from None
        if name == "ASSIGNED_BY_ID" and number not in world.users:
            raise B24Error(400, "ERROR_CORE", f"User {number} is not found")
        if name == "COMPANY_ID" and number and number not in world.data["companies"]:
            raise B24Error(400, "ERROR_CORE", f"Company {number} is not found")
        return str(number) if number else None
    if name == "CURRENCY_ID" and not currency.exists(world, str(value)):
        raise B24Error(400, "ERROR_CORE", f"Currency {value} is not found")
    return str(value)


def _multifield_changes(name: str, value: Any) -> list[dict]:
    items = list(value.values()) if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise B24Error(400, "ERROR_CORE", f"Field {name} must be an array of {{VALUE, VALUE_TYPE}}")
    for item in items:
        text = str(item.get("VALUE") or "").strip()
        if name == "EMAIL" and text and not _EMAIL.match(text):
            raise B24Error(400, "ERROR_CORE", f"Invalid e-mail address: '{text}'")
        value_type = str(item.get("VALUE_TYPE") or "WORK").upper()
        if value_type not in MULTIFIELDS[name]:
            raise B24Error(400, "ERROR_CORE", f"Invalid VALUE_TYPE '{value_type}' for {name}")
    return items


def _apply_multifields(world: Bitrix24World, row: dict, changes: dict[str, list[dict]]) -> None:
    for name, items in changes.items():
        current = row["_fm"].setdefault(name, [])
        for item in items:
            text = str(item.get("VALUE") or "").strip()
            value_type = str(item.get("VALUE_TYPE") or "WORK").upper()
            existing = next((v for v in current if item.get("ID") is not None and v["ID"] == str(item.get("ID"))), None)
            if existing is not None:
                if str(item.get("DELETE", "N")).upper() == "Y" or not text:
                    current.remove(existing)
                else:
                    existing.update({"VALUE": text, "VALUE_TYPE": value_type})
            elif text and str(item.get("DELETE", "N")).upper() != "Y":
                current.append(
                    {"ID": str(world.next_id("multifield")), "VALUE_TYPE": value_type, "VALUE": text, "TYPE_ID": name}
                )
    row["HAS_PHONE"] = "Y" if row["_fm"].get("PHONE") else "N"
    row["HAS_EMAIL"] = "Y" if row["_fm"].get("EMAIL") else "N"


def _write(ctx: Ctx, kind: str, row: dict, fields: dict, creating: bool) -> None:
    spec = ENTITIES[kind]
    scalars = {}
    multifields = {}
    for name, value in fields.items():
        if name in MULTIFIELDS:
            multifields[name] = _multifield_changes(name, value)
        elif name in spec["fields"] and name not in _READ_ONLY:
            scalars[name] = _scalar(ctx.world, kind, name, value)
    merged = {**row, **scalars}
    for name in spec["required"]:
        if not merged.get(name):
            raise classic_error(f"Required fields: {name}")
    if kind == "contact" and not (merged.get("NAME") or merged.get("LAST_NAME")):
        raise classic_error("Required fields: NAME or LAST_NAME")
    row.update(scalars)
    _apply_multifields(ctx.world, row, multifields)
    stamp = now_iso()
    row["MODIFY_BY_ID"] = str(ctx.user.id)
    row["DATE_MODIFY"] = stamp
    if creating:
        row["CREATED_BY_ID"] = str(ctx.user.id)
        row["DATE_CREATE"] = stamp


def _out(row: dict, names: list[str], with_multifields: Any = True) -> dict:
    out = {name: row.get(name) for name in names}
    for name in MULTIFIELDS:
        wanted = with_multifields is True or name in with_multifields
        if wanted and row["_fm"].get(name):
            out[name] = [dict(v) for v in row["_fm"][name]]
    return out


def _event(ctx: Ctx, kind: str, action: str, row_id: int) -> None:
    notify.raise_event(ctx.world, f"ONCRM{kind.upper()}{action}", {"FIELDS": {"ID": row_id}}, ctx.user)


def _register(kind: str) -> None:
    spec = ENTITIES[kind]
    names = spec["fields"]

    @rest_method(f"crm.{kind}.fields")
    def fields_(ctx: Ctx, params: dict) -> dict:
        out = {}
        for name in names + list(MULTIFIELDS):
            out[name] = {
                "type": "crm_multifield"
                if name in MULTIFIELDS
                else "integer"
                if name in _INT_FIELDS
                else "datetime"
                if name.startswith("DATE_")
                else "char"
                if name in _FLAGS
                else "string",
                "isRequired": name in spec["required"],
                "isReadOnly": name in _READ_ONLY,
                "isImmutable": False,
                "isMultiple": name in MULTIFIELDS,
                "isDynamic": False,
                "title": name,
            }
        return out

    @rest_method(f"crm.{kind}.add")
    def add(ctx: Ctx, params: dict) -> int:
        fields = classic_fields_param(params)
        row = {name: None for name in names}
        row.update(spec["defaults"])
        row["ASSIGNED_BY_ID"] = str(ctx.user.id)
        row["_fm"] = {}
        _write(ctx, kind, row, fields, creating=True)
        row_id = ctx.world.next_id(kind)
        row["ID"] = str(row_id)
        _store(ctx.world, kind)[row_id] = row
        _event(ctx, kind, "ADD", row_id)
        return row_id

    @rest_method(f"crm.{kind}.get")
    def get(ctx: Ctx, params: dict) -> dict:
        return _out(_get_row(ctx.world, kind, params.get("id")), names)

    @rest_method(f"crm.{kind}.update")
    def update(ctx: Ctx, params: dict) -> bool:
        row = _get_row(ctx.world, kind, params.get("id"))
        _write(ctx, kind, row, classic_fields_param(params), creating=False)
        _event(ctx, kind, "UPDATE", int(row["ID"]))
        return True

    @rest_method(f"crm.{kind}.delete")
    def delete(ctx: Ctx, params: dict) -> bool:
        row = _get_row(ctx.world, kind, params.get("id"))
        del _store(ctx.world, kind)[int(row["ID"])]
        for requisite in [
            r
            for r in ctx.world.data["requisites"].values()
            if r["ENTITY_TYPE_ID"] == str(spec["type_id"]) and r["ENTITY_ID"] == row["ID"]
        ]:
            _delete_requisite(ctx.world, requisite)
        _event(ctx, kind, "DELETE", int(row["ID"]))
        return True

    @rest_method(f"crm.{kind}.list")
    def list_(ctx: Ctx, params: dict) -> ListResult:
        kinds = KINDS[kind]
        match = compile_filter(params.get("filter"), kinds, _value, allow_logic=False, unknown="ignore")
        rows = [r for r in _store(ctx.world, kind).values() if match(r)]
        rows = sort_rows(rows, params.get("order"), kinds, _value, unknown="ignore")
        select = params.get("select")
        select_list = (
            list(select.values())
            if isinstance(select, dict)
            else select
            if isinstance(select, list)
            else [select]
            if select
            else []
        )
        chosen = select_fields(select_list, names, always=("ID",))
        wanted_fm = [s for s in select_list if s in MULTIFIELDS]
        chunk, total, nxt = page_of(rows, params.get("start"))
        return ListResult([_out(r, chosen, wanted_fm) for r in chunk], total=total, next=nxt)


def _value(row: dict, field: str) -> Any:
    if field in MULTIFIELDS:
        return [v["VALUE"] for v in row["_fm"].get(field, [])]
    return row.get(field)


for _kind in ENTITIES:
    _register(_kind)


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    def full(row: dict) -> dict:
        out = {k: v for k, v in row.items() if k != "_fm"}
        out.update({name: [dict(v) for v in values] for name, values in row["_fm"].items() if values})
        return out

    return {
        "companies": [full(r) for r in world.data["companies"].values()],
        "contacts": [full(r) for r in world.data["contacts"].values()],
        "requisites": [dict(r) for r in world.data["requisites"].values()],
        "addresses": [dict(r) for r in world.data["addresses"].values()],
    }
