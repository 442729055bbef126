"""Which invoices the portal has: new (smart invoices, entity type 31), old (crm.invoice.*), or both.

Set with `POST /_sandbox/bitrix24/settings {"invoices": "new"|"old"|"both"}` before the install, as
a real portal has it. A portal shows it the way Bitrix24 does: the methods of a kind it does not
have refuse to work (crm.item.* for entity type 31 answers "Smart process not found"; crm.invoice.*,
crm.invoice.status.*, crm.persontype.* and crm.paysystem.* answer an error), and placement.list /
placement.bind know only the placements of the kinds it has.

Not from the docs (they do not say how a portal without old invoices answers crm.invoice.*): the
error code and text used here are the sandbox's choice; a client should treat any refusal as
"this portal has no old invoices".
"""

from __future__ import annotations

from sandbox.bitrix24.app_state import state
from sandbox.bitrix24.world import B24Error, Bitrix24World, on_call

KINDS = ("new", "old", "both")
DEFAULT = "new"
OLD_METHOD_PREFIXES = ("crm.invoice.", "crm.persontype.", "crm.paysystem.")


def current(world: Bitrix24World) -> str:
    return state(world).settings.get("invoices") or DEFAULT


def has_old(world: Bitrix24World) -> bool:
    return current(world) in ("old", "both")


def has_new(world: Bitrix24World) -> bool:
    return current(world) in ("new", "both")


def placement_available(world: Bitrix24World, code: str) -> bool:
    if code.startswith("CRM_SMART_INVOICE_"):
        return has_new(world)
    if code.startswith("CRM_INVOICE_"):
        return has_old(world)
    return True


def _entity_type(params: dict) -> str:
    return str(params.get("entityTypeId") or params.get("ENTITY_TYPE_ID") or "").strip()


@on_call
def _guard(world: Bitrix24World, method: str, params: dict) -> None:
    name = method.lower()
    if name.startswith(OLD_METHOD_PREFIXES) and not has_old(world):
        raise B24Error(400, "ERROR_CORE", "Invoices (old) are disabled on this portal")
    if (
        not has_new(world)
        and name.startswith(("crm.item.", "crm.category."))
        and not name.startswith("crm.item.productrow.")
        and _entity_type(params) == "31"
    ):
        raise B24Error(400, "NOT_FOUND", "Smart process not found")
