"""Between our JSON and xero-python's models: the only place that knows the SDK's model classes.

Inbound (our payloads -> SDK models): the callers build Xero's JSON (PascalCase, the shape of
xero_accounting.yaml, dates as ISO strings, money as Decimal) with the pure mappers; `sdk_models`
reads it the way the SDK reads Xero's answers, after turning ISO dates into Xero's /Date(ms)/ form
that the SDK's deserializer expects, and unsets read-only flags the SDK would otherwise send.

Outbound (SDK models -> integrations.xero.types): plain frozen dataclasses; enums as their
values, money as the Decimal the SDK parsed, Xero's per-element ValidationErrors kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from xero_python.accounting import AccountingApi
from xero_python.api_client.deserializer import deserialize
from xero_python.api_client.serializer import serialize

from integrations.xero.errors import element_errors
from integrations.xero.types import (
    Account,
    Contact,
    ContactPage,
    ContactRef,
    CreditNote,
    Currency,
    Invoice,
    Item,
    Organisation,
    Payment,
    TaxRate,
    Written,
)

T = TypeVar("T")

# Properties Xero's OpenAPI description marks readOnly that xero-python's models default to False
# and would otherwise send in every request body ("HasAttachments": false on each invoice, payment,
# account, item...). Xero ignores them, but a request that writes a read-only property breaks the
# published contract (the sandbox's strict mode, sandbox/xero/strict.py, reports it).
READ_ONLY_DEFAULTS = ("_has_attachments",)
# Our payloads' date fields (ISO strings) that the SDK reads only as /Date(ms)/.
DATE_FIELDS = ("Date", "DueDate")


def without_read_only_defaults(value: Any, _depth: int = 0) -> None:
    """Unset, in place, read-only flags an SDK model (or list of models) carries only by default."""
    if _depth > 6 or value is None:
        return
    if isinstance(value, list):
        for item in value:
            without_read_only_defaults(item, _depth + 1)
        return
    if not hasattr(value, "openapi_types"):
        return
    for name in READ_ONLY_DEFAULTS:
        if getattr(value, name, None) is False:
            setattr(value, name, None)
    for attribute in value.openapi_types:
        child = getattr(value, f"_{attribute}", None)
        if isinstance(child, list) or hasattr(child, "openapi_types"):
            without_read_only_defaults(child, _depth + 1)


def ms_date(value: Any) -> Any:
    """An ISO date (string or date) as Xero's /Date(ms+0000)/; anything else as it is."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.date):
        ms = int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp() * 1000)
        return f"/Date({ms}+0000)/"
    return value


def _wire(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in DATE_FIELDS:
        if out.get(name):
            out[name] = ms_date(out[name])
    return out


def sdk_models(api: AccountingApi, envelope: str, rows: Sequence[Mapping[str, Any]]) -> Any:
    """The SDK's envelope model (e.g. "Invoices") holding `rows` (our Xero JSON)."""
    model = deserialize(envelope, {envelope: [_wire(row) for row in rows]}, api.get_model_finder())
    without_read_only_defaults(model)
    return model


def sdk_model(api: AccountingApi, type_name: str, row: Mapping[str, Any]) -> Any:
    """One SDK model (e.g. "Payment") from our Xero JSON."""
    model = deserialize(type_name, _wire(row), api.get_model_finder())
    without_read_only_defaults(model)
    return model


# --- SDK models -> our types ---------------------------------------------------------------------


def enum_value(value: Any) -> str:
    value = getattr(value, "value", value)
    return "" if value is None else str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _id(value: Any) -> str:
    return "" if value is None else str(value)


def written(element: Any, result: T) -> Written[T]:
    return Written(
        result=result,
        errors=tuple(element_errors(element)),
        status=_text(getattr(element, "status_attribute_string", None)) or "OK",
    )


def contact(model: Any, *, with_data: bool = False) -> Contact:
    return Contact(
        contact_id=_id(model.contact_id),
        name=_text(model.name),
        contact_number=_text(model.contact_number),
        contact_status=enum_value(model.contact_status) or "ACTIVE",
        is_customer=bool(model.is_customer),
        data=MappingProxyType(serialize(model)) if with_data else MappingProxyType({}),
    )


def contact_page(envelope: Any, page: int, *, with_data: bool = False) -> ContactPage:
    pagination = getattr(envelope, "pagination", None)
    return ContactPage(
        contacts=tuple(contact(c, with_data=with_data) for c in envelope.contacts or []),
        page=page,
        page_count=getattr(pagination, "page_count", None) if pagination else None,
        item_count=getattr(pagination, "item_count", None) if pagination else None,
    )


def invoice(model: Any) -> Invoice:
    ref = model.contact
    return Invoice(
        invoice_id=_id(model.invoice_id),
        invoice_number=_text(model.invoice_number),
        type=enum_value(model.type),
        status=enum_value(model.status),
        reference=_text(model.reference),
        url=_text(model.url),
        currency_code=enum_value(model.currency_code),
        currency_rate=model.currency_rate,
        sub_total=model.sub_total,
        total_tax=model.total_tax,
        total=model.total,
        amount_due=model.amount_due,
        amount_paid=model.amount_paid,
        fully_paid_on_date=model.fully_paid_on_date,
        updated_date_utc=model.updated_date_utc,
        contact=ContactRef(contact_id=_id(ref.contact_id), name=_text(ref.name)) if ref is not None else None,
        data=MappingProxyType(invoice_json(model)),
    )


def invoice_json(model: Any) -> dict[str, Any]:
    """The SDK's Invoice as Xero's JSON names it (what drift compares and payments read)."""
    ref = model.contact
    return {
        "InvoiceID": _id(model.invoice_id),
        "Type": enum_value(model.type),
        "InvoiceNumber": _text(model.invoice_number),
        "Reference": _text(model.reference),
        "Date": model.date,
        "DueDate": model.due_date,
        "CurrencyCode": enum_value(model.currency_code),
        "LineAmountTypes": enum_value(model.line_amount_types),
        "Status": enum_value(model.status),
        "Url": _text(model.url),
        "Contact": {"ContactID": _id(ref.contact_id), "Name": _text(ref.name)} if ref else {},
        "LineItems": [
            {
                "Description": _text(line.description),
                "Quantity": line.quantity,
                "UnitAmount": line.unit_amount,
                "DiscountRate": line.discount_rate,
                "DiscountAmount": line.discount_amount,
                "AccountCode": _text(line.account_code),
                "TaxType": _text(line.tax_type),
                "ItemCode": _text(line.item_code),
                "LineAmount": line.line_amount,
                "TaxAmount": line.tax_amount,
            }
            for line in model.line_items or []
        ],
        "SubTotal": model.sub_total,
        "TotalTax": model.total_tax,
        "Total": model.total,
        "AmountDue": model.amount_due,
        "AmountPaid": model.amount_paid,
        "FullyPaidOnDate": model.fully_paid_on_date,
        "UpdatedDateUTC": model.updated_date_utc,
        "HasLines": model.line_items is not None,
    }


def credit_note(model: Any) -> CreditNote:
    return CreditNote(
        credit_note_id=_id(model.credit_note_id),
        credit_note_number=_text(model.credit_note_number),
        type=enum_value(model.type),
        status=enum_value(model.status),
        total=model.total,
        remaining_credit=model.remaining_credit,
        currency_rate=model.currency_rate,
        updated_date_utc=model.updated_date_utc,
    )


def payment(model: Any) -> Payment:
    return Payment(payment_id=_id(model.payment_id), amount=model.amount, status=enum_value(model.status))


def item(model: Any, *, with_data: bool = False) -> Item:
    return Item(
        item_id=_id(model.item_id),
        code=_text(model.code),
        name=_text(model.name),
        data=MappingProxyType(serialize(model)) if with_data else MappingProxyType({}),
    )


def account(model: Any) -> Account:
    return Account(
        account_id=_id(model.account_id),
        code=_text(model.code),
        name=_text(model.name),
        type=enum_value(model.type),
        status=enum_value(model.status),
        tax_type=_text(model.tax_type),
        enable_payments_to_account=bool(model.enable_payments_to_account),
        updated_date_utc=model.updated_date_utc,
    )


def tax_rate(model: Any) -> TaxRate:
    return TaxRate(
        tax_type=_text(model.tax_type),
        name=_text(model.name),
        status=enum_value(model.status),
        effective_rate=model.effective_rate,
        can_apply_to_revenue=bool(model.can_apply_to_revenue),
        report_tax_type=_text(model.report_tax_type),
    )


def currency(model: Any) -> Currency:
    return Currency(code=enum_value(model.code), description=_text(model.description))


def organisation(model: Any) -> Organisation:
    return Organisation(
        organisation_id=_id(model.organisation_id),
        name=_text(model.name),
        base_currency=enum_value(model.base_currency),
    )
