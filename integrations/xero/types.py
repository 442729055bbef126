"""What XeroClient's typed methods return: plain frozen dataclasses, no xero-python models.

Field names follow the SDK's (snake_case of Xero's JSON names: `invoice_id`, `amount_paid`,
`updated_date_utc`) so code that read SDK models reads these unchanged. Enums arrive as their plain
string values ("AUTHORISED", "ACCREC", "NZD"), money as Decimal (the SDK parses JSON numbers as
Decimal; nothing here passes through float), dates as `date`, timestamps as aware `datetime`.

Writes in batches (summarizeErrors=false) answer per element: `Written.result` is Xero's element
(the record as saved, or as refused), `Written.errors` Xero's ValidationErrors for it (nested ones
such as a line's too), `Written.ok` whether Xero saved it.

Where a pure mapper reads Xero's own JSON (the imports, drift), the record also carries `data`:
the element as Xero's PascalCase JSON, read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Generic, TypeVar

EMPTY: Mapping[str, Any] = MappingProxyType({})

T = TypeVar("T")


@dataclass(frozen=True)
class Written(Generic[T]):
    """One element of a batch write's answer."""

    result: T
    errors: tuple[str, ...] = ()
    status: str = "OK"  # Xero's StatusAttributeString: OK, WARNING or ERROR

    @property
    def ok(self) -> bool:
        return self.status != "ERROR" and not self.errors


@dataclass(frozen=True)
class ContactRef:
    contact_id: str
    name: str


@dataclass(frozen=True)
class Contact:
    contact_id: str
    name: str
    contact_number: str = ""
    contact_status: str = "ACTIVE"
    is_customer: bool = False
    # Xero's JSON of the contact; filled by contacts_list (the import maps it), empty elsewhere.
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class ContactMatch:
    """One exact-match term of a contacts lookup (XeroClient.contacts_find): a ContactNumber, or a
    Name as Xero compares it. Build with ContactMatch.number(...) / ContactMatch.name(...)."""

    field: str  # "ContactNumber" or "Name"
    value: str

    @classmethod
    def number(cls, value: str) -> ContactMatch:
        return cls("ContactNumber", value)

    @classmethod
    def name(cls, value: str) -> ContactMatch:
        return cls("Name", value)


@dataclass(frozen=True)
class ContactPage:
    contacts: tuple[Contact, ...]
    page: int
    page_count: int | None = None
    item_count: int | None = None


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    invoice_number: str = ""
    type: str = ""
    status: str = ""
    reference: str = ""
    url: str = ""
    currency_code: str = ""
    currency_rate: Decimal | None = None
    sub_total: Decimal | None = None
    total_tax: Decimal | None = None
    total: Decimal | None = None
    amount_due: Decimal | None = None
    amount_paid: Decimal | None = None
    fully_paid_on_date: date | None = None
    updated_date_utc: datetime | None = None
    contact: ContactRef | None = None
    # Xero's invoice as its JSON names it, lines included when Xero sent them ("HasLines" says):
    # what sync.mappers.drift compares and what payment details are read from.
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class CreditNote:
    credit_note_id: str
    credit_note_number: str = ""
    type: str = ""
    status: str = ""
    total: Decimal | None = None
    remaining_credit: Decimal | None = None
    currency_rate: Decimal | None = None
    updated_date_utc: datetime | None = None


@dataclass(frozen=True)
class Payment:
    payment_id: str
    amount: Decimal | None = None
    status: str = ""


@dataclass(frozen=True)
class Item:
    item_id: str
    code: str = ""
    name: str = ""
    # Xero's JSON of the item (the import maps it).
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Account:
    account_id: str
    code: str = ""
    name: str = ""
    type: str = ""
    status: str = ""
    tax_type: str = ""
    enable_payments_to_account: bool = False
    updated_date_utc: datetime | None = None


@dataclass(frozen=True)
class TaxRate:
    tax_type: str
    name: str = ""
    status: str = ""
    effective_rate: Decimal | None = None
    can_apply_to_revenue: bool = False
    report_tax_type: str = ""


@dataclass(frozen=True)
class Currency:
    code: str
    description: str = ""


@dataclass(frozen=True)
class Organisation:
    organisation_id: str
    name: str = ""
    base_currency: str = ""


__all__ = [
    "Account",
    "Contact",
    "ContactMatch",
    "ContactPage",
    "ContactRef",
    "CreditNote",
    "Currency",
    "Invoice",
    "Item",
    "Organisation",
    "Payment",
    "TaxRate",
    "Written",
]
