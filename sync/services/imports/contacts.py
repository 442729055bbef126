"""Xero contacts -> Bitrix24 companies (found again by ORIGINATOR_ID "xero" + ORIGIN_ID = ContactID)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api, directory
from integrations.bitrix24.api.command import Command
from integrations.common.errors import ExternalAPIError
from sync.mappers import MappingError
from sync.mappers.canonical import canonical_hash
from sync.mappers.contact import XERO_ORIGINATOR, xero_contact_to_company
from sync.models import ContactLink, SyncJob
from sync.services.imports.common import _chunks, _Hashes, _message, _ran, _renew, _tick, _xero
from sync.services.imports.progress import BATCH, CONTACTS_PAGE_SIZE, ImportSummary, import_progress_write

logger = logging.getLogger(__name__)
# --- contacts -> companies --------------------------------------------------------------------------


@dataclass
class _Contact:
    xero_id: str
    name: str
    fields: dict
    digest: str
    company_id: int | None = None


def contacts_import(
    *, portal: Portal, job: SyncJob, bitrix24: Bitrix24Api | None = None, everyone: bool = False
) -> ImportSummary:
    """Every active Xero customer (IsCustomer: it has sales invoices), or with `everyone` every
    active contact, as a Bitrix24 company (name, address, phone, e-mail, COMPANY_TYPE from what the
    contact is), linked. Contacts left out count as skipped."""
    xero = _xero(portal)
    b24 = bitrix24 or Bitrix24Api.for_portal(portal, interactive=True)
    hashes = _Hashes(portal, "contact")
    summary = ImportSummary(status=SyncJob.Status.RUNNING)
    import_progress_write(job.pk, summary)
    page = 1
    while True:
        # Archived ones are listed too, so the summary counts them as skipped rather than hiding them.
        listed = xero.contacts_list(page, page_size=CONTACTS_PAGE_SIZE, include_archived=True)
        contacts = [dict(contact.data) for contact in listed.contacts]  # Xero's JSON, which the mapper reads
        summary.total = listed.item_count or summary.total + len(contacts)
        for chunk in _chunks(contacts, BATCH):
            _contacts_chunk(portal, b24, hashes, chunk, summary, everyone=everyone)
            _tick(job, summary, force=True)
        _renew(job)
        if len(contacts) < CONTACTS_PAGE_SIZE:
            break
        page += 1
    summary.total = max(summary.total, summary.processed)
    return summary


def _contacts_chunk(
    portal: Portal,
    b24: Bitrix24Api,
    hashes: _Hashes,
    chunk: list[dict],
    summary: ImportSummary,
    *,
    everyone: bool = False,
) -> None:
    wanted: list[_Contact] = []
    for contact in chunk:
        summary.processed += 1
        xero_id = str(contact.get("ContactID") or "")
        if str(contact.get("ContactStatus") or "ACTIVE") != "ACTIVE":
            summary.skipped += 1  # archived (or a GDPR request): not brought into the CRM
            continue
        if not everyone and not contact.get("IsCustomer"):
            summary.skipped += 1  # a supplier or a contact without sales invoices: not a customer
            continue
        try:
            fields = xero_contact_to_company(contact)
        except MappingError as exc:
            summary.error(f"{contact.get('Name') or xero_id}: {exc}")
            continue
        wanted.append(_Contact(xero_id, fields["TITLE"], fields, canonical_hash(fields)))
    if not wanted:
        return

    links = {
        str(link.xero_contact_id): link
        for link in ContactLink.objects.filter(portal=portal, xero_contact_id__in=[w.xero_id for w in wanted])
    }
    seen = hashes.get_many(w.xero_id for w in wanted)
    to_update: list[_Contact] = []
    to_create: list[_Contact] = []
    for contact in wanted:
        link = links.get(contact.xero_id)
        if link is not None and link.bitrix24_kind != ContactLink.Kind.COMPANY:
            summary.skipped += 1  # made from a Bitrix24 contact (a person): not turned into a company
            continue
        if link is not None and seen.get(contact.xero_id) == contact.digest:
            summary.skipped += 1
            continue
        if link is not None:
            contact.company_id = link.bitrix24_id
            to_update.append(contact)
        else:
            to_create.append(contact)

    if to_create:
        # A company we created before but never linked (the run died between the two) is adopted.
        found = _companies_by_origin(b24, [c.xero_id for c in to_create])
        for contact in list(to_create):
            if contact.xero_id in found:
                contact.company_id = found[contact.xero_id]
                _link_company(portal, contact)
                to_create.remove(contact)
                to_update.append(contact)

    done: dict[str, str] = {}
    gone = _companies_update(portal, b24, to_update, summary, done)
    for contact in gone:
        # Deleted in Bitrix24 since the last import: forget the link and create it again.
        ContactLink.objects.filter(portal=portal, xero_contact_id=contact.xero_id).delete()
        contact.company_id = None
        to_create.append(contact)
    _companies_add(portal, b24, to_create, summary, done)
    hashes.set_many(done)


def _companies_by_origin(b24: Bitrix24Api, xero_ids: list[str]) -> dict[str, int]:
    rows = b24.list_all(directory.companies_by_origin(XERO_ORIGINATOR, xero_ids))
    return {origin: company_id for origin, company_id in rows if origin}


def _link_company(portal: Portal, contact: _Contact) -> None:
    ContactLink.objects.update_or_create(
        portal=portal,
        xero_contact_id=uuid.UUID(contact.xero_id),
        defaults={
            "bitrix24_kind": ContactLink.Kind.COMPANY,
            "bitrix24_id": contact.company_id,
            "xero_name": contact.name[:255],
        },
    )


def _companies_update(
    portal: Portal, b24: Bitrix24Api, contacts: list[_Contact], summary: ImportSummary, done: dict[str, str]
) -> list[_Contact]:
    """Update linked companies; return the ones Bitrix24 no longer has."""
    if not contacts:
        return []
    reads = b24.batch_all({f"g{c.xero_id}": directory.company_get(c.company_id or 0) for c in contacts})
    gone: list[_Contact] = []
    commands: dict[str, Command[Any]] = {}
    by_key: dict[str, _Contact] = {}
    for contact in contacts:
        error = reads.errors.get(f"g{contact.xero_id}")
        if error is not None:
            if _not_found(error):
                gone.append(contact)
            else:
                summary.error(f"{contact.name}: {_message(error)}")
            continue
        current = reads.value(f"g{contact.xero_id}").fields if reads.ran(f"g{contact.xero_id}") else {}
        key = f"u{contact.xero_id}"
        commands[key] = directory.company_update_merging(contact.company_id or 0, current, contact.fields)
        by_key[key] = contact
    result = b24.batch_all(commands)
    for key, contact in by_key.items():
        if _ran(result, key, contact.name, summary):
            summary.updated += 1
            done[contact.xero_id] = contact.digest
            ContactLink.objects.filter(portal=portal, xero_contact_id=contact.xero_id).exclude(
                xero_name=contact.name[:255]
            ).update(xero_name=contact.name[:255])
    return gone


def _companies_add(
    portal: Portal, b24: Bitrix24Api, contacts: list[_Contact], summary: ImportSummary, done: dict[str, str]
) -> None:
    if not contacts:
        return
    by_key = {f"a{c.xero_id}": c for c in contacts}
    result = b24.batch_all({key: directory.company_add(c.fields, notify=False) for key, c in by_key.items()})
    for key, contact in by_key.items():
        if not _ran(result, key, contact.name, summary):
            continue
        contact.company_id = result.value(key)
        try:
            _link_company(portal, contact)
        except IntegrityError as exc:
            summary.error(f"{contact.name}: created company {contact.company_id} but could not link it ({exc})")
            continue
        summary.created += 1
        done[contact.xero_id] = contact.digest


def _not_found(error: ExternalAPIError) -> bool:
    text = f"{error.code or ''} {error.message or ''}".lower()
    return "not found" in text or "not_found" in text or "not exist" in text
