"""Contact details follow Bitrix24: a linked company or person whose name, address, phone or e-mail
changed in Bitrix24 is updated in Xero.

Run by the Bitrix24 sweep (every 5 minutes): the companies and contacts changed since the portal's
watermark (DATE_MODIFY, minus an overlap) are listed with the fields the contact mapping reads, only
the linked ones are kept, their requisite addresses read in the same `batch`, each is mapped
(sync.mappers.contact) and fingerprinted, and those whose fingerprint differs from the one stored
on the ContactLink at creation or the last update are POSTed to Xero 50 a call (by ContactID,
summarizeErrors=false). A quiet portal costs one Bitrix24 request a pass and no Xero call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from django.db.models import Q
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.api import Bitrix24Api, directory
from integrations.bitrix24.api.command import Command
from integrations.common.errors import ExternalAPIError
from integrations.xero.client import XeroClient
from sync.mappers import MappingError
from sync.mappers.canonical import canonical_hash, idempotency_key
from sync.mappers.contact import company_to_xero_contact, contact_number_for, person_to_xero_contact
from sync.models import ContactLink, Direction, SyncLogEntry, SyncSettings, Trigger
from sync.services.log import sync_log_write

logger = logging.getLogger(__name__)

OVERLAP = dt.timedelta(minutes=2)
BATCH = 50
ADDRESS_OWNERS = 25
KINDS = ("company", "contact")


def contacts_follow(*, portal: Portal) -> int:
    """Update the Xero contacts of linked clients changed in Bitrix24; returns how many were updated."""
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active or not ContactLink.objects.filter(portal=portal).exists():
        return 0
    settings, _ = SyncSettings.objects.get_or_create(portal=portal)
    now = timezone.now()
    since = settings.contacts_modified_since or now - dt.timedelta(days=1)
    client = Bitrix24Api.for_portal(portal)
    changed: dict[tuple[str, int], dict] = {}
    for kind in KINDS:
        for record in client.list_all(directory.clients_modified_since(kind, (since - OVERLAP).isoformat())):
            changed[(kind, record.id)] = dict(record.fields)
    links = {
        (link.bitrix24_kind, link.bitrix24_id): link
        for link in ContactLink.objects.filter(portal=portal, bitrix24_id__in=[i for _k, i in changed])
        if (link.bitrix24_kind, link.bitrix24_id) in changed
    }
    updated = _update(portal, connection, client, {key: changed[key] for key in links}, links) if links else 0
    SyncSettings.objects.filter(pk=settings.pk).filter(
        Q(contacts_modified_since__isnull=True) | Q(contacts_modified_since__lt=now)
    ).update(contacts_modified_since=now)
    return updated


def _update(portal, connection, client, entities: dict, links: dict) -> int:
    addresses: dict[tuple[str, int], list[dict]] = {}
    commands: dict[str, Command[list[directory.Address]]] = {}
    for kind in KINDS:
        ids = sorted(i for k, i in entities if k == kind)
        for n in range(0, len(ids), ADDRESS_OWNERS):
            commands[f"a{kind}{n}"] = directory.addresses_of(kind, ids[n : n + ADDRESS_OWNERS])
    if commands:
        try:
            outcome = client.batch_all(commands)
            for key in commands:
                for address in outcome.value(key) if outcome.ran(key) else []:
                    addresses.setdefault((address.owner_kind, address.owner_id), []).append(dict(address.fields))
        except ExternalAPIError as exc:
            logger.info("addresses not read for the contact update: %s", exc)  # a nicety; go without
    wanted: list[tuple[ContactLink, dict, str]] = []
    for key, entity in entities.items():
        link = links[key]
        kind, ident = key
        number = contact_number_for(kind, ident)
        mapper = company_to_xero_contact if kind == "company" else person_to_xero_contact
        try:
            contact = mapper(entity, addresses.get(key) or None, contact_number=number)
        except MappingError:
            continue  # e.g. the name was emptied: nothing Xero would take; the invoice push says why
        suffix = f" ({number})"
        if link.xero_name.endswith(suffix) and not contact["Name"].endswith(suffix):
            # Linked under a suffixed name because another Xero contact had the plain one: keep it.
            contact["Name"] = contact["Name"][: 255 - len(suffix)] + suffix
        fingerprint = canonical_hash(contact)
        if fingerprint != link.last_pushed_hash:
            wanted.append((link, {**contact, "ContactID": str(link.xero_contact_id)}, fingerprint))
    if not wanted:
        return 0
    xero = XeroClient(connection)
    updated = 0
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        material = "|".join(f"{link.pk}:{fp}" for link, _c, fp in batch)
        key = idempotency_key(
            portal.member_id, "contacts", hashlib.sha256(material.encode()).hexdigest(), operation="conu"
        )
        try:
            answers = xero.contacts_upsert([contact for _l, contact, _f in batch], idempotency_key=key)
        except ExternalAPIError as exc:
            for link, _contact, _fp in batch:
                _log(portal, link, SyncLogEntry.Outcome.FAILED, exc.message)
            continue
        for (link, contact, fingerprint), answer in zip(batch, answers, strict=False):
            if not answer.ok:
                _log(portal, link, SyncLogEntry.Outcome.FAILED, "; ".join(answer.errors) or "Xero refused the update.")
                continue
            ContactLink.objects.filter(pk=link.pk).update(
                last_pushed_hash=fingerprint, xero_name=contact["Name"][:255], updated_at=timezone.now()
            )
            _log(portal, link, SyncLogEntry.Outcome.UPDATED, f"Xero contact updated from Bitrix24: {contact['Name']}")
            updated += 1
    return updated


def _log(portal: Portal, link: ContactLink, outcome: str, message: str) -> None:
    sync_log_write(
        portal=portal,
        direction=Direction.PUSH,
        trigger=Trigger.SWEEP,
        outcome=outcome,
        object_kind=SyncLogEntry.ObjectKind.CONTACT,
        bitrix24_id=f"{link.bitrix24_kind}:{link.bitrix24_id}",
        xero_id=str(link.xero_contact_id),
        message=message,
    )
