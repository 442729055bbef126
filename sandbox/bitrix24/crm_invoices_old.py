"""Old invoices (entity type 5) through crm.invoice.*, their statuses, payer types and payment methods.

Follows ../shared/spec/bitrix24/api-reference/crm/outdated/: invoice/crm-invoice-{add,update,get,list,
delete,fields}.md, invoice/crm-{person-type,pay-system}-{list,fields}.md, invoice-status-old/*.md
and invoice/events-invoice/*.md. Only portals whose setting says they have old invoices answer them
(sandbox/bitrix24/invoice_kinds.py).

* The classic API speaks PHP: values come back as strings ("ID": "12", "PRICE": "218.00"), add
  answers the new id as a number, update/delete answer true, errors carry `"error": ""` and
  Bitrix24's English text ("Access denied.", "Not found").
* ORDER_TOPIC, PERSON_TYPE_ID and PAY_SYSTEM_ID are required on add (crm-invoice-fields.md marks them
  with *) and must name a payer type (crm.persontype.list) and a payment method (crm.paysystem.list);
  the buyer is a company (UF_COMPANY_ID) or a contact (UF_CONTACT_ID) (crm-invoice-add.md). The
  documented examples pay with method 6 as a company and as a person, so the payment method is not
  tied to the payer type here.
* PRICE, TAX_VALUE and CURRENCY are read-only: the amount and tax follow PRODUCT_ROWS, the currency
  is the portal's base currency. A row's PRICE is the unit price the buyer pays (after
  DISCOUNT_PRICE, the discount per unit); VAT_RATE is a coefficient (0.2 = 20 %), VAT_INCLUDED says
  whether PRICE contains it. Rows are rounded to the cent one by one.
* PRODUCT_ROWS (and INVOICE_PROPERTIES) come back from crm.invoice.get only: crm.invoice.list
  does not return them (crm-invoice-list.md). crm.invoice.update with PRODUCT_ROWS replaces the rows
  (a row with its ID keeps that ID, ID 0 is a new row); without PRODUCT_ROWS they stay.
* STATUS_ID is from the INVOICE_STATUS directory, kept with the other directories so crm.status.list
  {"ENTITY_ID": "INVOICE_STATUS"} and crm.invoice.status.list answer the same rows. Custom statuses
  get a free one-letter STATUS_ID (the sale module's status ids are short). Moving to the success
  status sets PAYED Y, DATE_PAYED and EMP_PAYED_ID; to the failure status DATE_MARKED.
* Events: ONCRMINVOICEADD / ONCRMINVOICEUPDATE / ONCRMINVOICEDELETE with {"FIELDS": {"ID": id}};
  a changed STATUS_ID also raises ONCRMINVOICESETSTATUS with the same payload.
* Users whose invoice permission is "own" see only invoices they are responsible for: lists leave
  the rest out without a word, get/update/delete answer "Access denied.".
* Lists page by 50 with `start` (-1 skips the count), filter with the classic operators (unknown
  keys ignored), order by any filterable field, select "*" (all but custom fields) by default.

Here: the invoices' state, writes and the crm.invoice.* methods. Fields and values (in and out,
product rows, totals): old_invoice_values.py; the status directory: crm_invoice_status.py; payer
types and payment methods: crm_paysystems.py.

Not simulated: custom fields (crm.invoice.userfield.*), recurring invoices, getexternallink,
PR_LOCATION tax by location, requisite links.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sandbox.bitrix24 import crm_status, currency, notify
from sandbox.bitrix24.crm_invoice_status import DEFAULT_STATUSES, STATUS_ENTITY, status_out, status_semantics, statuses
from sandbox.bitrix24.crm_paysystems import PAY_SYSTEMS, PERSON_TYPES
from sandbox.bitrix24.filters import DATETIME, FLOAT, INT, STR, compile_filter, select_fields, sort_rows
from sandbox.bitrix24.old_invoice_values import (
    DATE_FIELDS,
    KINDS,
    LIST_FIELDS,
    WRITABLE,
    apply_totals,
    coerce,
    read_rows,
    render,
)
from sandbox.bitrix24.values import classic_error, date_iso, dict_param, int_param, now_iso, today
from sandbox.bitrix24.world import Bitrix24World, Ctx, ListResult, User, on_reset, on_snapshot, page_of, rest_method


# --- state --------------------------------------------------------------------------------------
@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["old_invoices"] = {}  # ID (int) -> invoice (typed values; strings on the way out)
    for status_id, name, sort, semantics in DEFAULT_STATUSES:
        crm_status._add_status(world, STATUS_ENTITY, status_id, name, sort, system="Y", semantics=semantics)


def can_see(user: User, invoice: dict) -> bool:
    return user.admin or user.invoices != "own" or invoice["RESPONSIBLE_ID"] == user.id


def _invoice_for(ctx: Ctx, params: dict) -> dict:
    invoice_id = int_param(params, "id")
    invoice = ctx.world.data["old_invoices"].get(invoice_id)
    if invoice is None:
        raise classic_error("Not found")
    if not can_see(ctx.user, invoice):
        raise classic_error("Access denied.")
    return invoice


def _validate(world: Bitrix24World, invoice: dict) -> None:
    if not str(invoice.get("ORDER_TOPIC") or "").strip():
        raise classic_error("Field ORDER_TOPIC is required")
    person_type = invoice.get("PERSON_TYPE_ID") or 0
    if str(person_type) not in {p[0] for p in PERSON_TYPES}:
        raise classic_error(f"Payer type {person_type} is not found (crm.persontype.list)")
    if str(invoice.get("PAY_SYSTEM_ID") or 0) not in {p[0] for p in PAY_SYSTEMS}:
        raise classic_error(f"Payment method {invoice.get('PAY_SYSTEM_ID')} is not found (crm.paysystem.list)")
    if not invoice.get("UF_COMPANY_ID") and not invoice.get("UF_CONTACT_ID"):
        raise classic_error("The payer is not specified: set UF_COMPANY_ID or UF_CONTACT_ID")
    companies = world.data.get("companies", {})
    contacts = world.data.get("contacts", {})
    if invoice.get("UF_COMPANY_ID") and _lookup(companies, invoice["UF_COMPANY_ID"]) is None:
        raise classic_error(f"Company {invoice['UF_COMPANY_ID']} is not found")
    if invoice.get("UF_CONTACT_ID") and _lookup(contacts, invoice["UF_CONTACT_ID"]) is None:
        raise classic_error(f"Contact {invoice['UF_CONTACT_ID']} is not found")
    if invoice["STATUS_ID"] not in {r["STATUS_ID"] for r in statuses(world)}:
        raise classic_error(f"Status {invoice['STATUS_ID']!r} is not found in INVOICE_STATUS")
    if invoice["RESPONSIBLE_ID"] not in world.users:
        raise classic_error(f"User {invoice['RESPONSIBLE_ID']} is not found")


def _lookup(store: dict, key: int) -> Any:
    return store.get(key, store.get(str(key)))


def _set_responsible(world: Bitrix24World, invoice: dict) -> None:
    user = world.users.get(invoice["RESPONSIBLE_ID"])
    invoice["RESPONSIBLE_NAME"] = user.name if user else ""
    invoice["RESPONSIBLE_LAST_NAME"] = user.last_name if user else ""
    invoice["RESPONSIBLE_SECOND_NAME"] = ""
    invoice["RESPONSIBLE_EMAIL"] = user.email if user else ""
    invoice["RESPONSIBLE_LOGIN"] = user.email if user else ""
    invoice["RESPONSIBLE_WORK_POSITION"] = ""
    invoice["RESPONSIBLE_PERSONAL_PHOTO"] = None


def _status_moved(world: Bitrix24World, invoice: dict, user: User, fields: dict) -> None:
    stamp = now_iso()
    invoice["DATE_STATUS"] = stamp
    invoice["EMP_STATUS_ID"] = user.id
    semantics = status_semantics(world, invoice["STATUS_ID"])
    if semantics == "S":
        invoice["PAYED"] = "Y"
        invoice["DATE_PAYED"] = stamp
        invoice["EMP_PAYED_ID"] = user.id
        if not invoice.get("PAY_VOUCHER_DATE"):
            invoice["PAY_VOUCHER_DATE"] = date_iso(today())
    else:
        invoice["PAYED"] = "N"
        if "PAY_VOUCHER_DATE" not in fields:
            invoice["PAY_VOUCHER_DATE"] = None
        if "PAY_VOUCHER_NUM" not in fields:
            invoice["PAY_VOUCHER_NUM"] = None
    if semantics == "F" and not invoice.get("DATE_MARKED"):
        invoice["DATE_MARKED"] = stamp


def _write(world: Bitrix24World, invoice: dict, fields: dict) -> None:
    for name, value in fields.items():
        name = str(name).upper()
        if name in WRITABLE or name == "INVOICE_PROPERTIES":
            invoice[name] = coerce(world, name, value)
    if "PRODUCT_ROWS" in {str(k).upper() for k in fields}:
        raw = next(v for k, v in fields.items() if str(k).upper() == "PRODUCT_ROWS")
        invoice["PRODUCT_ROWS"] = read_rows(world, raw, invoice["PRODUCT_ROWS"])
    apply_totals(invoice)


def new_invoice(world: Bitrix24World, user: User, fields: dict) -> dict:
    stamp = now_iso()
    invoice: dict[str, Any] = {name: None for name in LIST_FIELDS}
    invoice.update(
        {
            "CREATED_BY": user.id,
            "CURRENCY": currency.base_currency(world),
            "DATE_BILL": date_iso(today()),
            "DATE_INSERT": stamp,
            "DATE_PAY_BEFORE": date_iso(today() + timedelta(days=14)),
            "DATE_STATUS": stamp,
            "DATE_UPDATE": stamp,
            "EMP_STATUS_ID": user.id,
            "LID": "s1",
            "IS_RECURRING": "N",
            "PAYED": "N",
            "RESPONSIBLE_ID": user.id,
            "STATUS_ID": statuses(world)[0]["STATUS_ID"],
            "UF_COMPANY_ID": 0,
            "UF_CONTACT_ID": 0,
            "UF_MYCOMPANY_ID": 0,
            "UF_DEAL_ID": 0,
            "UF_QUOTE_ID": 0,
            "COMMENTS": "",
            "USER_DESCRIPTION": "",
            "PR_LOCATION": None,
            "INVOICE_PROPERTIES": {},
            "PRODUCT_ROWS": [],
        }
    )
    _write(world, invoice, fields)
    _validate(world, invoice)
    invoice["ID"] = world.next_id("old_invoice")
    invoice["ACCOUNT_NUMBER"] = invoice.get("ACCOUNT_NUMBER") or str(invoice["ID"])
    _set_responsible(world, invoice)
    if status_semantics(world, invoice["STATUS_ID"]) is not None:
        _status_moved(world, invoice, user, fields)
    world.data["old_invoices"][invoice["ID"]] = invoice
    return invoice


# --- crm.invoice.* ---------------------------------------------------------------------------------
@rest_method("crm.invoice.fields")
def invoice_fields(ctx: Ctx, params: dict) -> dict:
    def describe(name: str, b24type: str) -> dict:
        return {
            "type": b24type,
            "isRequired": name in ("ORDER_TOPIC", "PAY_SYSTEM_ID", "PERSON_TYPE_ID", "ACCOUNT_NUMBER"),
            "isReadOnly": name not in WRITABLE and name not in ("INVOICE_PROPERTIES", "PRODUCT_ROWS"),
            "isImmutable": False,
            "isMultiple": False,
            "isDynamic": False,
            "title": name,
        }

    types = {INT: "integer", FLOAT: "double", STR: "string", DATETIME: "datetime"}
    out = {}
    for name, kind in KINDS.items():
        b24type = "date" if name in DATE_FIELDS else types[kind]
        if name == "STATUS_ID":
            b24type = "crm_status"
        elif name == "CURRENCY":
            b24type = "crm_currency"
        elif name in ("PAYED", "IS_RECURRING"):
            b24type = "char"
        out[name] = describe(name, b24type)
    out["PR_LOCATION"] = describe("PR_LOCATION", "integer")
    out["INVOICE_PROPERTIES"] = describe("INVOICE_PROPERTIES", "array")
    out["PRODUCT_ROWS"] = describe("PRODUCT_ROWS", "array")
    return out


@rest_method("crm.invoice.add")
def invoice_add(ctx: Ctx, params: dict) -> int:
    fields = dict_param(params, "fields", required=True)
    invoice = new_invoice(ctx.world, ctx.user, fields)
    _event(ctx.world, "ADD", invoice["ID"], ctx.user)
    return invoice["ID"]


@rest_method("crm.invoice.get")
def invoice_get(ctx: Ctx, params: dict) -> dict:
    return render(_invoice_for(ctx, params), full=True)


@rest_method("crm.invoice.update")
def invoice_update(ctx: Ctx, params: dict) -> bool:
    invoice = _invoice_for(ctx, params)
    fields = dict_param(params, "fields")
    draft = dict(invoice, PRODUCT_ROWS=list(invoice["PRODUCT_ROWS"]))
    _write(ctx.world, draft, fields)
    _validate(ctx.world, draft)
    moved = draft["STATUS_ID"] != invoice["STATUS_ID"]
    if moved:
        _status_moved(ctx.world, draft, ctx.user, {str(k).upper(): v for k, v in fields.items()})
    _set_responsible(ctx.world, draft)
    draft["DATE_UPDATE"] = now_iso()
    invoice.clear()
    invoice.update(draft)
    _event(ctx.world, "UPDATE", invoice["ID"], ctx.user)
    if moved:
        _event(ctx.world, "SETSTATUS", invoice["ID"], ctx.user)
    return True


@rest_method("crm.invoice.delete")
def invoice_delete(ctx: Ctx, params: dict) -> bool:
    invoice = _invoice_for(ctx, params)
    del ctx.world.data["old_invoices"][invoice["ID"]]
    _event(ctx.world, "DELETE", invoice["ID"], ctx.user)
    return True


def _get(row: dict, field: str) -> Any:
    return row.get(field)


@rest_method("crm.invoice.list")
def invoice_list(ctx: Ctx, params: dict) -> ListResult:
    match = compile_filter(params.get("filter"), KINDS, _get, allow_logic=False, unknown="ignore")
    user = ctx.user
    rows = [inv for inv in ctx.world.data["old_invoices"].values() if can_see(user, inv) and match(inv)]
    rows = sort_rows(rows, params.get("order"), KINDS, _get, unknown="ignore")
    names = select_fields(params.get("select"), LIST_FIELDS, always=("ID",))
    chunk, total, nxt = page_of(rows, params.get("start"))
    return ListResult([render(inv, names) for inv in chunk], total=total, next=nxt)


def _event(world: Bitrix24World, kind: str, invoice_id: int, user: User | None) -> None:
    notify.raise_event(world, f"ONCRMINVOICE{kind}", {"FIELDS": {"ID": invoice_id}}, user)


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    return {
        "old_invoices": [render(inv, full=True) for inv in world.data["old_invoices"].values()],
        "invoice_statuses": [status_out(r) for r in statuses(world)],
    }
