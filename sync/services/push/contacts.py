"""Stage "resolve contacts": every invoice's client gets its Xero contact (found or created in bulk by
sync.services.contacts). A client that cannot be read, mapped, looked up or created fails only the
invoices of that client, with the API's words; retryable failures (429/503) retry them."""

from __future__ import annotations

from integrations.common.errors import ExternalAPIError, PermanentError
from sync.mappers import MappingError
from sync.mappers.contact import company_to_xero_contact, contact_number_for, person_to_xero_contact
from sync.models import ContactLink
from sync.services.contacts import ClientKey, contacts_ensure
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import fail
from sync.services.push.read import Clients


def contacts_stage(ctx: PassContext, items: list[Work], clients: Clients) -> None:
    mapped: dict[ClientKey, dict] = {}
    cut_notes: dict[ClientKey, list[str]] = {}
    problems: dict[ClientKey, ExternalAPIError] = dict(clients.errors)
    for key, data in clients.data.items():
        kind, bitrix24_id = key
        number = contact_number_for(kind, bitrix24_id)
        to_contact = company_to_xero_contact if kind == ContactLink.Kind.COMPANY else person_to_xero_contact
        shortened: list[str] = []
        try:
            mapped[key] = to_contact(data["entity"], data["addresses"] or None, contact_number=number, notes=shortened)
            if shortened:
                cut_notes[key] = shortened
        except MappingError as exc:
            problems[key] = PermanentError(str(exc), system="bitrix24", code="mapping")
    needed = {item.client for item in items if item.client is not None}
    linked = {
        (link.bitrix24_kind, link.bitrix24_id): link
        for link in ContactLink.objects.filter(portal=ctx.portal, bitrix24_id__in=[i for _k, i in needed])
    }
    to_ensure = {key: contact for key, contact in mapped.items() if key not in linked}
    # What was shortened to Xero's limits (name, e-mail, phones, address) is said on the log entry of
    # the invoices the contact was made for.
    cut = {key: notes for key, notes in cut_notes.items() if key in to_ensure}
    if to_ensure:
        try:
            results = contacts_ensure(portal=ctx.portal, xero=ctx.xero, clients=to_ensure)
        finally:
            ctx.report.xero_calls = ctx.xero.calls
        for key, result in results.items():
            if result.link is not None:
                linked[key] = result.link
            else:
                problems[key] = result.failure or PermanentError(result.error, system="xero")
    for item in items:
        if item.client is None:
            number = item.invoice.get("accountNumber") or item.invoice_id
            fail(
                ctx,
                item,
                PermanentError(
                    f"Invoice {number} has no company or contact; Xero needs a customer. Choose a client in Bitrix24.",
                    system="bitrix24",
                ),
            )
        elif item.client in linked:
            item.link_contact = linked[item.client]
            if item.client in cut:
                item.truncation_notes = cut[item.client]
        else:
            kind, bitrix24_id = item.client
            fail(
                ctx,
                item,
                problems.get(item.client)
                or PermanentError(
                    f"Bitrix24 did not return the {kind} {bitrix24_id} of this invoice.", system="bitrix24"
                ),
            )
