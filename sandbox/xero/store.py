"""One Xero organisation in memory: its objects and the indexes that keep look-ups O(1).

Objects are plain dicts keyed like Xero's JSON (PascalCase) holding Decimals, dates and datetimes;
the entity modules render them to the wire. Callers hold `sandbox.lock` around any mutation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sandbox.xero import reference
from sandbox.xero.wire import new_id, utc_now


def name_key(name: str) -> str:
    """Xero compares contact names and item codes without regard to case or surrounding blanks."""
    return " ".join(name.split()).casefold()


@dataclass
class Outcome:
    """The result of writing one element of a batch."""

    entity: dict  # the stored object, or the rejected candidate (echoed back with its errors)
    errors: list[str] = field(default_factory=list)
    created: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (category, type, resource id)

    @property
    def ok(self) -> bool:
        return not self.errors


class Organisation:
    timezone = ZoneInfo("Pacific/Auckland")

    def __init__(self, name: str, base_currency: str = reference.DEFAULT_BASE_CURRENCY) -> None:
        self.id = new_id()
        self.name = name
        self.base_currency = base_currency
        self.created = utc_now()
        self.short_code = "!" + self.id[:5]
        self.accounts: dict[str, dict] = {}
        self.account_by_code: dict[str, str] = {}
        self.tax_rates: dict[str, dict] = {}
        self.currencies: list[str] = [base_currency] + [
            code for code in reference.ENABLED_FOREIGN_CURRENCIES if code != base_currency
        ]
        self.currencies_updated = self.created
        self.contacts: dict[str, dict] = {}
        self.contact_by_name: dict[str, str] = {}  # active contacts only
        self.contact_by_number: dict[str, str] = {}
        self.contact_by_account_number: dict[str, str] = {}
        self.invoices: dict[str, dict] = {}
        self.invoice_by_number: dict[str, str] = {}  # ACCREC invoices whose number is taken
        self.next_invoice_number = 1
        self.items: dict[str, dict] = {}
        self.item_by_code: dict[str, str] = {}
        self.payments: dict[str, dict] = {}
        self._seed()

    def _seed(self) -> None:
        for code, name, kind, tax_type, payments_enabled, system in reference.CHART_OF_ACCOUNTS:
            account = {
                "AccountID": new_id(),
                "Code": code,
                "Name": name,
                "Type": kind,
                "Status": "ACTIVE",
                "Class": reference.ACCOUNT_CLASS[kind],
                "TaxType": tax_type,
                "EnablePaymentsToAccount": payments_enabled,
                "ShowInExpenseClaims": kind in ("OVERHEADS", "EXPENSE"),
                "SystemAccount": system,
                "BankAccountNumber": "0211111234567000" if kind == "BANK" else None,
                "BankAccountType": "BANK" if kind == "BANK" else "",
                "CurrencyCode": self.base_currency if kind == "BANK" else None,
                "ReportingCode": None,
                "Description": None,
                "UpdatedDateUTC": self.created,
            }
            self.accounts[account["AccountID"]] = account
            self.account_by_code[code.upper()] = account["AccountID"]
        for tax_type, name, rate, report_type, revenue, expenses in reference.TAX_RATES:
            self.tax_rates[tax_type] = {
                "Name": name,
                "TaxType": tax_type,
                "Rate": rate,
                "ReportTaxType": report_type,
                "Status": "ACTIVE",
                "CanApplyToRevenue": revenue,
                "CanApplyToExpenses": expenses,
            }

    # --- look-ups --------------------------------------------------------------------------------
    def today(self) -> date:
        """Xero's default Date: today in the organisation's timezone."""
        return datetime.now(self.timezone).date()

    def account(self, code: str | None = None, account_id: str | None = None) -> dict | None:
        if account_id:
            return self.accounts.get(str(account_id).lower())
        if code:
            found = self.account_by_code.get(str(code).strip().upper())
            return self.accounts.get(found) if found else None
        return None

    def active_contact_named(self, name: str) -> dict | None:
        found = self.contact_by_name.get(name_key(name))
        return self.contacts.get(found) if found else None

    def contact_numbered(self, number: str) -> dict | None:
        found = self.contact_by_number.get(number)
        return self.contacts.get(found) if found else None

    def invoice_by_id_or_number(self, key: str) -> dict | None:
        found = self.invoices.get(key.lower())
        if found:
            return found
        found_id = self.invoice_by_number.get(key)
        if found_id:
            return self.invoices[found_id]
        # Numbers of deleted or ACCPAY invoices are not indexed; a single look-up may scan.
        for invoice in reversed(self.invoices.values()):
            if invoice.get("InvoiceNumber") == key:
                return invoice
        return None

    def item_by_id_or_code(self, key: str) -> dict | None:
        found = self.items.get(key.lower())
        if found:
            return found
        found_id = self.item_by_code.get(name_key(key))
        return self.items.get(found_id) if found_id else None

    # --- indexes ---------------------------------------------------------------------------------
    def index_contact(self, contact: dict, previous: dict | None) -> None:
        if previous is not None:
            for index, value in (
                (self.contact_by_name, name_key(previous.get("Name") or "")),
                (self.contact_by_number, previous.get("ContactNumber")),
                (self.contact_by_account_number, previous.get("AccountNumber")),
            ):
                if value and index.get(value) == previous["ContactID"]:
                    del index[value]
        if contact.get("ContactStatus", "ACTIVE") == "ACTIVE":
            self.contact_by_name[name_key(contact["Name"])] = contact["ContactID"]
        if contact.get("ContactNumber"):
            self.contact_by_number[contact["ContactNumber"]] = contact["ContactID"]
        if contact.get("AccountNumber"):
            self.contact_by_account_number[contact["AccountNumber"]] = contact["ContactID"]
        self.contacts[contact["ContactID"]] = contact

    def index_invoice(self, invoice: dict, previous: dict | None) -> None:
        if previous is not None:
            number = previous.get("InvoiceNumber")
            if number and self.invoice_by_number.get(number) == previous["InvoiceID"]:
                del self.invoice_by_number[number]
        # A deleted invoice's number may be reused; a voided one's may not (Xero help).
        if invoice["Type"] == "ACCREC" and invoice.get("InvoiceNumber") and invoice["Status"] != "DELETED":
            self.invoice_by_number[invoice["InvoiceNumber"]] = invoice["InvoiceID"]
        self.invoices[invoice["InvoiceID"]] = invoice

    def index_item(self, item: dict, previous: dict | None) -> None:
        if previous is not None:
            old = name_key(previous["Code"])
            if self.item_by_code.get(old) == previous["ItemID"]:
                del self.item_by_code[old]
        self.item_by_code[name_key(item["Code"])] = item["ItemID"]
        self.items[item["ItemID"]] = item

    def remove_item(self, item: dict) -> None:
        self.items.pop(item["ItemID"], None)
        code = name_key(item["Code"])
        if self.item_by_code.get(code) == item["ItemID"]:
            del self.item_by_code[code]

    def take_invoice_number(self) -> str:
        while True:
            number = f"INV-{self.next_invoice_number:04d}"
            self.next_invoice_number += 1
            if number not in self.invoice_by_number:
                return number
