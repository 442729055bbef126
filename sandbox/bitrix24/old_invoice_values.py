"""Old invoices' (crm.invoice.*) fields and values: which fields a list knows and how they filter,
which are writable, how values are read in (coerced and checked, product rows included) and written
out (the classic API's strings), and the totals the rows give.

Follows ../shared/spec/bitrix24/api-reference/crm/outdated/invoice/crm-invoice-{fields,list,add}.md;
the behaviour is described in sandbox/bitrix24/crm_invoices_old.py.
"""

from __future__ import annotations

from typing import Any

from sandbox.bitrix24.filters import DATETIME, FLOAT, INT, STR
from sandbox.bitrix24.values import classic_error, to_date_iso, to_datetime_iso, to_float, to_int, to_yn
from sandbox.bitrix24.world import B24Error, Bitrix24World

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
MONEY_FIELDS = {"PRICE", "TAX_VALUE"}
DATE_FIELDS = {"DATE_BILL", "DATE_PAY_BEFORE", "PAY_VOUCHER_DATE"}
DATETIME_FIELDS = {"DATE_INSERT", "DATE_MARKED", "DATE_PAYED", "DATE_STATUS", "DATE_UPDATE"}
INT_FIELDS = {k for k, v in KINDS.items() if v == INT}
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


# --- values in and out ----------------------------------------------------------------------------
def _out_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in MONEY_FIELDS:
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


def not_valid(name: str, value: Any) -> B24Error:
    return classic_error(f"Field {name} has an invalid value: {value!r}")


def coerce(world: Bitrix24World, name: str, value: Any) -> Any:
    try:
        if name in DATE_FIELDS:
            return to_date_iso(value)
        if name in DATETIME_FIELDS:
            return to_datetime_iso(value)
        if name in INT_FIELDS:
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
        raise not_valid(name, value) from None


def read_rows(world: Bitrix24World, raw: Any, old_rows: list[dict]) -> list[dict]:
    if isinstance(raw, dict):
        raw = list(raw.values())
    if raw in (None, ""):
        raw = []
    if not isinstance(raw, list):
        raise not_valid("PRODUCT_ROWS", raw)
    by_id = {row["ID"]: row for row in old_rows}
    out = []
    for given in raw:
        if not isinstance(given, dict):
            raise not_valid("PRODUCT_ROWS", given)
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
            raise not_valid("PRODUCT_ROWS", given) from None
        if quantity <= 0 or price < 0 or discount < 0 or not 0 <= vat_rate < 1:
            raise not_valid("PRODUCT_ROWS", given)
        previous = by_id.get(row_id) if row_id else None
        name = str(given.get("PRODUCT_NAME") or (previous or {}).get("PRODUCT_NAME") or "").strip()
        if not name and product_id:
            product = world.data.get("products", {}).get(product_id) or {}
            name = str(product.get("NAME") or product.get("name") or f"Product {product_id}")
        if not name:
            raise classic_error("Product name is not specified")
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


def apply_totals(invoice: dict) -> None:
    total = tax = 0.0
    for row in invoice["PRODUCT_ROWS"]:
        row_total, row_tax = row_amounts(row)
        total += row_total
        tax += row_tax
    invoice["PRICE"], invoice["TAX_VALUE"] = round(total, 2), round(tax, 2)
