"""Importing Xero's directory and catalogue into Bitrix24: contacts -> companies, items -> products.

A run is a SyncJob (IMPORT_CONTACTS / IMPORT_ITEMS) started by an admin's button
(import_job_start) and executed by sync.tasks.imports.import_run_task. It may run twice (a worker
dies, the sweeper re-sends): every write is found again through its link (ContactLink / ItemLink),
and a record Bitrix24 already has but we lost the link to is found by its external id
(ORIGINATOR_ID "xero" + ORIGIN_ID = ContactID on companies, xmlId "xero:<ItemID>" on products), so a
second run updates instead of duplicating. Content that has not changed since the last import
(canonical hash) is skipped without a Bitrix24 write.

Progress lives in Redis under the job id (SyncJob has no progress columns); the final summary is
also written to the sync log, so it outlives Redis.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from xero_python.api_client.serializer import serialize

from accounts.models import Portal, XeroConnection
from connector.coordination import redis_client
from integrations.bitrix24.client import BatchResult, Bitrix24Client
from integrations.common.errors import ExternalAPIError, PermanentError
from integrations.xero.client import XeroClient
from sync.mappers import MappingError
from sync.mappers.canonical import canonical_hash
from sync.mappers.contact import XERO_ORIGINATOR, xero_contact_to_company, xero_item_to_product
from sync.models import ContactLink, Direction, ItemLink, SyncJob, SyncLogEntry, Trigger
from sync.services.log import sync_log_write
from sync.services.products import created_product_id

logger = logging.getLogger(__name__)

IMPORT_TASK = "sync.tasks.imports.import_run_task"
CONTACTS_PAGE_SIZE = 1000
BATCH = 50
MAX_ERRORS_SHOWN = 50
PROGRESS_TTL_S = 7 * 24 * 3600
# How often (in records) progress is written while a page is being worked through.
PROGRESS_EVERY = 50
FALLBACK_PRICE_TYPE = 1  # the base price type of a stock portal


class ImportRefused(Exception):
    """The import cannot start (no Xero connection, unknown currency); the message says why."""


@dataclass
class ImportSummary:
    status: str = SyncJob.Status.PENDING
    processed: int = 0
    total: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(message)

    def as_dict(self) -> dict:
        return asdict(self)


# --- progress (Redis, else this process) ------------------------------------------------------------


def _progress_key(job_id: int) -> str:
    return f"sync:import:progress:{job_id}"


def import_progress_write(job_id: int, summary: ImportSummary) -> None:
    payload = json.dumps(summary.as_dict())
    client = redis_client()
    if client is None:
        # Embedded mode: the worker writes, the web server reads; Django's cache is a folder
        # shared by both there (settings.CACHES).
        cache.set(_progress_key(job_id), payload, PROGRESS_TTL_S)
        return
    client.set(_progress_key(job_id), payload, ex=PROGRESS_TTL_S)


def import_progress(job: SyncJob) -> dict:
    """{"status", "processed", "total", "created", "updated", "skipped", "failed", "errors"} of a job.
    The status is the job row's (the truth); the counts come from Redis, or from the run's log entry
    once Redis has forgotten them."""
    client = redis_client()
    raw = client.get(_progress_key(job.pk)) if client is not None else cache.get(_progress_key(job.pk))
    counts = json.loads(raw) if raw else None
    if counts is None:
        entry = (
            SyncLogEntry.objects.filter(portal_id=job.portal_id, direction=Direction.IMPORT, details__job_id=job.pk)
            .order_by("-created_at")
            .first()
        )
        counts = dict((entry.details or {}).get("summary") or {}) if entry else {}
    out = ImportSummary().as_dict()
    out.update({k: v for k, v in counts.items() if k in out})
    out["status"] = job.status
    if job.status == SyncJob.Status.FAILED and job.last_error and job.last_error not in out["errors"]:
        out["errors"] = [job.last_error, *out["errors"]]
    return out


# --- starting a run ---------------------------------------------------------------------------------


def import_job_start(*, portal: Portal, kind: SyncJob.Kind | str, requested_by: int, currency: str = "") -> SyncJob:
    """The import job for this button press: a new one (its task sent after commit), or the one of
    the same kind already waiting or running, so a double click does not import twice."""
    if kind not in (SyncJob.Kind.IMPORT_CONTACTS, SyncJob.Kind.IMPORT_ITEMS):
        raise ValueError(f"not an import kind: {kind}")
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        raise ImportRefused("Connect Xero first: the import reads from your Xero organisation.")
    if kind == SyncJob.Kind.IMPORT_ITEMS and not currency:
        raise ImportRefused("Choose the currency the product prices are in.")
    active = SyncJob.objects.filter(
        portal=portal, kind=kind, status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING]
    ).first()
    if active is not None:
        return active
    try:
        with transaction.atomic():
            job = SyncJob.objects.create(
                portal=portal,
                kind=kind,
                # The currency travels in the target (items); it also keeps one pending job per choice.
                target=currency if kind == SyncJob.Kind.IMPORT_ITEMS else "",
                trigger=Trigger.BUTTON,
                priority=SyncJob.Priority.USER,
                requested_by=requested_by,
            )
            import_progress_write(job.pk, ImportSummary())
            transaction.on_commit(lambda: _send(job.pk), robust=True)
    except IntegrityError:
        # A concurrent click created the pending job first.
        return SyncJob.objects.get(portal=portal, kind=kind, status=SyncJob.Status.PENDING)
    return job


def _send(job_id: int) -> None:
    from sync.services.jobs import task_send

    task_send(IMPORT_TASK, [job_id])


def import_job_claim(job_id: int) -> SyncJob | None:
    """Take one pending job by id (pending -> running, attempts + 1, a lease); None when it is not
    pending (done, or another worker has it)."""
    from sync.services.jobs import JOB_LEASE_S

    now = timezone.now()
    claimed = SyncJob.objects.filter(
        pk=job_id,
        status=SyncJob.Status.PENDING,
        kind__in=[SyncJob.Kind.IMPORT_CONTACTS, SyncJob.Kind.IMPORT_ITEMS],
    ).update(
        status=SyncJob.Status.RUNNING,
        attempts=F("attempts") + 1,
        lease_until=now + timedelta(seconds=JOB_LEASE_S),
        updated_at=now,
    )
    return SyncJob.objects.select_related("portal").get(pk=job_id) if claimed else None


def import_run(job: SyncJob) -> ImportSummary:
    """Run a claimed import job, write its summary to the sync log, and return it."""
    portal = job.portal
    if job.kind == SyncJob.Kind.IMPORT_CONTACTS:
        summary = contacts_import(portal=portal, job=job)
        kind = SyncLogEntry.ObjectKind.CONTACT
        what = "Xero contacts into Bitrix24 companies"
    else:
        summary = items_import(portal=portal, job=job, currency=job.target)
        kind = SyncLogEntry.ObjectKind.ITEM
        what = f"Xero items into Bitrix24 products ({job.target})"
    outcome = SyncLogEntry.Outcome.FAILED if summary.failed and not (summary.created or summary.updated) else None
    sync_log_write(
        portal=portal,
        direction=Direction.IMPORT,
        trigger=job.trigger,
        outcome=outcome
        or (
            SyncLogEntry.Outcome.UPDATED
            if summary.created or summary.updated
            else SyncLogEntry.Outcome.SKIPPED_UNCHANGED
        ),
        object_kind=kind,
        message=(
            f"Imported {what}: {summary.created} created, {summary.updated} updated, "
            f"{summary.skipped} skipped, {summary.failed} failed."
        ),
        details={"job_id": job.pk, "summary": summary.as_dict()},
    )
    return summary


# --- shared helpers ---------------------------------------------------------------------------------


class _Hashes:
    """What each Xero record looked like when we last imported it (Redis hash per portal and kind).
    Losing it costs one redundant update per record, never a duplicate."""

    def __init__(self, portal: Portal, kind: str) -> None:
        self.key = f"sync:import:hash:{portal.pk}:{kind}"
        self.client = redis_client()
        self.local: dict[str, str] = {}

    def get_many(self, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        if not ids:
            return {}
        if self.client is None:
            return {i: self.local[i] for i in ids if i in self.local}
        values = self.client.hmget(self.key, ids)
        return {i: v.decode() for i, v in zip(ids, values, strict=True) if v is not None}

    def set_many(self, values: Mapping[str, str]) -> None:
        if not values:
            return
        if self.client is None:
            self.local.update(values)
        else:
            self.client.hset(self.key, mapping=dict(values))


def _xero(portal: Portal) -> XeroClient:
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None or not connection.is_active:
        raise ImportRefused("Xero is not connected; connect it on the app's home page and try again.")
    return XeroClient(connection, interactive=True)


def _plain(models: Iterable[Any]) -> list[dict]:
    """SDK models -> the PascalCase JSON Xero sent, which the mappers read."""
    return [serialize(model) for model in models or []]


def _chunks(rows: list, size: int) -> Iterable[list]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _message(error: BaseException) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__


def _tick(job: SyncJob, summary: ImportSummary, *, force: bool = False) -> None:
    if force or summary.processed % PROGRESS_EVERY == 0:
        import_progress_write(job.pk, summary)


def _renew(job: SyncJob) -> None:
    from sync.services.jobs import job_lease_renew

    if job.status == SyncJob.Status.RUNNING:
        job_lease_renew(job)


# --- contacts -> companies --------------------------------------------------------------------------


@dataclass
class _Contact:
    xero_id: str
    name: str
    fields: dict
    digest: str
    company_id: int | None = None


def contacts_import(*, portal: Portal, job: SyncJob, bitrix24: Bitrix24Client | None = None) -> ImportSummary:
    """Every active Xero contact as a Bitrix24 company (name, address, phone, e-mail), linked."""
    xero = _xero(portal)
    b24 = bitrix24 or Bitrix24Client(portal, interactive=True)
    hashes = _Hashes(portal, "contact")
    summary = ImportSummary(status=SyncJob.Status.RUNNING)
    import_progress_write(job.pk, summary)
    page = 1
    while True:
        # Archived ones are listed too, so the summary counts them as skipped rather than hiding them.
        answer = xero.call("get_contacts", page=page, page_size=CONTACTS_PAGE_SIZE, include_archived=True)
        contacts = _plain(answer.contacts)
        pagination = getattr(answer, "pagination", None)
        item_count = getattr(pagination, "item_count", None) if pagination else None
        summary.total = int(item_count) if item_count else summary.total + len(contacts)
        for chunk in _chunks(contacts, BATCH):
            _contacts_chunk(portal, b24, hashes, chunk, summary)
            _tick(job, summary, force=True)
        _renew(job)
        if len(contacts) < CONTACTS_PAGE_SIZE:
            break
        page += 1
    summary.total = max(summary.total, summary.processed)
    return summary


def _contacts_chunk(
    portal: Portal, b24: Bitrix24Client, hashes: _Hashes, chunk: list[dict], summary: ImportSummary
) -> None:
    wanted: list[_Contact] = []
    for contact in chunk:
        summary.processed += 1
        xero_id = str(contact.get("ContactID") or "")
        if str(contact.get("ContactStatus") or "ACTIVE") != "ACTIVE":
            summary.skipped += 1  # archived (or a GDPR request): not brought into the CRM
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


def _companies_by_origin(b24: Bitrix24Client, xero_ids: list[str]) -> dict[str, int]:
    rows = b24.list_all(
        "crm.company.list",
        {"filter": {"ORIGINATOR_ID": XERO_ORIGINATOR, "@ORIGIN_ID": xero_ids}, "select": ["ID", "ORIGIN_ID"]},
    )
    return {str(row["ORIGIN_ID"]): int(row["ID"]) for row in rows if row.get("ORIGIN_ID")}


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


def _merge_multifield(current: list[dict] | None, wanted: list[dict] | None) -> list[dict]:
    """Changes that make `wanted` present without duplicating: a value already there is left alone;
    a new value takes over an existing entry of the same type (updated by its ID); the rest is added.
    Values the user added in Bitrix24 and Xero never had are kept."""
    current = [dict(v) for v in current or []]
    used: set[str] = set()
    changes: list[dict] = []

    def same(a: str, b: str) -> bool:
        return "".join(a.split()).lower() == "".join(b.split()).lower()

    pending = []
    for value in wanted or []:
        match = next(
            (c for c in current if c["ID"] not in used and same(str(c.get("VALUE", "")), value["VALUE"])), None
        )
        if match is not None:
            used.add(match["ID"])
        else:
            pending.append(value)
    for value in pending:
        slot = next((c for c in current if c["ID"] not in used and c.get("VALUE_TYPE") == value["VALUE_TYPE"]), None)
        if slot is not None:
            used.add(slot["ID"])
            changes.append({"ID": slot["ID"], "VALUE": value["VALUE"], "VALUE_TYPE": value["VALUE_TYPE"]})
        else:
            changes.append(dict(value))
    return changes


def _companies_update(
    portal: Portal, b24: Bitrix24Client, contacts: list[_Contact], summary: ImportSummary, done: dict[str, str]
) -> list[_Contact]:
    """Update linked companies; return the ones Bitrix24 no longer has."""
    if not contacts:
        return []
    reads = b24.batch_all({f"g{c.xero_id}": ("crm.company.get", {"id": c.company_id}) for c in contacts})
    gone: list[_Contact] = []
    commands: dict[str, tuple[str, dict]] = {}
    by_key: dict[str, _Contact] = {}
    for contact in contacts:
        error = reads.errors.get(f"g{contact.xero_id}")
        if error is not None:
            if _not_found(error):
                gone.append(contact)
            else:
                summary.error(f"{contact.name}: {_message(error)}")
            continue
        current = reads.results.get(f"g{contact.xero_id}") or {}
        fields = {k: v for k, v in contact.fields.items() if k not in ("ORIGINATOR_ID", "ORIGIN_ID", "PHONE", "EMAIL")}
        for name in ("PHONE", "EMAIL"):
            changes = _merge_multifield(current.get(name), contact.fields.get(name))
            if changes:
                fields[name] = changes
        key = f"u{contact.xero_id}"
        commands[key] = ("crm.company.update", {"id": contact.company_id, "fields": fields})
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
    portal: Portal, b24: Bitrix24Client, contacts: list[_Contact], summary: ImportSummary, done: dict[str, str]
) -> None:
    if not contacts:
        return
    by_key = {f"a{c.xero_id}": c for c in contacts}
    result = b24.batch_all(
        {
            key: ("crm.company.add", {"fields": c.fields, "params": {"REGISTER_SONET_EVENT": "N"}})
            for key, c in by_key.items()
        }
    )
    for key, contact in by_key.items():
        if not _ran(result, key, contact.name, summary):
            continue
        contact.company_id = int(result.results[key])
        try:
            _link_company(portal, contact)
        except IntegrityError as exc:
            summary.error(f"{contact.name}: created company {contact.company_id} but could not link it ({exc})")
            continue
        summary.created += 1
        done[contact.xero_id] = contact.digest


def _ran(result: BatchResult, key: str, name: str, summary: ImportSummary) -> bool:
    if key in result.errors:
        summary.error(f"{name}: {_message(result.errors[key])}")
        return False
    if key not in result.results:
        summary.error(f"{name}: Bitrix24 did not run the request.")
        return False
    return True


def _not_found(error: ExternalAPIError) -> bool:
    text = f"{error.code or ''} {error.message or ''}".lower()
    return "not found" in text or "not_found" in text or "not exist" in text


# --- items -> products ------------------------------------------------------------------------------


@dataclass
class _Item:
    xero_id: str
    code: str
    name: str
    product: dict
    price: dict | None
    account_code: str
    digest: str
    product_id: int | None = None


def items_import(
    *, portal: Portal, job: SyncJob, currency: str, bitrix24: Bitrix24Client | None = None
) -> ImportSummary:
    """Every Xero item as a Bitrix24 catalog product with its sales price in `currency`, linked."""
    xero = _xero(portal)
    b24 = bitrix24 or Bitrix24Client(portal, interactive=True)
    hashes = _Hashes(portal, "item")
    summary = ImportSummary(status=SyncJob.Status.RUNNING)
    import_progress_write(job.pk, summary)
    items = _plain(xero.call("get_items").items)  # Items are not paged (xero-api.md §6.1)
    summary.total = len(items)
    import_progress_write(job.pk, summary)
    iblock_id = _catalog_iblock(b24)
    price_type = _base_price_type(b24)
    # Two commands per item (product, then its price) and a batch holds 50.
    for chunk in _chunks(items, BATCH // 2):
        _items_chunk(portal, b24, hashes, chunk, summary, currency=currency, iblock_id=iblock_id, price_type=price_type)
        _tick(job, summary, force=True)
        _renew(job)
    return summary


def _catalog_iblock(b24: Bitrix24Client) -> int:
    catalogs = (b24.result("catalog.catalog.list", {}) or {}).get("catalogs") or []
    if not catalogs:
        raise ImportRefused("Bitrix24 has no product catalog; open CRM > Products once to create it.")
    chosen = next((c for c in catalogs if c.get("iblockTypeId") == "CRM_PRODUCT_CATALOG"), catalogs[0])
    return int(chosen.get("iblockId") or chosen["id"])


def _base_price_type(b24: Bitrix24Client) -> int:
    try:
        rows = (b24.result("catalog.priceType.list", {"filter": {"base": "Y"}}) or {}).get("priceTypes") or []
    except ExternalAPIError as exc:
        if exc.retryable:
            raise
        return FALLBACK_PRICE_TYPE  # method not there (or not allowed): the stock base type
    return int(rows[0]["id"]) if rows else FALLBACK_PRICE_TYPE


def _items_chunk(
    portal: Portal,
    b24: Bitrix24Client,
    hashes: _Hashes,
    chunk: list[dict],
    summary: ImportSummary,
    *,
    currency: str,
    iblock_id: int,
    price_type: int,
) -> None:
    wanted: list[_Item] = []
    for item in chunk:
        summary.processed += 1
        xero_id = str(item.get("ItemID") or "")
        try:
            mapped = xero_item_to_product(item, currency)
        except MappingError as exc:
            summary.error(f"{item.get('Code') or xero_id}: {exc}")
            continue
        code = str(item.get("Code") or "")[:30]
        account = str((item.get("SalesDetails") or {}).get("AccountCode") or "")[:10]
        wanted.append(
            _Item(
                xero_id,
                code,
                mapped["product"]["name"],
                mapped["product"],
                mapped["price"],
                account,
                canonical_hash(mapped),
            )
        )
    if not wanted:
        return

    links_by_id = {
        str(link.xero_item_id): link
        for link in ItemLink.objects.filter(portal=portal, xero_item_id__in=[w.xero_id for w in wanted])
    }
    links_by_code = {
        link.xero_item_code: link
        for link in ItemLink.objects.filter(portal=portal, xero_item_code__in=[w.code for w in wanted])
    }
    seen = hashes.get_many(w.xero_id for w in wanted)
    to_update: list[_Item] = []
    to_create: list[_Item] = []
    for item in wanted:
        # By ItemID; else by Code (an item deleted and made again in Xero keeps its product).
        link = links_by_id.get(item.xero_id) or links_by_code.get(item.code)
        if link is not None and str(link.xero_item_id) == item.xero_id and seen.get(item.xero_id) == item.digest:
            summary.skipped += 1
            continue
        if link is not None:
            item.product_id = link.bitrix24_product_id
            to_update.append(item)
        else:
            to_create.append(item)

    if to_create:
        found = _products_by_xml_id(b24, iblock_id, [i.product["xmlId"] for i in to_create])
        for item in list(to_create):
            if item.product["xmlId"] in found:
                item.product_id = found[item.product["xmlId"]]
                to_create.remove(item)
                to_update.append(item)

    done: dict[str, str] = {}
    _products_update(portal, b24, to_update, summary, done, price_type=price_type)
    _products_add(portal, b24, to_create, summary, done, iblock_id=iblock_id, price_type=price_type)
    hashes.set_many(done)


def _products_by_xml_id(b24: Bitrix24Client, iblock_id: int, xml_ids: list[str]) -> dict[str, int]:
    rows = b24.list_all(
        "catalog.product.list",
        {"select": ["id", "iblockId", "xmlId"], "filter": {"iblockId": iblock_id, "@xmlId": xml_ids}},
        key="products",
    )
    return {str(row["xmlId"]): int(row["id"]) for row in rows if row.get("xmlId")}


def _link_item(portal: Portal, item: _Item) -> None:
    values = {
        "bitrix24_product_id": item.product_id,
        "xero_item_code": item.code,
        "xero_sales_account_code": item.account_code,
    }
    with transaction.atomic():
        link = (
            ItemLink.objects.select_for_update().filter(portal=portal, xero_item_id=uuid.UUID(item.xero_id)).first()
            or ItemLink.objects.select_for_update().filter(portal=portal, xero_item_code=item.code).first()
            or ItemLink.objects.select_for_update().filter(portal=portal, bitrix24_product_id=item.product_id).first()
        )
        if link is None:
            ItemLink.objects.create(portal=portal, xero_item_id=uuid.UUID(item.xero_id), **values)
        else:
            ItemLink.objects.filter(pk=link.pk).update(xero_item_id=uuid.UUID(item.xero_id), **values)


def _products_update(
    portal: Portal,
    b24: Bitrix24Client,
    items: list[_Item],
    summary: ImportSummary,
    done: dict[str, str],
    *,
    price_type: int,
) -> None:
    if not items:
        return
    commands: dict[str, tuple[str, dict]] = {}
    for item in items:
        fields = {k: v for k, v in item.product.items()}
        commands[f"u{item.xero_id}"] = ("catalog.product.update", {"id": item.product_id, "fields": fields})
        commands[f"p{item.xero_id}"] = (
            "catalog.price.list",
            {
                "select": ["id", "productId", "catalogGroupId"],
                "filter": {"productId": item.product_id, "catalogGroupId": price_type},
            },
        )
    first = b24.batch_all(commands)
    prices: dict[str, tuple[str, dict]] = {}
    ok: list[_Item] = []
    for item in items:
        if not _ran(first, f"u{item.xero_id}", item.name, summary):
            continue
        if item.price is None:
            ok.append(item)
            continue
        existing = (first.results.get(f"p{item.xero_id}") or {}).get("prices") or []
        price_fields = {**item.price, "productId": item.product_id, "catalogGroupId": price_type}
        if existing:
            prices[f"s{item.xero_id}"] = ("catalog.price.update", {"id": existing[0]["id"], "fields": price_fields})
        else:
            prices[f"s{item.xero_id}"] = ("catalog.price.add", {"fields": price_fields})
        ok.append(item)
    second = b24.batch_all(prices)
    for item in ok:
        if item.price is not None and not _ran(second, f"s{item.xero_id}", item.name, summary):
            continue
        try:
            _link_item(portal, item)
        except IntegrityError as exc:
            summary.error(f"{item.name}: updated product {item.product_id} but could not link it ({exc})")
            continue
        summary.updated += 1
        done[item.xero_id] = item.digest


def _products_add(
    portal: Portal,
    b24: Bitrix24Client,
    items: list[_Item],
    summary: ImportSummary,
    done: dict[str, str],
    *,
    iblock_id: int,
    price_type: int,
) -> None:
    if not items:
        return
    commands: dict[str, tuple[str, dict]] = {}
    for item in items:
        commands[f"a{item.xero_id}"] = ("catalog.product.add", {"fields": {**item.product, "iblockId": iblock_id}})
        if item.price is not None:
            # The price names the product made by the command before it, in the same batch.
            commands[f"s{item.xero_id}"] = (
                "catalog.price.add",
                {
                    "fields": {
                        **item.price,
                        "productId": f"$result[a{item.xero_id}][element][id]",
                        "catalogGroupId": price_type,
                    }
                },
            )
    result = b24.batch_all(commands)
    for item in items:
        key = f"a{item.xero_id}"
        if not _ran(result, key, item.name, summary):
            continue
        try:
            item.product_id = created_product_id(result.results[key])
        except PermanentError as exc:
            summary.error(f"{item.name}: {exc.message}")
            continue
        price_failed = item.price is not None and not _ran(result, f"s{item.xero_id}", item.name, summary)
        try:
            _link_item(portal, item)
        except IntegrityError as exc:
            summary.error(f"{item.name}: created product {item.product_id} but could not link it ({exc})")
            continue
        if price_failed:
            continue  # linked, so the next import adds the price instead of a second product
        summary.created += 1
        done[item.xero_id] = item.digest
