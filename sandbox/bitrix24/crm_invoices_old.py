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

Not simulated: custom fields (crm.invoice.userfield.*), recurring invoices, getexternallink,
PR_LOCATION tax by location, requisite links.
"""

from __future__ import annotations

import string
from datetime import timedelta
from typing import Any

from sandbox.bitrix24 import crm_status, currency, notify
from sandbox.bitrix24.filters import DATETIME, FLOAT, INT, STR, compile_filter, select_fields, sort_rows
from sandbox.bitrix24.values import (
    date_iso,
    dict_param,
    int_param,
    now_iso,
    to_date_iso,
    to_datetime_iso,
    to_float,
    to_int,
    to_yn,
    today,
)
from sandbox.bitrix24.world import (
    B24Error,
    Bitrix24World,
    Ctx,
    ListResult,
    User,
    on_reset,
    on_snapshot,
    page_of,
    rest_method,
)

STATUS_ENTITY = "INVOICE_STATUS"
# (STATUS_ID, NAME, SORT, SEMANTICS): the statuses a portal with old invoices starts with.
DEFAULT_STATUSES = (
    ("N", "New", 10, None),
    ("S", "Sent to client", 20, None),
    ("P", "Paid", 130, "S"),
    ("D", "Declined", 140, "F"),
)
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

# Filter/order kinds of the fields crm.invoice.list knows (crm-invoice-list.md "Fields Returned").
KINDS = {
    "ID": INT,
    "ACCOUNT_NUMBER": STR,
    "COMMENTS": STR,
    "CREATED_BY": INT,
    "CURRENCY": STR,
    "DATE_BILL": DATETIME,
    "DATE_INSERT": DATETIME,
    "DATE_MARKED": DATETIME,
    "DATE_PAY_BEFORE": DATETIME,
    "DATE_PAYED": DATETIME,
    "DATE_STATUS": DATETIME,
    "DATE_UPDATE": DATETIME,
    "EMP_PAYED_ID": INT,
    "EMP_STATUS_ID": INT,
    "LID": STR,
    "IS_RECURRING": STR,
    "XML_ID": STR,
    "ORDER_TOPIC": STR,
    "PAY_SYSTEM_ID": INT,
    "PAY_VOUCHER_DATE": DATETIME,
    "PAY_VOUCHER_NUM": STR,
    "PAYED": STR,
    "PERSON_TYPE_ID": INT,
    "PRICE": FLOAT,
    "REASON_MARKED": STR,
    "RESPONSIBLE_EMAIL": STR,
    "RESPONSIBLE_ID": INT,
    "RESPONSIBLE_LAST_NAME": STR,
    "RESPONSIBLE_LOGIN": STR,
    "RESPONSIBLE_NAME": STR,
    "RESPONSIBLE_PERSONAL_PHOTO": INT,
    "RESPONSIBLE_SECOND_NAME": STR,
    "RESPONSIBLE_WORK_POSITION": STR,
    "STATUS_ID": STR,
    "TAX_VALUE": FLOAT,
    "UF_COMPANY_ID": INT,
    "UF_CONTACT_ID": INT,
    "UF_MYCOMPANY_ID": INT,
    "UF_DEAL_ID": INT,
    "UF_QUOTE_ID": INT,
    "USER_DESCRIPTION": STR,
}
LIST_FIELDS = list(KINDS)
GET_ONLY = ("PR_LOCATION", "INVOICE_PROPERTIES", "PRODUCT_ROWS")
_MONEY = {"PRICE", "TAX_VALUE"}
_DATES = {"DATE_BILL", "DATE_PAY_BEFORE", "PAY_VOUCHER_DATE"}
_DATETIMES = {"DATE_INSERT", "DATE_MARKED", "DATE_PAYED", "DATE_STATUS", "DATE_UPDATE"}
_INTS = {k for k, v in KINDS.items() if v == INT}
WRITABLE = {
    "ACCOUNT_NUMBER",
    "COMMENTS",
    "DATE_BILL",
    "DATE_INSERT",
    "DATE_MARKED",
    "DATE_PAY_BEFORE",
    "XML_ID",
    "ORDER_TOPIC",
    "PAY_SYSTEM_ID",
    "PAY_VOUCHER_DATE",
    "PAY_VOUCHER_NUM",
    "PERSON_TYPE_ID",
    "REASON_MARKED",
    "RESPONSIBLE_ID",
    "STATUS_ID",
    "UF_COMPANY_ID",
    "UF_CONTACT_ID",
    "UF_MYCOMPANY_ID",
    "UF_DEAL_ID",
    "UF_QUOTE_ID",
    "USER_DESCRIPTION",
    "PR_LOCATION",
}
ROW_FIELDS = (
    "ID",
    "PRICE",
    "DISCOUNT_PRICE",
    "PRODUCT_ID",
    "PRODUCT_NAME",
    "VAT_RATE",
    "VAT_INCLUDED",
    "MEASURE_CODE",
    "MEASURE_NAME",
    "CATALOG_XML_ID",
    "PRODUCT_XML_ID",
    "QUANTITY",
)


def _error(text: str) -> B24Error:
    return B24Error(400, "", text)


# --- state --------------------------------------------------------------------------------------
@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["old_invoices"] = {}  # ID (int) -> invoice (typed values; strings on the way out)
    for status_id, name, sort, semantics in DEFAULT_STATUSES:
        crm_status._add_status(world, STATUS_ENTITY, status_id, name, sort, system="Y", semantics=semantics)


def statuses(world: Bitrix24World) -> list[dict]:
    rows = [r for r in world.data["statuses"].values() if r["ENTITY_ID"] == STATUS_ENTITY]
    return sorted(rows, key=lambda r: (int(r["SORT"]), int(r["ID"])))


def _status_semantics(world: Bitrix24World, status_id: str) -> str | None:
    for row in statuses(world):
        if row["STATUS_ID"] == status_id:
            return row.get("SEMANTICS")
    return None


def can_see(user: User, invoice: dict) -> bool:
    return user.admin or user.invoices != "own" or invoice["RESPONSIBLE_ID"] == user.id


def _invoice_for(ctx: Ctx, params: dict) -> dict:
    invoice_id = int_param(params, "id")
    invoice = ctx.world.data["old_invoices"].get(invoice_id)
    if invoice is None:
        raise _error("Not found")
    if not can_see(ctx.user, invoice):
        raise _error("Access denied.")
    return invoice


# --- values in and out ----------------------------------------------------------------------------
def _out_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _MONEY:
        return f"{value:.2f}"
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _row_out(row: dict) -> dict:
    out = {}
    for name in ROW_FIELDS:
        value = row.get(name)
        if name in ("PRICE", "DISCOUNT_PRICE", "QUANTITY", "VAT_RATE"):
            out[name] = f"{value:.4f}" if value is not None else None
        elif name in ("ID", "PRODUCT_ID", "MEASURE_CODE"):
            out[name] = str(value) if value is not None else None
        else:
            out[name] = value
    return out


def render(invoice: dict, names: list[str] | None = None, *, full: bool = False) -> dict:
    out = {name: _out_value(name, invoice.get(name)) for name in (names or LIST_FIELDS)}
    if full:
        out["PR_LOCATION"] = invoice.get("PR_LOCATION")
        out["INVOICE_PROPERTIES"] = dict(invoice.get("INVOICE_PROPERTIES") or {})
        out["PRODUCT_ROWS"] = [_row_out(row) for row in invoice["PRODUCT_ROWS"]]
    return out


def _not_valid(name: str, value: Any) -> B24Error:
    return _error(f"Field {name} has an invalid value: {value!r}")


def _coerce(world: Bitrix24World, name: str, value: Any) -> Any:
    try:
        if name in _DATES:
            return to_date_iso(value)
        if name in _DATETIMES:
            return to_datetime_iso(value)
        if name in _INTS:
            if value in (None, ""):
                return 0
            number = to_int(value)
            if number < 0:
                raise ValueError(value)
            return number
        if name == "PR_LOCATION":
            return None if value in (None, "") else to_int(value)
        if name == "INVOICE_PROPERTIES":
            if value in (None, "", []):
                return {}
            if not isinstance(value, dict):
                raise ValueError(value)
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        if isinstance(value, (dict, list)):
            raise ValueError(value)
        return "" if value is None else str(value)
    except ValueError:
        raise _not_valid(name, value) from None


def _rows(world: Bitrix24World, raw: Any, old_rows: list[dict]) -> list[dict]:
    if isinstance(raw, dict):
        raw = list(raw.values())
    if raw in (None, ""):
        raw = []
    if not isinstance(raw, list):
        raise _not_valid("PRODUCT_ROWS", raw)
    by_id = {row["ID"]: row for row in old_rows}
    out = []
    for given in raw:
        if not isinstance(given, dict):
            raise _not_valid("PRODUCT_ROWS", given)
        try:
            row_id = to_int(given.get("ID") or 0)
            product_id = to_int(given.get("PRODUCT_ID") or 0)
            quantity = to_float(given.get("QUANTITY", 1))
            price = to_float(given.get("PRICE", 0))
            discount = to_float(given.get("DISCOUNT_PRICE") or 0)
            vat_rate = to_float(given.get("VAT_RATE") or 0)
            vat_included = to_yn(given.get("VAT_INCLUDED", "Y"))
            measure_code = to_int(given.get("MEASURE_CODE") or 796)
        except ValueError:
            raise _not_valid("PRODUCT_ROWS", given) from None
        if quantity <= 0 or price < 0 or discount < 0 or not 0 <= vat_rate < 1:
            raise _not_valid("PRODUCT_ROWS", given)
        previous = by_id.get(row_id) if row_id else None
        name = str(given.get("PRODUCT_NAME") or (previous or {}).get("PRODUCT_NAME") or "").strip()
        if not name and product_id:
            product = world.data.get("products", {}).get(product_id) or {}
            name = str(product.get("NAME") or product.get("name") or f"Product {product_id}")
        if not name:
            raise _error("Product name is not specified")
        out.append(
            {
                "ID": previous["ID"] if previous else world.next_id("old_invoice_row"),
                "PRICE": price,
                "DISCOUNT_PRICE": discount,
                "PRODUCT_ID": product_id,
                "PRODUCT_NAME": name,
                "VAT_RATE": vat_rate,
                "VAT_INCLUDED": vat_included,
                "MEASURE_CODE": measure_code,
                "MEASURE_NAME": str(given.get("MEASURE_NAME") or "pcs"),
                "CATALOG_XML_ID": None,
                "PRODUCT_XML_ID": None,
                "QUANTITY": quantity,
            }
        )
    return out


def row_amounts(row: dict) -> tuple[float, float]:
    """(the row's total with tax, its tax), each rounded to the cent."""
    line = row["PRICE"] * row["QUANTITY"]
    rate = row["VAT_RATE"]
    if row["VAT_INCLUDED"] == "Y":
        tax = line - line / (1 + rate)
        return round(line + 1e-9, 2), round(tax + 1e-9, 2)
    tax = round(line * rate + 1e-9, 2)
    return round(line + 1e-9, 2) + tax, tax


def _apply_totals(invoice: dict) -> None:
    total = tax = 0.0
    for row in invoice["PRODUCT_ROWS"]:
        row_total, row_tax = row_amounts(row)
        total += row_total
        tax += row_tax
    invoice["PRICE"], invoice["TAX_VALUE"] = round(total, 2), round(tax, 2)


def _validate(world: Bitrix24World, invoice: dict) -> None:
    if not str(invoice.get("ORDER_TOPIC") or "").strip():
        raise _error("Field ORDER_TOPIC is required")
    person_type = invoice.get("PERSON_TYPE_ID") or 0
    if str(person_type) not in {p[0] for p in PERSON_TYPES}:
        raise _error(f"Payer type {person_type} is not found (crm.persontype.list)")
    if str(invoice.get("PAY_SYSTEM_ID") or 0) not in {p[0] for p in PAY_SYSTEMS}:
        raise _error(f"Payment method {invoice.get('PAY_SYSTEM_ID')} is not found (crm.paysystem.list)")
    if not invoice.get("UF_COMPANY_ID") and not invoice.get("UF_CONTACT_ID"):
        raise _error("The payer is not specified: set UF_COMPANY_ID or UF_CONTACT_ID")
    companies = world.data.get("companies", {})
    contacts = world.data.get("contacts", {})
    if invoice.get("UF_COMPANY_ID") and _lookup(companies, invoice["UF_COMPANY_ID"]) is None:
        raise _error(f"Company {invoice['UF_COMPANY_ID']} is not found")
    if invoice.get("UF_CONTACT_ID") and _lookup(contacts, invoice["UF_CONTACT_ID"]) is None:
        raise _error(f"Contact {invoice['UF_CONTACT_ID']} is not found")
    if invoice["STATUS_ID"] not in {r["STATUS_ID"] for r in statuses(world)}:
        raise _error(f"Status {invoice['STATUS_ID']!r} is not found in INVOICE_STATUS")
    if invoice["RESPONSIBLE_ID"] not in world.users:
        raise _error(f"User {invoice['RESPONSIBLE_ID']} is not found")


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
    semantics = _status_semantics(world, invoice["STATUS_ID"])
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
            invoice[name] = _coerce(world, name, value)
    if "PRODUCT_ROWS" in {str(k).upper() for k in fields}:
        raw = next(v for k, v in fields.items() if str(k).upper() == "PRODUCT_ROWS")
        invoice["PRODUCT_ROWS"] = _rows(world, raw, invoice["PRODUCT_ROWS"])
    _apply_totals(invoice)


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
    if _status_semantics(world, invoice["STATUS_ID"]) is not None:
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
        b24type = "date" if name in _DATES else types[kind]
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


# --- crm.invoice.status.* (the INVOICE_STATUS directory) -------------------------------------------
STATUS_FIELDS = ("ID", "ENTITY_ID", "STATUS_ID", "NAME", "NAME_INIT", "SORT", "SYSTEM")


def _status_out(row: dict) -> dict:
    return {name: row.get(name) for name in STATUS_FIELDS}


def _status_row(world: Bitrix24World, params: dict) -> dict:
    key = int_param(params, "id")
    row = world.data["statuses"].get(key)
    if row is None or row["ENTITY_ID"] != STATUS_ENTITY:
        raise _error("Not found")
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
    return ListResult([_status_out(r) for r in rows], total=len(rows))


@rest_method("crm.invoice.status.get")
def status_get(ctx: Ctx, params: dict) -> dict:
    return _status_out(_status_row(ctx.world, params))


@rest_method("crm.invoice.status.add", admin=True)
def status_add(ctx: Ctx, params: dict) -> int:
    world = ctx.world
    fields = dict_param(params, "fields", required=True)
    name = str(fields.get("NAME") or "").strip()
    if not name:
        raise _error("Field NAME is required")
    try:
        sort = to_int(fields.get("SORT") or 0)
    except ValueError:
        raise _not_valid("SORT", fields.get("SORT")) from None
    if sort <= 0:
        raise _error("Field SORT is required")
    taken = {r["STATUS_ID"] for r in statuses(world)}
    status_id = next((c for c in string.ascii_uppercase if c not in taken), None)
    if status_id is None:
        raise _error("No free status identifier is left")
    row = crm_status._add_status(world, STATUS_ENTITY, status_id, name, sort)
    return int(row["ID"])


@rest_method("crm.invoice.status.update", admin=True)
def status_update(ctx: Ctx, params: dict) -> bool:
    row = _status_row(ctx.world, params)
    fields = dict_param(params, "fields", required=True)
    if "NAME" in fields:
        name = str(fields["NAME"] or "").strip()
        if not name:
            raise _error("Field NAME is required")
        row["NAME"] = name
    if "SORT" in fields:
        try:
            row["SORT"] = str(to_int(fields["SORT"]))
        except ValueError:
            raise _not_valid("SORT", fields["SORT"]) from None
    return True


@rest_method("crm.invoice.status.delete", admin=True)
def status_delete(ctx: Ctx, params: dict) -> bool:
    world = ctx.world
    row = _status_row(world, params)
    if row["SYSTEM"] == "Y":
        raise _error("Can't delete system status")
    if any(inv["STATUS_ID"] == row["STATUS_ID"] for inv in world.data["old_invoices"].values()):
        raise _error("There are invoices in this status; move them first")
    del world.data["statuses"][int(row["ID"])]
    return True


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


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    return {
        "old_invoices": [render(inv, full=True) for inv in world.data["old_invoices"].values()],
        "invoice_statuses": [_status_out(r) for r in statuses(world)],
    }
