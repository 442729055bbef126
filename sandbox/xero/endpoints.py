"""The accounting API routes (/xero/api.xro/2.0/...): thin handlers over the entity modules.

Here: invoices and credit notes, and the batch-write handler every entity shares; contacts, items
and payments are in endpoints_directory.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Blueprint, Response

from sandbox.xero import credit_notes, invoice_render, invoices
from sandbox.xero.api import (
    PREFIX,
    Call,
    accounting,
    not_found,
    read_elements,
    summarize_errors,
    unitdp,
    write,
)
from sandbox.xero.listing import arg, csv_arg, select
from sandbox.xero.store import Outcome
from sandbox.xero.wire import ZERO_GUID, envelope, is_guid, json_response, ms_date, parse_bool, validation_exception


def batch_writer(world, sandbox) -> Callable:
    """The handler of a PUT/POST of `{"<key>": [...]}` (shared by every entity's routes)."""

    def batch(call: Call, key: str, entity: str, writer: Callable, render: Callable, single_ok: bool = False):
        """A PUT/POST of `{"<key>": [...]}`: every element is written on its own (valid ones are kept
        even when others fail); summarizeErrors decides between a 400 of the failures and a 200 of all."""

        def perform():
            _, elements = read_elements(key, entity, single_ok=single_ok)
            outcomes: list[Outcome] = [writer(element) for element in elements]
            events = [event for outcome in outcomes for event in outcome.events]
            failed = [outcome for outcome in outcomes if not outcome.ok]
            if failed and summarize_errors():
                return 400, validation_exception([render(outcome) for outcome in failed]), events
            return 200, envelope(key, [render(outcome) for outcome in outcomes]), events

        return write(world, sandbox, call, perform)

    return batch


def write_routes(
    bp: Blueprint,
    sandbox,
    api: Callable,
    batch: Callable,
    plural: str,
    singular: str,
    id_field: str,
    find: Callable,
    writer: Callable,
) -> None:
    """The writes every entity shares: PUT /<plural> (create only), POST /<plural> (create, or update
    the elements that name an existing one) and POST /<plural>/<key> (update that one; 404 when
    `find(org, key)` has none). `writer(call, create_only, target_id)` gives the element writer and
    the outcome renderer."""

    def put_all(call: Call):
        return batch(call, plural, singular, *writer(call, True))

    def post_all(call: Call):
        return batch(call, plural, singular, *writer(call, False))

    def post_one(call: Call, key: str):
        with sandbox.lock:
            found = find(call.org, key)
        if found is None:
            return not_found()
        return batch(call, plural, singular, *writer(call, False, found[id_field]))

    name = plural.lower()
    bp.put(f"{PREFIX}/{plural}", endpoint=f"put_{name}")(api(put_all))
    bp.post(f"{PREFIX}/{plural}", endpoint=f"post_{name}")(api(post_all))
    bp.post(f"{PREFIX}/{plural}/<key>", endpoint=f"post_one_{name}")(api(post_one))


def register(bp: Blueprint, sandbox) -> None:
    world = sandbox.xero
    api = accounting(world, sandbox)
    batch = batch_writer(world, sandbox)
    writes = functools.partial(write_routes, bp, sandbox, api, batch)

    # --- invoices ------------------------------------------------------------------------------
    @bp.get(f"{PREFIX}/Invoices")
    @api
    def get_invoices(call: Call):
        org, places = call.org, unitdp()
        with sandbox.lock:
            ids = csv_arg("IDs")
            source = (
                [org.invoices[i.lower()] for i in ids if i.lower() in org.invoices] if ids else org.invoices.values()
            )
            numbers = set(csv_arg("InvoiceNumbers") or [])
            contact_ids = {c.lower() for c in csv_arg("ContactIDs") or []}
            statuses = {s.upper() for s in csv_arg("Statuses") or []}
            mine = parse_bool(arg("createdByMyApp"), default=False)
            term = (arg("searchTerm") or "").casefold()

            def extra(invoice: dict) -> bool:
                return (
                    (not numbers or invoice.get("InvoiceNumber") in numbers)
                    and (not contact_ids or invoice["ContactID"] in contact_ids)
                    and (not statuses or invoice["Status"] in statuses)
                    and (not mine or invoice["CreatedByClient"] == call.client_id)
                    and (
                        not term
                        or term in (invoice.get("InvoiceNumber") or "").casefold()
                        or term in (invoice.get("Reference") or "").casefold()
                    )
                )

            page = select(
                source,
                fields=invoice_render.QUERY_FIELDS,
                resolve=invoice_render.resolve_field(org),
                paged=True,
                extra=extra,
            )
            # Unpaged lists carry no line items and only a contact summary (xero-api.md §2.3).
            full = page.pagination is not None and not parse_bool(arg("summaryOnly"), default=False)
            rendered = [invoice_render.render_invoice(org, invoice, full=full, unitdp=places) for invoice in page.items]
        return json_response(200, envelope("Invoices", rendered, page.pagination))

    @bp.get(f"{PREFIX}/Invoices/<key>")
    @api
    def get_invoice(call: Call, key: str):
        with sandbox.lock:
            invoice = call.org.invoice_by_id_or_number(key)
            if invoice is None:
                return not_found()
            rendered = invoice_render.render_invoice(call.org, invoice, unitdp=unitdp())
        return json_response(200, envelope("Invoices", [rendered]))

    @bp.get(f"{PREFIX}/Invoices/<key>/OnlineInvoice")
    @api
    def get_online_invoice(call: Call, key: str):
        # getOnlineInvoice (xero_accounting.yaml): {"OnlineInvoices": [{"OnlineInvoiceUrl": ...}]}. Xero
        # offers the customer-facing page only for approved sales invoices (xero-api.md §3, table).
        with sandbox.lock:
            invoice = call.org.invoices.get(key.lower()) if is_guid(key) else None
            if invoice is None:
                return not_found()
            refused = invoice_render.online_invoice_refusal(invoice)
            if refused:
                return json_response(400, validation_exception([{"ValidationErrors": [{"Message": refused}]}]))
            url = f"{sandbox.base_url}/xero/in/{invoice_render.online_invoice_token(invoice)}"
        return json_response(200, envelope("OnlineInvoices", [{"OnlineInvoiceUrl": url}]))

    @bp.get("/xero/in/<token>")
    def online_invoice_page(token: str):
        # What the customer opens: a plain page naming the invoice and what is due.
        with sandbox.lock:
            found = invoice_render.find_by_online_token(world, token)
            if found is None:
                return not_found()
            org, invoice = found
            text = (
                f"<!doctype html><title>Invoice {invoice.get('InvoiceNumber') or ''}</title>"
                f"<h1>{org.name}: invoice {invoice.get('InvoiceNumber') or ''}</h1>"
                f"<p>Total {invoice.get('Total')} {invoice.get('CurrencyCode') or ''}; "
                f"paid {invoice.get('AmountPaid')}; due {invoice.get('AmountDue')}.</p>"
            )
        return Response(text, mimetype="text/html")

    def invoice_writer(call: Call, create_only: bool, target: str | None = None):
        places = unitdp()

        def writer(element):
            return invoices.write_invoice(
                call.org, element, target_id=target, create_only=create_only, unitdp=places, client_id=call.client_id
            )

        return writer, lambda outcome: invoice_render.render_outcome(call.org, outcome, places)

    writes("Invoices", "Invoice", "InvoiceID", lambda org, key: org.invoice_by_id_or_number(key), invoice_writer)

    # --- credit notes (sandbox/xero/credit_notes.py) --------------------------------------------
    @bp.get(f"{PREFIX}/CreditNotes")
    @api
    def get_credit_notes(call: Call):
        org, places = call.org, unitdp()
        with sandbox.lock:
            page = select(
                credit_notes.store(org).values(),
                fields=credit_notes.QUERY_FIELDS,
                resolve=credit_notes.resolve_field(org),
                paged=True,
            )
            rendered = [credit_notes.render_credit_note(org, note, unitdp=places) for note in page.items]
        return json_response(200, envelope("CreditNotes", rendered, page.pagination))

    @bp.get(f"{PREFIX}/CreditNotes/<key>")
    @api
    def get_credit_note(call: Call, key: str):
        with sandbox.lock:
            note = credit_notes.find(call.org, key)
            if note is None:
                return not_found()
            rendered = credit_notes.render_credit_note(call.org, note, unitdp=unitdp())
        return json_response(200, envelope("CreditNotes", [rendered]))

    def credit_note_writer(call: Call, create_only: bool, target: str | None = None):
        places = unitdp()

        def writer(element):
            return credit_notes.write_credit_note(
                call.org, element, target_id=target, create_only=create_only, unitdp=places, client_id=call.client_id
            )

        return writer, lambda outcome: credit_notes.render_outcome(call.org, outcome, places)

    writes("CreditNotes", "CreditNote", "InvoiceID", credit_notes.find, credit_note_writer)

    @bp.put(f"{PREFIX}/CreditNotes/<key>/Allocations")
    @api
    def put_credit_note_allocations(call: Call, key: str):
        with sandbox.lock:
            found = credit_notes.find(call.org, key)
        if found is None:
            return not_found()

        def render(outcome):
            allocation = outcome.entity
            body = {
                "AllocationID": allocation.get("AllocationID"),
                "Amount": float(allocation.get("Amount") or 0),
                "Date": ms_date(allocation["Date"]),
                "Invoice": {"InvoiceID": allocation.get("InvoiceID") or ZERO_GUID},
            }
            body["StatusAttributeString"] = "OK" if outcome.ok else "ERROR"
            if not outcome.ok:
                body["ValidationErrors"] = [{"Message": m} for m in outcome.errors]
            return body

        return batch(
            call,
            "Allocations",
            "Allocation",
            lambda element: credit_notes.allocate(call.org, found, element),
            render,
            True,
        )
