"""The accounting API routes of contacts, items and payments (/xero/api.xro/2.0/...): thin handlers
over the entity modules (invoices and credit notes: endpoints.py).
"""

from __future__ import annotations

import functools

from flask import Blueprint, Response

from sandbox.xero import contacts, items, payments, settings
from sandbox.xero.api import (
    PREFIX,
    Call,
    accounting,
    not_found,
    unitdp,
)
from sandbox.xero.endpoints import batch_writer, write_routes
from sandbox.xero.listing import arg, csv_arg, select
from sandbox.xero.wire import envelope, is_guid, json_response, parse_bool

CONTACT_QUERY_FIELDS = {
    "ContactID",
    "Name",
    "ContactNumber",
    "AccountNumber",
    "EmailAddress",
    "FirstName",
    "LastName",
    "ContactStatus",
    "IsCustomer",
    "IsSupplier",
    "UpdatedDateUTC",
    "CompanyNumber",
    "TaxNumber",
    "DefaultCurrency",
}


def dotted(entity: dict, path: str) -> object:
    value: object = entity
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def find_contact(org, key: str) -> dict | None:
    """A contact by its ContactID, or by its ContactNumber (Xero accepts either in the path)."""
    return org.contacts.get(key.lower()) if is_guid(key) else org.contact_numbered(key)


def register(bp: Blueprint, sandbox) -> None:
    world = sandbox.xero
    api = accounting(world, sandbox)
    batch = batch_writer(world, sandbox)
    writes = functools.partial(write_routes, bp, sandbox, api, batch)

    # --- contacts ------------------------------------------------------------------------------
    @bp.get(f"{PREFIX}/Contacts")
    @api
    def get_contacts(call: Call):
        org = call.org
        with sandbox.lock:
            ids = csv_arg("IDs")
            source = (
                [org.contacts[i.lower()] for i in ids if i.lower() in org.contacts] if ids else org.contacts.values()
            )
            archived = bool(ids) or parse_bool(arg("includeArchived"), default=False)
            term = (arg("searchTerm") or "").casefold()

            def extra(contact: dict) -> bool:
                if not archived and contact.get("ContactStatus") == "ARCHIVED":
                    return False
                if not term:
                    return True
                fields = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
                return any(term in (contact.get(field) or "").casefold() for field in fields)

            page = select(source, fields=CONTACT_QUERY_FIELDS, resolve=dotted, paged=True, extra=extra)
            full = not parse_bool(arg("summaryOnly"), default=False)
            rendered = [contacts.render_contact(contact, full=full) for contact in page.items]
        return json_response(200, envelope("Contacts", rendered, page.pagination))

    @bp.get(f"{PREFIX}/Contacts/<key>")
    @api
    def get_contact(call: Call, key: str):
        with sandbox.lock:
            # The same path serves ContactID and ContactNumber; Xero tells them apart by GUID shape.
            contact = find_contact(call.org, key)
            if contact is None:
                return not_found()
            rendered = contacts.render_contact(contact)
        return json_response(200, envelope("Contacts", [rendered]))

    def contact_writer(call: Call, create_only: bool, target: str | None = None):
        def writer(element):
            return contacts.write_contact(call.org, element, target_id=target, create_only=create_only)

        return writer, contacts.render_outcome

    writes("Contacts", "Contact", "ContactID", find_contact, contact_writer)

    # --- items ---------------------------------------------------------------------------------
    @bp.get(f"{PREFIX}/Items")
    @api
    def get_items(call: Call):
        places = unitdp()
        with sandbox.lock:
            page = select(call.org.items.values(), fields=items.QUERY_FIELDS, resolve=dotted, paged=False)
            rendered = [items.render_item(item, places) for item in page.items]
        return json_response(200, envelope("Items", rendered))

    @bp.get(f"{PREFIX}/Items/<key>")
    @api
    def get_item(call: Call, key: str):
        with sandbox.lock:
            item = call.org.item_by_id_or_code(key)
            if item is None:
                return not_found()
            rendered = items.render_item(item, unitdp())
        return json_response(200, envelope("Items", [rendered]))

    def item_writer(call: Call, create_only: bool, target: str | None = None):
        places = unitdp()

        def writer(element):
            return items.write_item(call.org, element, target_id=target, create_only=create_only, unitdp=places)

        return writer, lambda outcome: items.render_outcome(outcome, places)

    writes("Items", "Item", "ItemID", lambda org, key: org.item_by_id_or_code(key), item_writer)

    @bp.delete(f"{PREFIX}/Items/<key>")
    @api
    def delete_item(call: Call, key: str):
        with sandbox.lock:
            item = call.org.items.get(key.lower())
            if item is None:
                return not_found()
            call.org.remove_item(item)
        return Response(status=204)

    # --- payments ------------------------------------------------------------------------------
    def payment_writer(call: Call):
        return (lambda element: payments.create_payment(call.org, element)), (
            lambda outcome: payments.render_outcome(call.org, outcome)
        )

    @bp.put(f"{PREFIX}/Payments")
    @api
    def put_payments(call: Call):
        return batch(call, "Payments", "Payment", *payment_writer(call))

    @bp.post(f"{PREFIX}/Payments")
    @api
    def post_payments(call: Call):
        # The SDK's create_payment sends one bare Payment object here.
        return batch(call, "Payments", "Payment", *payment_writer(call), single_ok=True)

    @bp.get(f"{PREFIX}/Payments")
    @api
    def get_payments(call: Call):
        org = call.org
        with sandbox.lock:
            page = select(
                org.payments.values(), fields=payments.QUERY_FIELDS, resolve=payments.resolve_field(org), paged=True
            )
            rendered = [payments.render_payment(org, payment) for payment in page.items]
        return json_response(200, envelope("Payments", rendered, page.pagination))

    @bp.get(f"{PREFIX}/Payments/<key>")
    @api
    def get_payment(call: Call, key: str):
        with sandbox.lock:
            payment = payments.find_payment(call.org, key)
            if payment is None:
                return not_found()
            rendered = payments.render_payment(call.org, payment)
        return json_response(200, envelope("Payments", [rendered]))

    @bp.post(f"{PREFIX}/Payments/<key>")
    @api
    def post_payment(call: Call, key: str):
        with sandbox.lock:
            payment = payments.find_payment(call.org, key)
        if payment is None:
            return not_found()

        def writer(element):
            return payments.delete_payment(call.org, payment, element)

        return batch(
            call, "Payments", "Payment", writer, lambda outcome: payments.render_outcome(call.org, outcome), True
        )

    # --- settings ------------------------------------------------------------------------------
    settings.register(bp, sandbox, api, dotted)
