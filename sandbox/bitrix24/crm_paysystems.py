"""crm.persontype.* and crm.paysystem.*: the payer types and payment methods an old invoice names.

Follows ../shared/spec/bitrix24/api-reference/crm/outdated/invoice/crm-{person-type,pay-system}-{list,fields}.md.
A fixed set, as a portal's sale module has it out of the box.
"""

from __future__ import annotations

from sandbox.bitrix24.filters import INT, STR, compile_filter, sort_rows
from sandbox.bitrix24.world import Ctx, rest_method

PERSON_TYPES = (("1", "CRM_CONTACT", 100), ("2", "CRM_COMPANY", 200))
# (ID, NAME, PERSON_TYPE_ID, ACTION_FILE, SORT)
PAY_SYSTEMS = (
    ("1", "Cash", "1", "cash", 100),
    ("2", "Cash", "2", "cash", 110),
    ("3", "Estimate", "1", "quote", 200),
    ("4", "Estimate", "2", "quote", 210),
    ("5", "Invoice (individuals)", "1", "bill", 300),
    ("6", "Invoice", "2", "bill", 310),
)

# --- payer types and payment methods ----------------------------------------------------------------
_PT_KINDS = {"ID": INT, "NAME": STR, "SORT": INT, "LID": STR, "ACTIVE": STR}
_PS_KINDS = {"ID": INT, "NAME": STR, "SORT": INT, "ACTIVE": STR, "PERSON_TYPE_ID": INT, "ACTION_FILE": STR}


def _person_types() -> list[dict]:
    return [{"ID": i, "NAME": n, "SORT": str(s), "LID": "s1", "ACTIVE": "Y"} for i, n, s in PERSON_TYPES]


def _pay_systems() -> list[dict]:
    return [
        {
            "ID": i,
            "NAME": n,
            "ACTIVE": "Y",
            "SORT": str(s),
            "DESCRIPTION": "",
            "PERSON_TYPE_ID": pt,
            "ACTION_FILE": action,
            "HANDLER": action,
        }
        for i, n, pt, action, s in PAY_SYSTEMS
    ]


def _simple_list(rows: list[dict], params: dict, kinds: dict) -> list[dict]:
    match = compile_filter(params.get("filter"), kinds, allow_logic=False, unknown="ignore")
    return sort_rows([r for r in rows if match(r)], params.get("order"), kinds, unknown="ignore")


@rest_method("crm.persontype.list")
def person_type_list(ctx: Ctx, params: dict) -> list[dict]:
    return _simple_list(_person_types(), params, _PT_KINDS)


@rest_method("crm.persontype.fields")
def person_type_fields(ctx: Ctx, params: dict) -> dict:
    return {name: {"type": "integer" if kind == INT else "string", "title": name} for name, kind in _PT_KINDS.items()}


@rest_method("crm.paysystem.list")
def pay_system_list(ctx: Ctx, params: dict) -> list[dict]:
    return _simple_list(_pay_systems(), params, _PS_KINDS)


@rest_method("crm.paysystem.fields")
def pay_system_fields(ctx: Ctx, params: dict) -> dict:
    return {name: {"type": "integer" if kind == INT else "string", "title": name} for name, kind in _PS_KINDS.items()}
