"""XeroClient: the connector's named, typed calls to Xero's Accounting API.

    client = XeroClient(connection, interactive=True)
    for answer in client.invoices_upsert(bodies, idempotency_key=key):
        if not answer.ok:
            print(answer.errors)            # Xero's ValidationErrors for that invoice
        else:
            print(answer.result.invoice_id)

Callers pass Xero's JSON (the pure mappers' output: PascalCase, ISO dates, Decimal money) and get
back the frozen dataclasses of integrations.xero.types; the SDK's operation names and models stay
in this package (convert.py, transport.py). Every method is one HTTP request through the transport:
single-flight token refresh, the tenant's throttle, errors classified where they arise
(integrations.xero.errors). Batch writes go with summarizeErrors=false and the caller's
Idempotency-Key, and answer per element (`Written`); a request refused as a whole raises.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from integrations.xero import convert
from integrations.xero.errors import element_errors
from integrations.xero.query import ACTIVE, contacts_where, sales_invoices_with_url_prefix
from integrations.xero.transport import XeroCredentials, XeroTransport
from integrations.xero.types import (
    Account,
    Contact,
    ContactMatch,
    ContactPage,
    CreditNote,
    Currency,
    Invoice,
    Item,
    Organisation,
    Payment,
    TaxRate,
    Written,
)

__all__ = ["XeroClient", "XeroCredentials", "element_errors"]

Row = Mapping[str, Any]  # one record as Xero's JSON (what sync.mappers build)

# Xero answers GET /Invoices?IDs=… with whole invoices (lines included) only for a paged request;
# ~50 GUIDs keep the URL short (xero-api.md §2.3).
INVOICE_IDS_MAX = 50


class XeroClient:
    """One per connection per thread (the SDK's ApiClient keeps per-call state).

    It holds its transport rather than being one, so no caller can reach the SDK's operation names
    through it: the named methods below are the whole surface.
    """

    def __init__(
        self, connection: XeroCredentials, *, interactive: bool = False, on_call: Callable[[], None] | None = None
    ) -> None:
        """`on_call` runs before each request (the push renews its job leases and counts calls)."""
        self._transport = XeroTransport(connection, interactive=interactive, on_call=on_call)
        self._call = self._transport.call
        self._api = self._transport.accounting

    @property
    def connection(self) -> XeroCredentials:
        """The credentials as last refreshed (a fresh copy after a token refresh)."""
        return self._transport.connection

    @property
    def calls(self) -> int:
        """Requests asked of this client so far (the reports' and benches' Xero call counts)."""
        return self._transport.calls

    # --- contacts ----------------------------------------------------------------------------------

    def contacts_list(
        self, page: int, *, page_size: int, include_archived: bool = False, summary_only: bool = False
    ) -> ContactPage:
        """GET /Contacts, one page. Each contact carries its JSON (`data`) unless `summary_only`."""
        kwargs: dict[str, Any] = {"page": page, "page_size": page_size}
        if include_archived:
            kwargs["include_archived"] = True
        if summary_only:
            kwargs["summary_only"] = True
        answer = self._call("get_contacts", **kwargs)
        return convert.contact_page(answer, page, with_data=not summary_only)

    def contacts_find(self, matches: Sequence[ContactMatch]) -> list[Contact]:
        """GET /Contacts?where=<term> OR <term> …: the contacts any match names exactly, one request.
        A value a `where` cannot carry raises ValueError (query.where_safe; use contacts_search)."""
        answer = self._call("get_contacts", where=contacts_where(matches))
        return [convert.contact(c) for c in answer.contacts or []]

    def contacts_search(self, term: str, *, page: int, page_size: int) -> list[Contact]:
        """GET /Contacts?searchTerm=… (substring of name, names, number or e-mail), summaries, one page."""
        answer = self._call("get_contacts", search_term=term, page=page, page_size=page_size, summary_only=True)
        return [convert.contact(c) for c in answer.contacts or []]

    def contacts_create(self, batch: Sequence[Row], *, idempotency_key: str) -> list[Written[Contact]]:
        """PUT /Contacts (new ones only), Xero's answer per element."""
        contacts = convert.sdk_models(self._api, "Contacts", batch)
        answer = self._call(
            "create_contacts", contacts=contacts, summarize_errors=False, idempotency_key=idempotency_key
        )
        return [convert.written(c, convert.contact(c)) for c in answer.contacts or []]

    def contacts_upsert(self, batch: Sequence[Row], *, idempotency_key: str) -> list[Written[Contact]]:
        """POST /Contacts: updates those with a ContactID, creates the others; answer per element."""
        contacts = convert.sdk_models(self._api, "Contacts", batch)
        answer = self._call(
            "update_or_create_contacts", contacts=contacts, summarize_errors=False, idempotency_key=idempotency_key
        )
        return [convert.written(c, convert.contact(c)) for c in answer.contacts or []]

    # --- invoices ----------------------------------------------------------------------------------

    def invoices_get(self, ids: Sequence[str], *, lines: bool = True) -> list[Invoice]:
        """GET /Invoices?IDs=… (at most INVOICE_IDS_MAX). With `lines` Xero sends whole invoices with
        4-decimal unit prices (page=1); without, summaries (enough for amounts due and paid)."""
        if len(ids) > INVOICE_IDS_MAX:
            raise ValueError(f"at most {INVOICE_IDS_MAX} InvoiceIDs per request, not {len(ids)}")
        kwargs: dict[str, Any] = {"i_ds": [str(i) for i in ids]}
        if lines:
            kwargs.update(page=1, page_size=INVOICE_IDS_MAX, unitdp=4)
        answer = self._call("get_invoices", **kwargs)
        return [convert.invoice(i) for i in answer.invoices or []]

    def invoices_by_number(self, numbers: Sequence[str]) -> list[Invoice]:
        """GET /Invoices?InvoiceNumbers=… (summaries)."""
        answer = self._call("get_invoices", invoice_numbers=list(numbers))
        return [convert.invoice(i) for i in answer.invoices or []]

    def invoices_modified_since(self, since: dt.datetime, *, page: int, page_size: int) -> list[Invoice]:
        """GET /Invoices with If-Modified-Since, oldest change first, whole invoices (4 dp), one page."""
        answer = self._call(
            "get_invoices",
            if_modified_since=since,
            order="UpdatedDateUTC ASC",
            page=page,
            page_size=page_size,
            unitdp=4,
        )
        return [convert.invoice(i) for i in answer.invoices or []]

    def invoices_by_url_prefix(self, prefix: str, *, page: int, page_size: int) -> list[Invoice]:
        """Sales invoices (ACCREC) whose Url starts with `prefix`, summaries, one page."""
        where = sales_invoices_with_url_prefix(prefix)
        answer = self._call("get_invoices", where=where, page=page, page_size=page_size, summary_only=True)
        return [convert.invoice(i) for i in answer.invoices or []]

    def invoices_upsert(self, batch: Sequence[Row], *, idempotency_key: str) -> list[Written[Invoice]]:
        """POST /Invoices (4-dp unit prices): updates those with an InvoiceID, creates the others."""
        invoices = convert.sdk_models(self._api, "Invoices", batch)
        answer = self._call(
            "update_or_create_invoices",
            invoices=invoices,
            summarize_errors=False,
            unitdp=4,
            idempotency_key=idempotency_key,
        )
        return [convert.written(i, convert.invoice(i)) for i in answer.invoices or []]

    def invoice_online_url(self, invoice_id: str) -> str:
        """GET /Invoices/{id}/OnlineInvoice: the customer's link ("" when Xero gives none)."""
        answer = self._call("get_online_invoice", invoice_id=str(invoice_id))
        urls = [o.online_invoice_url for o in answer.online_invoices or [] if o.online_invoice_url]
        return str(urls[0]) if urls else ""

    # --- credit notes and payments -----------------------------------------------------------------

    def credit_notes_upsert(self, batch: Sequence[Row], *, idempotency_key: str) -> list[Written[CreditNote]]:
        """POST /CreditNotes (4-dp unit prices), answer per element."""
        notes = convert.sdk_models(self._api, "CreditNotes", batch)
        answer = self._call(
            "update_or_create_credit_notes",
            credit_notes=notes,
            summarize_errors=False,
            unitdp=4,
            idempotency_key=idempotency_key,
        )
        return [convert.written(n, convert.credit_note(n)) for n in answer.credit_notes or []]

    def credit_notes_modified_since(self, since: dt.datetime, *, page: int, page_size: int) -> list[CreditNote]:
        """GET /CreditNotes with If-Modified-Since, oldest change first, one page."""
        answer = self._call(
            "get_credit_notes",
            if_modified_since=since,
            order="UpdatedDateUTC ASC",
            page=page,
            page_size=page_size,
            unitdp=4,
        )
        return [convert.credit_note(n) for n in answer.credit_notes or []]

    def payment_create(
        self,
        *,
        invoice_id: str,
        account_code: str,
        date: dt.date,
        amount: Decimal,
        reference: str,
        idempotency_key: str,
    ) -> Payment:
        """PUT /Payments: `amount` paid on the invoice to the account with that code."""
        payment = convert.sdk_model(
            self._api,
            "Payment",
            {
                "Invoice": {"InvoiceID": str(invoice_id)},
                "Account": {"Code": account_code},
                "Date": date,
                "Amount": amount,
                "Reference": reference,
            },
        )
        answer = self._call("create_payment", payment=payment, idempotency_key=idempotency_key)
        payments = getattr(answer, "payments", None) or []
        return convert.payment(payments[0]) if payments else Payment(payment_id="", amount=amount)

    # --- items -------------------------------------------------------------------------------------

    def items_list(self) -> list[Item]:
        """GET /Items, all of them (not paged, xero-api.md §6.1), each with its JSON (`data`)."""
        answer = self._call("get_items")
        return [convert.item(i, with_data=True) for i in answer.items or []]

    def items_create(self, batch: Sequence[Row], *, idempotency_key: str) -> list[Written[Item]]:
        """PUT /Items, answer per element."""
        items = convert.sdk_models(self._api, "Items", batch)
        answer = self._call("create_items", items=items, summarize_errors=False, idempotency_key=idempotency_key)
        return [convert.written(i, convert.item(i)) for i in answer.items or []]

    def item_delete(self, item_id: str) -> None:
        """DELETE /Items/{id} (a 404 raises PermanentError with status 404)."""
        self._call("delete_item", item_id=str(item_id))

    # --- settings ----------------------------------------------------------------------------------

    def accounts_list(self, *, modified_since: dt.datetime | None = None, active_only: bool = False) -> list[Account]:
        """GET /Accounts: the chart, or only what changed since `modified_since` (any status), or
        only the ACTIVE accounts."""
        kwargs: dict[str, Any] = {}
        if modified_since is not None:
            kwargs["if_modified_since"] = modified_since
        if active_only:
            kwargs["where"] = ACTIVE
        answer = self._call("get_accounts", **kwargs)
        return [convert.account(a) for a in answer.accounts or []]

    def tax_rates_list(self, *, active_only: bool = False) -> list[TaxRate]:
        answer = self._call("get_tax_rates", **({"where": ACTIVE} if active_only else {}))
        return [convert.tax_rate(t) for t in answer.tax_rates or []]

    def currencies_list(self) -> list[Currency]:
        answer = self._call("get_currencies")
        return [convert.currency(c) for c in answer.currencies or []]

    def organisation_get(self) -> Organisation | None:
        """GET /Organisation: the connected organisation (None if Xero lists none)."""
        answer = self._call("get_organisations")
        organisations = answer.organisations or []
        return convert.organisation(organisations[0]) if organisations else None
