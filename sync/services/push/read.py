"""Stage "read": the invoices (through their source), product rows, and the clients not linked yet
with their requisite addresses, from Bitrix24 in rounds of `batch` calls. An invoice that cannot be
read fails here with Bitrix24's words; one read without product rows waits or is held here
(rows_wait.py); a client that cannot be read is reported to the contacts stage, which fails only
that client's invoices."""

from __future__ import annotations

from dataclasses import dataclass, field

from integrations.bitrix24.api import directory
from integrations.common.errors import ExternalAPIError, PermanentError
from sync.models import ContactLink
from sync.services.contacts import ClientKey
from sync.services.push.context import PassContext, Work
from sync.services.push.outcomes import fail
from sync.services.push.reader import B24_PAGE, Reader
from sync.services.push.rows_wait import rows_wait_check
from sync.services.push.sources import source_for

ADDRESS_OWNERS_PER_COMMAND = 25


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
        else:
            rows_wait_check(ctx, item)  # no product rows yet: wait a moment, then hold
    return clients


def _queue_clients(ctx: PassContext, reader: Reader, items: list[Work]) -> Clients:
    out = Clients()
    entities: dict[ClientKey, dict] = {}
    addresses: dict[ClientKey, list[dict]] = {}
    for kind, kind_ids in _unlinked_clients(ctx, items).items():

        def take_clients(records: list[directory.ClientRecord], kind=kind):
            for record in records:
                key = (kind, record.id)
                entities[key] = dict(record.fields)
                out.data[key] = {"entity": entities[key], "addresses": addresses.setdefault(key, [])}

        def clients_failed(error, kind=kind, ids=None):
            for bitrix24_id in ids:
                out.errors[(kind, bitrix24_id)] = error

        def take_addresses(found: list[directory.Address], kind=kind):
            for address in found:
                addresses.setdefault((kind, address.owner_id), []).append(dict(address.fields))

        for n in range(0, len(kind_ids), B24_PAGE):
            chunk = kind_ids[n : n + B24_PAGE]
            reader.add(
                f"{kind}{n}",
                directory.clients_list(kind, chunk),
                take_clients,
                lambda error, kind=kind, chunk=chunk: clients_failed(error, kind, chunk),
            )
        for n in range(0, len(kind_ids), ADDRESS_OWNERS_PER_COMMAND):
            chunk = kind_ids[n : n + ADDRESS_OWNERS_PER_COMMAND]
            reader.add(
                f"a{kind}{n}",
                directory.addresses_of(kind, chunk),
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
