"""Bitrix24 -> Xero: push the invoices whose PUSH_INVOICE jobs are due (ARCHITECTURE.md data flow 4).

One call of `invoices_push_pending` is one pass over up to CLAIM_LIMIT jobs of a portal:

1. claim the jobs and take a Redis lock per invoice (an invoice locked by another worker goes back
   to pending in a second, and its link is marked dirty so the holder runs it once more);
2. read the invoices, their product rows and the not-yet-linked clients from Bitrix24 in `batch`
   calls, in two rounds: round 1 the invoices and full pages of product rows (200 invoices per
   list, ordered, as many pages as a guess of five rows an invoice fills while round 1 has room);
   round 2 every row page the answers' totals show missing, at its `start` offset, with the new
   clients and their addresses (1 HTTP request for up to 400 invoices whose clients are known, 2
   for 1,000 of three rows and 200 new companies);
3. map each invoice (pure mappers), drop echoes and unchanged content by fingerprint, decide the
   status with Xero's lifecycle rules;
4. find or create the Xero contacts in bulk (sync.services.contacts);
5. create/update the invoices in POSTs of 50 with summarizeErrors=false and a deterministic
   Idempotency-Key, after looking up by InvoiceNumber any invoice an earlier attempt may have
   created without us hearing the answer;
6. record payments where a stage maps to PAID and the portal allows it;
7. store each result on its InvoiceLink with a compare-and-set on `version`, finish each job, log.

What is stored, and why (the pull engine relies on it):
- last_pushed_hash: invoice_push_fingerprint of the invoice WITHOUT Status — content only. The status
  is tracked in last_xero_status, so "same content, different wanted status" is a status change,
  not an unchanged invoice.
- last_pulled_hash: invoice_pull_fingerprint(Xero status, AmountPaid, stage_id=<the invoice's
  Bitrix24 stageId at push time>), and last_bitrix24_stage_id = that stage, so the INVOICE UPDATE
  webhook our own push causes is an echo to the pull engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.client import Bitrix24Client
from integrations.common.errors import AuthorizationLostError, ExternalAPIError, PermanentError, RetryableError
from integrations.common.locks import LockTimeout, redis_lock
from integrations.xero.client import element_errors
from sync.mappers import MappingError
from sync.mappers.canonical import idempotency_key, invoice_pull_fingerprint, invoice_push_fingerprint
from sync.mappers.contact import company_to_xero_contact, contact_number_for, person_to_xero_contact
from sync.mappers.invoice import ItemRef, invoice_to_xero, totals_gap
from sync.mappers.money import to_decimal
from sync.mappers.stage import PAID, Decision, xero_status_for_push, xero_status_for_stage
from sync.models import ContactLink, Direction, InvoiceLink, ItemLink, SyncJob, SyncLogEntry, SyncSettings, Trigger
from sync.services.contacts import ClientKey, CountingXero, contacts_ensure
from sync.services.gate import sync_gate
from sync.services.jobs import job_done, job_failed, jobs_claim
from sync.services.locks import invoice_lock_name
from sync.services.log import sync_log_write
from sync.stage_map import stage_map_load

logger = logging.getLogger(__name__)

SMART_INVOICE = 31
# A pass's fixed costs are per pass, not per invoice: at least one Bitrix24 read round (two with new
# clients) and a Xero contact lookup. 1,000 (the button's maximum per click, so one click is one
# pass) spreads them over enough invoices (bench/push.py: 25 Xero calls, the floor, instead of 35).
# The pass still ends in seconds, far inside JOB_LEASE_S and the task's time limit, and a worker
# process peaks ~25 MB above idle doing it (bench/backfill.py).
CLAIM_LIMIT = 1000
XERO_BATCH = 50
B24_PAGE = 50
# Product rows are read as full pages of crm.item.productrow.list over many invoices at once
# (=ownerId IN [...], a fixed order so offsets are stable). 200 ids keep a command string short.
ROW_OWNERS_PER_COMMAND = 200
# What the first round guesses an invoice holds: it asks for the pages that many rows would fill,
# as far as round 1's batch calls have room. The `total` of each answer then tells exactly which
# pages are still missing; they all go into the next round at their `start` offsets.
ROWS_PER_INVOICE_GUESS = 5
ROW_ORDER = {"sort": "ASC", "id": "ASC"}
ADDRESS_OWNERS_PER_COMMAND = 25
# Longer than a task may run (the hard time limit kills it), so a live holder never loses its lock;
# a killed one holds it only this long.
LOCK_TTL_S = getattr(settings, "PUSH_LOCK_TTL_S", settings.TASK_HARD_TIME_LIMIT_S + 60)
DEFER_S = 1.0
# InvoiceNumbers go into the query string of the lost-answer lookup; 40 keeps it short.
NUMBERS_PER_LOOKUP = 40
RECONNECT_MESSAGE = "Xero needs reconnection: invoices wait and are sent once Xero is connected again."

INVOICE_SELECT = [
    "id",
    "entityTypeId",
    "title",
    "accountNumber",
    "stageId",
    "categoryId",
    "opportunity",
    "taxValue",
    "currencyId",
    "companyId",
    "contactId",
    "begindate",
    "closedate",
    "updatedTime",
]
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
class PushReport:
    portal_id: int
    claimed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    deferred: int = 0
    retrying: int = 0
    payments: int = 0
    paused: str = ""  # why nothing was claimed (portal or Xero not usable)
    bitrix24_calls: int = 0
    xero_calls: int = 0


@dataclass
class _Work:
    invoice_id: int
    job: SyncJob | None
    trigger: str
    invoice: dict | None = None
    rows: list[dict] = field(default_factory=list)
    rows_complete: bool = True
    read_error: ExternalAPIError | None = None
    client: ClientKey | None = None
    link: InvoiceLink | None = None
    content: dict | None = None  # the Xero invoice without Status
    content_hash: str = ""
    decision: Decision | None = None
    body: dict | None = None  # what is sent (content + Status + InvoiceID)
    gap_message: str = ""
    link_contact: ContactLink | None = None
    # Set once Xero answered for the invoice (its write, or a read before paying it).
    amount_due: Decimal | None = None
    amount_paid: Decimal = Decimal(0)
    pushed_log: tuple | None = None  # (created, message, details) logged after the payment
    finished: bool = False


class _Pass:
    """What one pass shares: the portal, counting clients, settings and the report."""

    def __init__(self, portal: Portal, connection: XeroConnection, report: PushReport, interactive: bool) -> None:
        self.portal = portal
        self.report = report
        self.b24 = Bitrix24Client(portal, interactive=interactive)
        self.xero = CountingXero(connection, interactive=interactive)
        self.settings, _ = SyncSettings.objects.get_or_create(portal=portal)
        self.b24_to_xero, _xero_to_b24 = stage_map_load(portal)
        items = {
            link.bitrix24_product_id: ItemRef(code=link.xero_item_code, account_code=link.xero_sales_account_code)
            for link in ItemLink.objects.filter(portal=portal)
        }
        self.mapping = self.settings.to_mapping_settings(items=items)

    def batch_all(self, commands: dict) -> Any:
        self.report.bitrix24_calls += -(-len(commands) // 50)
        return self.b24.batch_all(commands)

    def xero_call(self, operation: str, **kwargs):
        try:
            return self.xero.call(operation, **kwargs)
        finally:
            self.report.xero_calls = self.xero.calls


# --- entry point ----------------------------------------------------------------------------------


def invoices_push_pending(*, portal_id: int) -> PushReport:
    """One pass over the portal's due PUSH_INVOICE jobs (see the module docstring)."""
    report = PushReport(portal_id=portal_id)
    portal = Portal.objects.filter(pk=portal_id).first()
    connection = XeroConnection.objects.filter(portal=portal).first() if portal is not None else None
    gate = sync_gate(portal, connection=connection)
    if not gate.jobs_may_run:
        if portal is not None and portal.is_active:
            _note_reconnect_needed(portal)
        report.paused = gate.reason
        return report
    jobs = jobs_claim(portal_id=portal.pk, kind=SyncJob.Kind.PUSH_INVOICE, limit=CLAIM_LIMIT)
    if not jobs:
        return report
    report.claimed = len(jobs)
    interactive = any(job.priority == SyncJob.Priority.USER for job in jobs)
    ctx = _Pass(portal, connection, report, interactive)

    work: dict[int, _Work] = {}
    for job in jobs:
        invoice_id = _target_invoice_id(job.target)
        if invoice_id is None:
            message = _unsupported_target_message(job.target)
            job_failed(job, PermanentError(message, system="bitrix24"))
            sync_log_write(
                portal=portal,
                direction=Direction.PUSH,
                trigger=job.trigger,
                outcome=SyncLogEntry.Outcome.FAILED,
                bitrix24_id=job.target.partition(":")[2],
                message=message,
            )
            report.failed += 1
        elif invoice_id in work:
            job_done(job)  # the same invoice twice in one claim: one push serves both
        else:
            work[invoice_id] = _Work(invoice_id=invoice_id, job=job, trigger=job.trigger)

    with contextlib.ExitStack() as locks:
        held = []
        for item in work.values():
            try:
                locks.enter_context(
                    redis_lock(invoice_lock_name(portal.pk, item.invoice_id), ttl_s=LOCK_TTL_S, wait_s=0)
                )
            except LockTimeout:
                _defer(item)
                report.deferred += 1
                continue
            held.append(item)
        try:
            _process(ctx, held)
            # Events that arrived for these invoices while we held them: run them once more now,
            # rather than make their (deferred) jobs wait for the locks.
            again = _take_dirty(portal, [item.invoice_id for item in held])
            if again:
                _process(ctx, [_Work(invoice_id=i, job=None, trigger=Trigger.EVENT) for i in again])
        except AuthorizationLostError as exc:
            # Bitrix24 or Xero access was lost mid-pass: nothing is wrong with the invoices; they
            # wait (pending) until the portal or Xero is reconnected.
            for item in held:
                if not item.finished and item.job is not None:
                    _defer(item, delay_s=60)
            sync_log_write(
                portal=portal,
                direction=Direction.PUSH,
                trigger=Trigger.SWEEP,
                outcome=SyncLogEntry.Outcome.RETRYING,
                message=exc.message,
            )
    return report


def _target_invoice_id(target: str) -> int | None:
    entity, _, ident = (target or "").partition(":")
    if entity != str(SMART_INVOICE) or not ident.isdigit():
        return None
    return int(ident)


def _unsupported_target_message(target: str) -> str:
    if (target or "").startswith("5:"):
        # The portal still uses old invoices (crm.invoice.*): their events are received and kept,
        # but only new invoices (entity type 31) are pushed so far.
        return (
            "This portal uses Bitrix24's old invoices, which are not synced yet: only new invoices are. "
            "Bitrix24 can switch to new invoices in CRM settings."
        )
    return f"Not a Bitrix24 invoice: {target!r}"


def _note_reconnect_needed(portal: Portal) -> None:
    """Log once per disconnection, not on every pass, that the invoices are waiting."""
    connection = XeroConnection.objects.filter(portal=portal).first()
    since = connection.updated_at if connection else portal.updated_at
    already = SyncLogEntry.objects.filter(
        portal=portal, direction=Direction.PUSH, message=RECONNECT_MESSAGE, created_at__gte=since
    ).exists()
    if not already:
        sync_log_write(
            portal=portal,
            direction=Direction.PUSH,
            trigger=Trigger.SWEEP,
            outcome=SyncLogEntry.Outcome.RETRYING,
            message=RECONNECT_MESSAGE,
        )


def _defer(item: _Work, *, delay_s: float = DEFER_S) -> None:
    """Back to pending in `delay_s` without counting an attempt; mark the link dirty so a worker
    holding the invoice runs it once more. Never drops the work."""
    InvoiceLink.objects.filter(
        portal_id=item.job.portal_id if item.job else None,
        bitrix24_entity_type=SMART_INVOICE,
        bitrix24_id=item.invoice_id,
    ).update(dirty=True)
    job = item.job
    if job is None:
        return
    owned = SyncJob.objects.filter(pk=job.pk, status=SyncJob.Status.RUNNING, attempts=job.attempts)
    now = timezone.now()
    try:
        with transaction.atomic():
            owned.update(
                status=SyncJob.Status.PENDING,
                not_before=now + dt.timedelta(seconds=delay_s),
                lease_until=None,
                attempts=F("attempts") - 1,
                updated_at=now,
            )
    except IntegrityError:
        # A newer pending job for this invoice exists; it carries the work.
        owned.update(status=SyncJob.Status.DONE, lease_until=None, last_error="superseded", updated_at=now)
    item.finished = True


def _take_dirty(portal: Portal, invoice_ids: list[int]) -> list[int]:
    dirty = list(
        InvoiceLink.objects.filter(
            portal=portal, bitrix24_entity_type=SMART_INVOICE, bitrix24_id__in=invoice_ids, dirty=True
        ).values_list("bitrix24_id", flat=True)
    )
    if dirty:
        InvoiceLink.objects.filter(portal=portal, bitrix24_entity_type=SMART_INVOICE, bitrix24_id__in=dirty).update(
            dirty=False
        )
    return dirty


# --- the pipeline ---------------------------------------------------------------------------------


def _process(ctx: _Pass, items: list[_Work]) -> None:
    if not items:
        return
    by_id = {item.invoice_id: item for item in items}
    clients = _read_bitrix24(ctx, by_id)
    live = [item for item in items if not item.finished]
    _resolve_contacts(ctx, live, clients)
    live = [item for item in live if not item.finished]
    _decide(ctx, live)
    to_send = [item for item in live if not item.finished and item.body is not None]
    _guard_lost_creates(ctx, to_send)
    for start in range(0, len(to_send), XERO_BATCH):
        _send_batch(ctx, to_send[start : start + XERO_BATCH])
    _record_payments(
        ctx, [item for item in live if not item.finished and item.decision and item.decision.record_payment]
    )
    for item in live:
        if not item.finished:
            _finish(ctx, item, outcome=SyncLogEntry.Outcome.SKIPPED_UNCHANGED)


class _Reader:
    """List commands run as rounds of `batch` calls; a list with more pages than the first goes on
    in the next round, together with whatever else that round needs. A command added with
    follow=False is not continued here: its on_result gets the answer's `total` too and asks for
    further pages itself."""

    def __init__(self, ctx: _Pass) -> None:
        self.ctx = ctx
        self.queue: dict[str, tuple[str, dict, Callable, Callable, bool]] = {}

    def add(
        self, key: str, method: str, params: dict, on_result: Callable, on_error: Callable, *, follow: bool = True
    ) -> None:
        self.queue[key] = (method, params, on_result, on_error, follow)

    def room(self) -> int:
        """Commands the calls of the round queued now can still carry."""
        return -len(self.queue) % 50

    def run_round(self) -> None:
        """Run what is queued now (in order); further pages are queued for the next round."""
        current, self.queue = self.queue, {}
        if not current:
            return
        outcome = self.ctx.batch_all({key: (entry[0], entry[1]) for key, entry in current.items()})
        for key, (method, params, on_result, on_error, follow) in current.items():
            if key in outcome.errors:
                on_error(outcome.errors[key])
                continue
            if key not in outcome.results:
                continue
            if not follow:
                on_result(outcome.results[key], outcome.totals.get(key), outcome.nexts.get(key))
                continue
            on_result(outcome.results[key])
            following = outcome.nexts.get(key)
            if following:
                self.add(f"{key}+{following}", method, {**params, "start": following}, on_result, on_error)

    def run(self) -> None:
        while self.queue:
            self.run_round()


class _RowChunk:
    """The product rows of a group of invoices, read as full pages of one ordered list: the first
    answer's `total` says which `start` offsets are still to fetch. Pages are joined in offset order
    at the end, so each invoice's rows keep the list's order."""

    def __init__(self, reader: _Reader, name: str, owners: list[int], on_error: Callable) -> None:
        self.reader = reader
        self.name = name
        self.owners = owners
        self.on_error = on_error
        self.pages: dict[int, list[dict]] = {}
        self.asked: set[int] = set()
        self.total: int | None = None
        self.failed = False

    def ask(self, start: int) -> None:
        if start in self.asked or self.failed:
            return
        self.asked.add(start)
        method, params = _rows_command(self.owners)
        self.reader.add(
            f"{self.name}s{start}",
            method,
            {**params, "start": start} if start else params,
            lambda result, total, following: self._page(start, result, total, following),
            self._error,
            follow=False,
        )

    def ask_guessed(self, pages: int) -> None:
        """The first page and up to `pages - 1` more that the guessed row count would fill."""
        wanted = -(-len(self.owners) * ROWS_PER_INVOICE_GUESS // B24_PAGE)
        for n in range(max(1, min(pages, wanted))):
            self.ask(n * B24_PAGE)

    def _page(self, start: int, result: Any, total: int | None, following: int | None) -> None:
        if self.failed:
            return
        self.pages[start] = _rows_of(result, "productRows")
        if total is not None:
            self.total = total if self.total is None else max(self.total, total)
            for missing in range(0, self.total, B24_PAGE):
                self.ask(missing)
        elif following:
            self.ask(following)  # no count given: page on one by one

    def _error(self, error: ExternalAPIError) -> None:
        if self.failed:
            return
        self.failed = True
        self.pages = {}
        self.on_error(self, error)

    def rows(self) -> list[dict]:
        out: list[dict] = []
        ids: set = set()
        for start in sorted(self.pages):
            for row in self.pages[start]:
                # A row added meanwhile shifts later pages by one: never take a row twice.
                row_id = row.get("id")
                if row_id is not None and row_id in ids:
                    continue
                ids.add(row_id)
                out.append(row)
        return out


def _rows_of(result: Any, wrapper: str | None) -> list[dict]:
    if wrapper and isinstance(result, dict):
        result = result.get(wrapper)
    if isinstance(result, dict):
        return list(result.values())
    return list(result or [])


def _read_bitrix24(ctx: _Pass, by_id: dict[int, _Work]) -> dict[ClientKey, dict]:
    """Invoices and rows (round 1), then rows' further pages, the clients not linked yet and their
    requisite addresses (round 2, and more rounds only for lists longer than a page)."""
    reader = _Reader(ctx)
    ids = sorted(by_id)
    seen: set[int] = set()

    def take_invoices(result):
        for invoice in _rows_of(result, "items"):
            item = by_id.get(int(invoice["id"]))
            if item is not None:
                item.invoice = invoice
                seen.add(item.invoice_id)

    chunks: list[_RowChunk] = []

    def new_chunk(owners: list[int]) -> _RowChunk:
        chunk = _RowChunk(reader, f"r{len(chunks)}", owners, rows_failed)
        chunks.append(chunk)
        return chunk

    def rows_failed(chunk: _RowChunk, error: ExternalAPIError) -> None:
        owners = chunk.owners
        if isinstance(error, RetryableError) or len(owners) == 1:
            for owner in owners:
                by_id[owner].read_error = error
            return
        # One invoice of the command was deleted or hidden meanwhile: list the invoices still
        # listed together once more, and each on its own if that fails too.
        listed = [owner for owner in owners if owner in seen]  # the others fail as missing invoices
        groups = [listed] if len(listed) < len(owners) and listed else [[owner] for owner in listed]
        for group in groups:
            new_chunk(group).ask_guessed(B24_PAGE)

    def invoices_failed(chunk: list[int]):
        def on_error(error: ExternalAPIError):
            for invoice_id in chunk:
                by_id[invoice_id].read_error = error

        return on_error

    for n in range(0, len(ids), B24_PAGE):
        chunk = ids[n : n + B24_PAGE]
        params = {"entityTypeId": SMART_INVOICE, "filter": {"@id": chunk}, "select": INVOICE_SELECT}
        reader.add(f"i{n}", "crm.item.list", params, take_invoices, invoices_failed(chunk))
    # Round 1: the invoices, the first row page of every chunk, and as many further row pages as
    # the guess calls for and round 1's batch calls have room for (taken in turns by the chunks).
    first = [new_chunk(ids[n : n + ROW_OWNERS_PER_COMMAND]) for n in range(0, len(ids), ROW_OWNERS_PER_COMMAND)]
    for chunk in first:
        chunk.ask(0)
    for page in range(1, B24_PAGE):
        if not reader.room():
            break
        for chunk in first:
            if reader.room():
                chunk.ask_guessed(page + 1)
    # The pages the answers' totals show to be missing join round 2 below.
    reader.run_round()

    # Deleted or inaccessible invoices: ask for each so the user sees Bitrix24's own words.
    for item in by_id.values():
        if item.invoice_id not in seen and item.read_error is None:
            reader.add(
                f"g{item.invoice_id}",
                "crm.item.get",
                {"entityTypeId": SMART_INVOICE, "id": item.invoice_id},
                lambda result, item=item: setattr(
                    item, "read_error", RetryableError("The invoice is not listed yet", system="bitrix24")
                ),
                lambda error, item=item: setattr(item, "read_error", error),
            )

    clients: dict[ClientKey, dict] = {}
    addresses: dict[ClientKey, list[dict]] = {}
    wanted = _unlinked_clients(ctx, [item for item in by_id.values() if item.invoice is not None])
    for kind, kind_ids in wanted.items():

        def take_clients(result, kind=kind):
            for entity in _rows_of(result, None):
                clients[(kind, int(entity["ID"]))] = entity

        def take_addresses(result, kind=kind):
            for address in _rows_of(result, None):
                addresses.setdefault((kind, int(address.get("ANCHOR_ID") or 0)), []).append(address)

        for n in range(0, len(kind_ids), B24_PAGE):
            chunk = kind_ids[n : n + B24_PAGE]
            reader.add(
                f"{kind}{n}",
                f"crm.{kind}.list",
                {"filter": {"@ID": chunk}, "select": CLIENT_SELECT[kind]},
                take_clients,
                lambda error: None,  # a client that cannot be read fails its invoices below
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
    reader.run()

    for chunk in chunks:
        if chunk.failed:
            continue
        for row in chunk.rows():
            item = by_id.get(int(row.get("ownerId") or 0))
            if item is not None and item.read_error is None:
                item.rows.append(row)
    for item in by_id.values():
        if item.read_error is not None:
            _fail(ctx, item, item.read_error)
        elif item.invoice is None:
            _fail(ctx, item, PermanentError("Bitrix24 did not return the invoice.", system="bitrix24"))
    return {key: {"entity": entity, "addresses": addresses.get(key, [])} for key, entity in clients.items()}


def _rows_command(owner_ids: list[int]) -> tuple[str, dict]:
    return (
        "crm.item.productrow.list",
        {
            "filter": {"=ownerType": "SI", "=ownerId": owner_ids if len(owner_ids) > 1 else owner_ids[0]},
            "order": ROW_ORDER,
        },
    )


def _client_of(invoice: dict) -> ClientKey | None:
    company = int(invoice.get("companyId") or 0)
    if company:
        return (ContactLink.Kind.COMPANY.value, company)
    person = int(invoice.get("contactId") or 0)
    if person:
        return (ContactLink.Kind.CONTACT.value, person)
    return None


def _unlinked_clients(ctx: _Pass, items: list[_Work]) -> dict[str, list[int]]:
    keys = set()
    for item in items:
        item.client = _client_of(item.invoice)
        if item.client is not None:
            keys.add(item.client)
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


def _resolve_contacts(ctx: _Pass, items: list[_Work], clients: dict[ClientKey, dict]) -> None:
    mapped: dict[ClientKey, dict] = {}
    problems: dict[ClientKey, str] = {}
    for key, data in clients.items():
        kind, bitrix24_id = key
        number = contact_number_for(kind, bitrix24_id)
        try:
            if kind == ContactLink.Kind.COMPANY:
                mapped[key] = company_to_xero_contact(data["entity"], data["addresses"] or None, contact_number=number)
            else:
                mapped[key] = person_to_xero_contact(data["entity"], data["addresses"] or None, contact_number=number)
        except MappingError as exc:
            problems[key] = str(exc)
    needed = {item.client for item in items if item.client is not None}
    linked = {
        (link.bitrix24_kind, link.bitrix24_id): link
        for link in ContactLink.objects.filter(portal=ctx.portal, bitrix24_id__in=[i for _k, i in needed])
    }
    to_ensure = {key: contact for key, contact in mapped.items() if key not in linked}
    if to_ensure:
        try:
            results = contacts_ensure(portal=ctx.portal, xero=ctx.xero, clients=to_ensure)
        finally:
            ctx.report.xero_calls = ctx.xero.calls
        for key, result in results.items():
            if result.link is not None:
                linked[key] = result.link
            else:
                problems[key] = result.error
    for item in items:
        if item.client is None:
            _fail(
                ctx,
                item,
                PermanentError(
                    f"Invoice {item.invoice.get('accountNumber') or item.invoice_id} has no company or contact; "
                    "Xero needs a customer. Choose a client in Bitrix24.",
                    system="bitrix24",
                ),
            )
        elif item.client in linked:
            item.link_contact = linked[item.client]
        else:
            kind, bitrix24_id = item.client
            _fail(
                ctx,
                item,
                PermanentError(
                    problems.get(item.client) or f"Bitrix24 did not return the {kind} {bitrix24_id} of this invoice.",
                    system="xero" if item.client in mapped else "bitrix24",
                ),
            )


def _decide(ctx: _Pass, items: list[_Work]) -> None:
    links = {
        link.bitrix24_id: link
        for link in InvoiceLink.objects.filter(
            portal=ctx.portal, bitrix24_entity_type=SMART_INVOICE, bitrix24_id__in=[i.invoice_id for i in items]
        )
    }
    for item in items:
        item.link = links.get(item.invoice_id)
        invoice = item.invoice
        contact = item.link_contact
        try:
            item.content = invoice_to_xero(invoice, item.rows, {"ContactID": str(contact.xero_contact_id)}, ctx.mapping)
        except MappingError as exc:
            _fail(ctx, item, PermanentError(str(exc), system="bitrix24", code="mapping"))
            continue
        item.content_hash = invoice_push_fingerprint(item.content)
        link = item.link
        stage = str(invoice.get("stageId") or "")
        known = link is not None and link.xero_invoice_id is not None
        if known and stage == link.last_bitrix24_stage_id and item.content_hash == link.last_pushed_hash:
            # Same content, and the stage we last synced. When the pull engine acted last, it moved
            # this stage after a change in Xero: the event is the echo of its write. Otherwise it
            # is an event with nothing new for Xero.
            pulled_last = link.last_pulled_at is not None and (
                link.last_pushed_at is None or link.last_pulled_at > link.last_pushed_at
            )
            if pulled_last:
                _finish(ctx, item, outcome=SyncLogEntry.Outcome.ECHO_DROPPED, message="Echo of a change made in Xero.")
            else:
                _finish(
                    ctx, item, outcome=SyncLogEntry.Outcome.SKIPPED_UNCHANGED, message="Unchanged since the last push."
                )
            continue
        wanted = xero_status_for_stage(stage, ctx.b24_to_xero)
        decision = xero_status_for_push(
            link.last_xero_status if known else None,
            wanted,
            content_changed=not known or item.content_hash != link.last_pushed_hash,
            record_payment_allowed=ctx.settings.record_payment_on_paid,
        )
        item.decision = decision
        if decision.refused:
            _refuse(ctx, item, decision)
            continue
        if not decision.push and not decision.record_payment:
            _finish(
                ctx,
                item,
                outcome=SyncLogEntry.Outcome.SKIPPED_UNCHANGED,
                message=decision.message or "Unchanged since the last push.",
            )
            continue
        if decision.push:
            body = dict(item.content)
            if decision.status:
                body["Status"] = decision.status
            if known:
                body["InvoiceID"] = str(link.xero_invoice_id)
            item.body = body
            gap = totals_gap(invoice, item.content, ctx.mapping)
            if gap is not None:
                item.gap_message = gap.message


def _guard_lost_creates(ctx: _Pass, items: list[_Work]) -> None:
    """An earlier attempt may have created the invoice in Xero and died before storing the answer.
    Its link row exists (made just before that attempt), so look those up by number, one GET for
    the lot, and update instead of creating a twin. New invoices get their link row now, so that a
    crash during this pass is caught the same way next time."""
    creates = [item for item in items if "InvoiceID" not in item.body]
    suspicious = [item for item in creates if item.link is not None and item.body.get("InvoiceNumber")]
    for start in range(0, len(suspicious), NUMBERS_PER_LOOKUP):
        chunk = suspicious[start : start + NUMBERS_PER_LOOKUP]
        answer = ctx.xero_call("get_invoices", invoice_numbers=[item.body["InvoiceNumber"] for item in chunk])
        found = {inv.invoice_number: inv for inv in answer.invoices or [] if inv.type == "ACCREC"}
        for item in chunk:
            existing = found.get(item.body["InvoiceNumber"])
            # Only an invoice that points back at this Bitrix24 invoice is ours to adopt.
            if existing is not None and (existing.url or "") == item.body.get("Url", ""):
                item.body["InvoiceID"] = str(existing.invoice_id)
                if existing.status not in ("DRAFT", "SUBMITTED") and item.body.get("Status") in ("DRAFT", "SUBMITTED"):
                    item.body.pop("Status")  # it went further in Xero meanwhile; don't ask to go back
    missing = [
        InvoiceLink(portal=ctx.portal, bitrix24_entity_type=SMART_INVOICE, bitrix24_id=item.invoice_id)
        for item in creates
        if item.link is None
    ]
    if missing:
        InvoiceLink.objects.bulk_create(missing, ignore_conflicts=True)
        fresh = {
            link.bitrix24_id: link
            for link in InvoiceLink.objects.filter(
                portal=ctx.portal, bitrix24_entity_type=SMART_INVOICE, bitrix24_id__in=[i.invoice_id for i in creates]
            )
        }
        for item in creates:
            item.link = fresh.get(item.invoice_id, item.link)


def _batch_key(ctx: _Pass, batch: list[_Work]) -> str:
    # Deterministic over what is sent and the link versions it was decided on: a retry of the same
    # batch replays Xero's stored answer, while a later edit (new fingerprint, or a version bumped
    # by a saved push) gets a new key even if the content returns to an earlier state.
    material = "|".join(
        f"{item.invoice_id}:{invoice_push_fingerprint(item.body)}:{item.body.get('InvoiceID', 'new')}:"
        f"{item.link.version if item.link else 0}"
        for item in batch
    )
    return idempotency_key(
        ctx.portal.member_id, "batch", hashlib.sha256(material.encode()).hexdigest(), operation="invb"
    )


def _send_batch(ctx: _Pass, batch: list[_Work]) -> None:
    batch.sort(key=lambda item: item.invoice_id)
    model = ctx.xero.model("Invoices", {"Invoices": [_wire(item.body) for item in batch]})
    try:
        answer = ctx.xero_call(
            "update_or_create_invoices",
            invoices=model,
            summarize_errors=False,
            unitdp=4,
            idempotency_key=_batch_key(ctx, batch),
        )
    except AuthorizationLostError:
        raise
    except ExternalAPIError as exc:
        for item in batch:
            _fail(ctx, item, exc)
        return
    elements = answer.invoices or []
    for index, item in enumerate(batch):
        element = elements[index] if index < len(elements) else None
        if element is None:
            _fail(ctx, item, RetryableError("Xero's answer did not include this invoice.", system="xero"))
            continue
        problems = element_errors(element)
        if (element.status_attribute_string or "OK") == "ERROR" or problems:
            _fail(ctx, item, PermanentError("; ".join(problems) or "Xero refused the invoice.", system="xero"))
            continue
        _store_pushed(ctx, item, element)


def _wire(body: dict) -> dict:
    """Our mapped JSON in the shape the SDK reads: dates as Xero's /Date(ms)/ strings."""
    out = dict(body)
    for name in ("Date", "DueDate"):
        if out.get(name):
            day = dt.date.fromisoformat(str(out[name]))
            ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
            out[name] = f"/Date({ms}+0000)/"
    return out


def _store_pushed(ctx: _Pass, item: _Work, element) -> None:
    created = "InvoiceID" not in item.body
    status = str(element.status)
    amount_paid = to_decimal(element.amount_paid)
    stage = str(item.invoice.get("stageId") or "")
    saved = InvoiceLink.objects.filter(pk=item.link.pk, version=item.link.version)
    try:
        count = saved.update(
            xero_invoice_id=element.invoice_id,
            xero_invoice_number=element.invoice_number or "",
            last_pushed_hash=item.content_hash,
            last_xero_status=status,
            last_pulled_hash=invoice_pull_fingerprint(status, amount_paid, stage_id=stage),
            last_bitrix24_stage_id=stage,
            xero_updated_at=element.updated_date_utc,
            version=F("version") + 1,
            last_error="",
            last_error_permanent=False,
            last_pushed_at=timezone.now(),
        )
    except IntegrityError:
        _fail(
            ctx,
            item,
            PermanentError(
                f"Xero invoice {element.invoice_number} is already linked to another Bitrix24 invoice.", system="xero"
            ),
        )
        return
    if not count:
        # Someone saved a newer result meanwhile (fencing token moved): re-read and re-decide later.
        _fail(ctx, item, RetryableError("The invoice was synced concurrently; trying again.", system="xero"))
        return
    item.link.refresh_from_db()
    item.amount_due = to_decimal(element.amount_due)
    item.amount_paid = amount_paid
    if created:
        ctx.report.created += 1
    else:
        ctx.report.updated += 1
    message = item.decision.message if item.decision else ""
    if item.gap_message:
        message = (
            (message + " " if message else "") + "Pushed anyway; Xero's totals are authoritative. " + item.gap_message
        )
    details = {"rule": item.decision.rule if item.decision else "", "status": status}
    if item.gap_message:
        details["totals_gap"] = item.gap_message
    if item.decision and item.decision.record_payment:
        item.pushed_log = (created, message, details)  # logged after the payment
        return
    _finish(
        ctx,
        item,
        outcome=SyncLogEntry.Outcome.CREATED if created else SyncLogEntry.Outcome.UPDATED,
        message=message,
        details=details,
        counted=True,
    )


def _record_payments(ctx: _Pass, items: list[_Work]) -> None:
    """PAID is never a Status in Xero: pay the amount due to the configured account instead."""
    unknown = [item for item in items if item.amount_due is None]
    if unknown:
        answer = ctx.xero_call("get_invoices", i_ds=[str(item.link.xero_invoice_id) for item in unknown])
        by_id = {str(inv.invoice_id): inv for inv in answer.invoices or []}
        for item in unknown:
            found = by_id.get(str(item.link.xero_invoice_id))
            if found is None:
                _fail(ctx, item, PermanentError("Xero did not return the invoice to pay.", system="xero"))
                continue
            item.amount_due = to_decimal(found.amount_due)
            item.amount_paid = to_decimal(found.amount_paid)
    account = ctx.settings.payment_account_code
    for item in items:
        if item.finished:
            continue
        xero_id = str(item.link.xero_invoice_id)
        amount = item.amount_due
        if amount > 0:
            payment = ctx.xero.model(
                "Payment",
                {
                    "Invoice": {"InvoiceID": xero_id},
                    "Account": {"Code": account},
                    "Date": _wire({"Date": timezone.localdate().isoformat()})["Date"],
                    "Amount": amount,
                    "Reference": f"Bitrix24 invoice {item.invoice.get('accountNumber') or item.invoice_id}",
                },
            )
            try:
                ctx.xero_call("create_payment", payment=payment, idempotency_key=f"b24x:pay:{xero_id}:{amount}")
            except AuthorizationLostError:
                raise
            except ExternalAPIError as exc:
                _fail(ctx, item, exc)
                continue
        ctx.report.payments += 1
        stage = str(item.invoice.get("stageId") or "")
        paid = item.amount_paid + amount
        InvoiceLink.objects.filter(pk=item.link.pk).update(
            last_xero_status=PAID,
            last_pulled_hash=invoice_pull_fingerprint(PAID, paid, stage_id=stage),
            last_bitrix24_stage_id=stage,
            version=F("version") + 1,
            last_error="",
            last_error_permanent=False,
        )
        if item.pushed_log is not None:
            created, message, details = item.pushed_log
            sync_log_write(
                portal=ctx.portal,
                direction=Direction.PUSH,
                trigger=item.trigger,
                outcome=SyncLogEntry.Outcome.CREATED if created else SyncLogEntry.Outcome.UPDATED,
                bitrix24_id=item.invoice_id,
                xero_id=xero_id,
                invoice_number=item.link.xero_invoice_number,
                message=message,
                details=details,
            )
        _finish(
            ctx,
            item,
            outcome=SyncLogEntry.Outcome.PAYMENT_RECORDED,
            message=f"Recorded a payment of {amount} to account {account}; Xero marks the invoice PAID.",
            details={"amount": str(amount), "account": account},
            counted=item.pushed_log is not None,
        )


# --- outcomes -------------------------------------------------------------------------------------


def _log(ctx: _Pass, item: _Work, outcome: str, message: str = "", details: dict | None = None) -> None:
    link = item.link
    sync_log_write(
        portal=ctx.portal,
        direction=Direction.PUSH,
        trigger=item.trigger,
        outcome=outcome,
        bitrix24_id=item.invoice_id,
        xero_id=str(link.xero_invoice_id or "") if link else "",
        invoice_number=(link.xero_invoice_number if link else "")
        or str((item.invoice or {}).get("accountNumber") or ""),
        message=message,
        details=details,
    )


def _finish(
    ctx: _Pass, item: _Work, *, outcome: str, message: str = "", details: dict | None = None, counted: bool = False
) -> None:
    if item.finished:
        return
    item.finished = True
    if not counted:
        ctx.report.skipped += 1
    _log(ctx, item, outcome, message, details)
    if item.job is not None:
        job_done(item.job)


def _fail(ctx: _Pass, item: _Work, error: ExternalAPIError) -> None:
    if item.finished:
        return
    item.finished = True
    permanent = not error.retryable
    if permanent:
        ctx.report.failed += 1
    else:
        ctx.report.retrying += 1
    InvoiceLink.objects.filter(
        portal=ctx.portal, bitrix24_entity_type=SMART_INVOICE, bitrix24_id=item.invoice_id
    ).update(last_error=error.message[:4000], last_error_permanent=permanent)
    _log(
        ctx,
        item,
        SyncLogEntry.Outcome.FAILED if permanent else SyncLogEntry.Outcome.RETRYING,
        error.message,
        {"system": error.system, "status": error.status, "code": error.code, "details": error.details},
    )
    if item.job is not None:
        job_failed(item.job, error)


def _refuse(ctx: _Pass, item: _Work, decision: Decision) -> None:
    """A change Xero's rules forbid: shown to the user, never retried."""
    if item.link is None:
        item.link, _ = InvoiceLink.objects.get_or_create(
            portal=ctx.portal, bitrix24_entity_type=SMART_INVOICE, bitrix24_id=item.invoice_id
        )
    item.finished = True
    ctx.report.failed += 1
    InvoiceLink.objects.filter(pk=item.link.pk).update(last_error=decision.message, last_error_permanent=True)
    _log(ctx, item, SyncLogEntry.Outcome.REFUSED, decision.message, {"rule": decision.rule})
    if item.job is not None:
        job_failed(item.job, PermanentError(decision.message, system="xero", code=decision.rule))
