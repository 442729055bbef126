"""Stage "read": the invoices (through their source), product rows, and the clients not linked yet
with their requisite addresses, from Bitrix24 in rounds of `batch` calls. An invoice that cannot be
read fails here with Bitrix24's words; a client that cannot be read is reported to the contacts
stage, which fails only that client's invoices."""

from __future__ import annotations

from dataclasses import dataclass, field

from integrations.common.errors import ExternalAPIError, PermanentError
from sync.models import ContactLink
from sync.services.contacts import ClientKey
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import fail
from sync.services.push.reader import B24_PAGE, Reader, rows_of
from sync.services.push.sources import source_for

ADDRESS_OWNERS_PER_COMMAND = 25
CLIENT_SELECT = {
    ContactLink.Kind.COMPANY: [
        "ID",
        "TITLE",
        "PHONE",
        "EMAIL",
        "ADDRESS",
        "ADDRESS_2",
        "ADDRESS_CITY",
        "ADDRESS_REGION",
        "ADDRESS_PROVINCE",
        "ADDRESS_POSTAL_CODE",
        "ADDRESS_COUNTRY",
        "ADDRESS_COUNTRY_CODE",
    ],
    ContactLink.Kind.CONTACT: [
        "ID",
        "NAME",
        "LAST_NAME",
        "PHONE",
        "EMAIL",
        "ADDRESS",
        "ADDRESS_2",
        "ADDRESS_CITY",
        "ADDRESS_REGION",
        "ADDRESS_PROVINCE",
        "ADDRESS_POSTAL_CODE",
        "ADDRESS_COUNTRY",
        "ADDRESS_COUNTRY_CODE",
    ],
}
# crm.address ANCHOR_TYPE_ID: the requisite's owner (bitrix24-api.md §8.4) — 4 company, 3 contact.
ANCHOR_TYPE = {ContactLink.Kind.COMPANY: 4, ContactLink.Kind.CONTACT: 3}


@dataclass
class Clients:
    """The Bitrix24 clients read for the contacts stage, and why some could not be read."""

    data: dict[ClientKey, dict] = field(default_factory=dict)  # {"entity": ..., "addresses": [...]}
    errors: dict[ClientKey, ExternalAPIError] = field(default_factory=dict)


def read_stage(ctx: PassContext, items: list[Work]) -> Clients:
    reader = Reader(ctx)
    groups: dict[int, dict[int, Work]] = {}
    for item in items:
        groups.setdefault(item.entity_type, {})[item.invoice_id] = item
    sources = [source_for(entity_type)(reader, by_id) for entity_type, by_id in groups.items()]
    for source in sources:
        source.queue_first()
    reader.run_round()
    for source in sources:
        source.queue_after_first()
    for source in sources:
        for item in source.by_id.values():
            if item.invoice is not None:
                item.client = source.client_of(item.invoice)
    clients = _queue_clients(ctx, reader, [item for item in items if item.invoice is not None])
    reader.run()
    for source in sources:
        source.finish()
    for item in items:
        if item.read_error is not None:
            fail(ctx, item, item.read_error)
        elif item.invoice is None:
            fail(ctx, item, PermanentError("Bitrix24 did not return the invoice.", system="bitrix24"))
    return clients


def _queue_clients(ctx: PassContext, reader: Reader, items: list[Work]) -> Clients:
    out = Clients()
    entities: dict[ClientKey, dict] = {}
    addresses: dict[ClientKey, list[dict]] = {}
    for kind, kind_ids in _unlinked_clients(ctx, items).items():

        def take_clients(result, kind=kind):
            for entity in rows_of(result, None):
                key = (kind, int(entity["ID"]))
                entities[key] = entity
                out.data[key] = {"entity": entity, "addresses": addresses.setdefault(key, [])}

        def clients_failed(error, kind=kind, ids=None):
            for bitrix24_id in ids:
                out.errors[(kind, bitrix24_id)] = error

        def take_addresses(result, kind=kind):
            for address in rows_of(result, None):
                addresses.setdefault((kind, int(address.get("ANCHOR_ID") or 0)), []).append(address)

        for n in range(0, len(kind_ids), B24_PAGE):
            chunk = kind_ids[n : n + B24_PAGE]
            reader.add(
                f"{kind}{n}",
                f"crm.{kind}.list",
                {"filter": {"@ID": chunk}, "select": CLIENT_SELECT[kind]},
                take_clients,
                lambda error, kind=kind, chunk=chunk: clients_failed(error, kind, chunk),
            )
        for n in range(0, len(kind_ids), ADDRESS_OWNERS_PER_COMMAND):
            chunk = kind_ids[n : n + ADDRESS_OWNERS_PER_COMMAND]
            reader.add(
                f"a{kind}{n}",
                "crm.address.list",
                {"filter": {"ANCHOR_TYPE_ID": ANCHOR_TYPE[kind], "@ANCHOR_ID": chunk}},
                take_addresses,
                lambda error: None,  # addresses are a nicety; the contact is made without them
            )
    return out


def _unlinked_clients(ctx: PassContext, items: list[Work]) -> dict[str, list[int]]:
    keys = {item.client for item in items if item.client is not None}
    wanted: dict[str, list[int]] = {}
    for kind in (ContactLink.Kind.COMPANY.value, ContactLink.Kind.CONTACT.value):
        ids = sorted(i for k, i in keys if k == kind)
        linked = set(
            ContactLink.objects.filter(portal=ctx.portal, bitrix24_kind=kind, bitrix24_id__in=ids).values_list(
                "bitrix24_id", flat=True
            )
        )
        missing = [i for i in ids if i not in linked]
        if missing:
            wanted[kind] = missing
    return wanted
