"""Xero -> Bitrix24: read invoice statuses from Xero and move the Bitrix24 invoices' stages.

Two ways in, one way out:

- `statuses_pull_pending` serves PULL_STATUS jobs (one per InvoiceID a Xero webhook named): the
  linked ones are read with GET /Invoices?IDs=<50 ids>&page=1, one call per 50.
- `statuses_pull_recent` serves the "Update from Xero" button and the 5-minute sweep: GET /Invoices
  with If-Modified-Since = the portal's watermark minus an overlap, 1000 a page, oldest first.
- Both hand what they read to `_apply`: drop echoes, map the Xero status to a stage, write all stage
  changes in Bitrix24 `batch` calls of 50 crm.item.update, and record on the link what was written.

The echo rule (style-and-reliability.md B.4), content-based because neither side says who changed
what: `InvoiceLink.last_pulled_hash` = invoice_pull_fingerprint(Xero status, AmountPaid,
stage_id=the stage the invoice is on as far as we know). Whoever last synced the invoice stores it:
the push engine after writing to Xero, this module after moving a stage. An invoice read from Xero
whose fingerprint (with `last_bitrix24_stage_id`) equals it is the echo of our own write, or a
change we already acted on, or one that does not concern us (new lines): nothing is written. And
after we move a stage, `last_bitrix24_stage_id` holds the new stage, so the ONCRMDYNAMICITEMUPDATE
that our own crm.item.update raises finds nothing new for the push engine.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.client import BATCH_LIMIT, Bitrix24Client
from integrations.common.errors import AuthorizationLostError, ExternalAPIError, RetryableError
from integrations.common.locks import LockTimeout, redis_lock
from integrations.xero.client import XeroClient
from sync.mappers.canonical import invoice_pull_fingerprint
from sync.mappers.money import to_decimal
from sync.mappers.stage import PAID, stage_for_xero_status
from sync.models import Direction, InvoiceLink, StageMapping, SyncJob, SyncLogEntry, SyncSettings, Trigger
from sync.services.bitrix24_payments import PaidInvoice, bitrix24_payments_record
from sync.services.credit_notes import credit_notes_pull_recent
from sync.services.drift import drift_observe, xero_invoice_dict
from sync.services.gate import sync_gate
from sync.services.jobs import job_done, job_failed, jobs_claim
from sync.services.locks import invoice_lock_name
from sync.services.log import sync_log_write
from sync.sources import SOURCES, invoice_source
from sync.stage_map import stage_map_load

logger = logging.getLogger(__name__)

# Xero takes ~50 GUIDs in IDs before the URL gets too long (xero-api.md §2.3).
IDS_PER_CALL = 50
# Xero's largest page since July 2024 (§2.3).
PAGE_SIZE = 1000
# Jobs taken per round; a round is ceil(n/50) Xero calls and ceil(moves/50) Bitrix24 calls.
CLAIM_LIMIT = 500
# If-Modified-Since has second precision and UpdatedDateUTC milliseconds, and an invoice committed
# while the previous pass ran may carry a time just before its high-water mark: read a little of
# the past again. Re-read invoices are harmless (their fingerprint equals the stored one).
DEFAULT_OVERLAP_S = 120
# One pull per portal at a time: a button click during a sweep, or a webhook job during either,
# would otherwise read the same invoice before the other recorded its move and write it twice.
LOCK_TTL_S = 600
LOCK_WAIT_S = 60
# The push engine holds an invoice's lock for one pass; wait a little, else retry the invoice later.
INVOICE_LOCK_WAIT_S = 2.0

# Until SyncLogEntry.Outcome names it (reported to the models engineer), the literal value.
IGNORED_UNLINKED = SyncLogEntry.Outcome.IGNORED_UNLINKED


@dataclass
class PullReport:
    """What one pull did; the task logs it, the bench prints it, the UI may show it."""

    trigger: str
    skipped: str = ""  # why nothing ran (inactive portal/connection), else ""
    fetched: int = 0  # invoices read from Xero
    moved: int = 0  # Bitrix24 stages changed
    recorded: int = 0  # new Xero state stored, stage left as it is
    echoes: int = 0  # same fingerprint as stored: our own write's echo, or nothing new
    unlinked: int = 0  # InvoiceIDs not created by us: ignored
    failed: int = 0
    xero_calls: int = 0
    bitrix24_calls: int = 0
    watermark: datetime | None = None
    payments: int = 0  # invoices whose Bitrix24 payment is now paid (optional, SyncSettings)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class XeroInvoiceState:
    """The few fields a pull acts on, read off Xero's invoice (integrations.xero.types.Invoice)."""

    invoice_id: uuid.UUID
    number: str
    status: str
    amount_paid: Decimal
    updated_at: datetime | None
    # Xero's whole invoice as a plain dict (sync.services.drift): drift and payment details read it.
    raw: Mapping = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def of(cls, invoice) -> XeroInvoiceState:
        return cls(
            invoice_id=uuid.UUID(str(invoice.invoice_id)),
            number=invoice.invoice_number or "",
            status=str(invoice.status or ""),
            amount_paid=to_decimal(invoice.amount_paid or 0),
            updated_at=invoice.updated_date_utc,
            raw=xero_invoice_dict(invoice),
        )

    def fingerprint(self, stage_id: str) -> str:
        return invoice_pull_fingerprint(self.status, self.amount_paid, stage_id=stage_id)


# --- 1. webhook jobs --------------------------------------------------------------------------------


def statuses_pull_pending(*, portal_id: int) -> PullReport:
    """Serve the portal's due PULL_STATUS jobs (target = Xero InvoiceID), CLAIM_LIMIT at a time.

    1. An inactive portal or Xero connection runs nothing: the jobs stay pending for the sweeper
       to hand back once the user has reconnected.
    2. InvoiceIDs without a link are invoices someone made in Xero, not us: job done, logged once.
    3. The linked ones are read from Xero 50 per call and applied (`_apply`).
    4. Each job ends done, or failed with the API's error (job_failed retries retryable ones).
    """
    report = PullReport(trigger=Trigger.WEBHOOK)
    portal, connection = _active(portal_id, report)
    if portal is None or connection is None:
        return report
    with _pull_lock(portal.pk):
        while True:
            jobs = jobs_claim(portal_id=portal.pk, kind=SyncJob.Kind.PULL_STATUS, limit=CLAIM_LIMIT)
            if jobs:
                _serve_jobs(portal=portal, connection=connection, jobs=jobs, report=report)
            if len(jobs) < CLAIM_LIMIT:
                return report


def _serve_jobs(*, portal: Portal, connection: XeroConnection, jobs: list[SyncJob], report: PullReport) -> None:
    by_id: dict[uuid.UUID, list[SyncJob]] = {}
    for job in jobs:
        try:
            by_id.setdefault(uuid.UUID(job.target), []).append(job)
        except ValueError:
            job_done(job)  # not an InvoiceID: nothing Xero could tell us about it
    links = {
        link.xero_invoice_id: link for link in InvoiceLink.objects.filter(portal=portal, xero_invoice_id__in=by_id)
    }
    triggers = {invoice_id: group[0].trigger for invoice_id, group in by_id.items()}

    unlinked = [invoice_id for invoice_id in by_id if invoice_id not in links]
    _log_unlinked(portal, unlinked, triggers)
    report.unlinked += len(unlinked)
    for invoice_id in unlinked:
        for job in by_id[invoice_id]:
            job_done(job)

    outcomes: dict[uuid.UUID, ExternalAPIError | None] = {}
    fetched: list[XeroInvoiceState] = []
    client = XeroClient(connection, interactive=any(j.priority == SyncJob.Priority.USER for j in jobs))
    ids = list(links)
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        try:
            # page=1 makes Xero answer full invoices; 50 IDs always fit one page.
            invoices = client.invoices_get([str(i) for i in chunk])
        except ExternalAPIError as error:
            report.errors.append(str(error))
            # A rate limit, an outage or a lost grant hits every later call too: the rest waits.
            stop = isinstance(error, RetryableError | AuthorizationLostError)
            for invoice_id in ids[start:] if stop else chunk:
                outcomes[invoice_id] = error
            if stop:
                break
            continue
        report.xero_calls += 1
        fetched.extend(XeroInvoiceState.of(invoice) for invoice in invoices)
    report.fetched += len(fetched)
    outcomes.update(_apply(portal=portal, invoices=fetched, links=links, triggers=triggers, report=report))

    for invoice_id in links:
        error = outcomes.get(invoice_id)  # absent: Xero did not return it (gone); nothing to do
        for job in by_id[invoice_id]:
            if error is None:
                job_done(job)
            else:
                job_failed(job, error)


# --- 2. button and sweep ----------------------------------------------------------------------------


def statuses_pull_recent(*, portal: Portal, trigger: Trigger | str) -> PullReport:
    """Read every invoice Xero changed since the portal's watermark and apply the linked ones.

    GET /Invoices If-Modified-Since=<watermark - overlap>, order UpdatedDateUTC ASC, 1000 a page,
    until a page comes back short. The watermark then moves to the newest UpdatedDateUTC seen,
    except that an invoice whose Bitrix24 write failed for a retryable reason holds it back so the
    next pass reads it again. The button runs as interactive: its calls go before background ones.
    Xero errors propagate: the task decides about retrying, and the watermark stays where it was.
    """
    report = PullReport(trigger=str(trigger))
    portal, connection = _active(portal.pk, report)
    if portal is None or connection is None:
        return report
    with _pull_lock(portal.pk):
        sync_settings, _ = SyncSettings.objects.get_or_create(portal=portal)
        since = sync_settings.xero_modified_since or _first_link_time(portal)
        if since is None:
            # Nothing linked yet, so nothing in Xero can concern us: start watching from now.
            _advance_watermark(portal, timezone.now())
            report.watermark = timezone.now()
            return report
        overlap = timedelta(seconds=float(getattr(settings, "XERO_PULL_OVERLAP_S", DEFAULT_OVERLAP_S)))
        modified_since = (since - overlap).replace(microsecond=0)
        client = XeroClient(connection, interactive=str(trigger) == Trigger.BUTTON)
        high: datetime | None = None
        hold: datetime | None = None
        page = 1
        while True:
            changed = client.invoices_modified_since(modified_since, page=page, page_size=PAGE_SIZE)
            report.xero_calls += 1
            invoices = [XeroInvoiceState.of(invoice) for invoice in changed]
            report.fetched += len(invoices)
            stamps = [i.updated_at for i in invoices if i.updated_at is not None]
            if stamps:
                high = max([high, *stamps]) if high else max(stamps)
            # One query per page: only invoices we created are ours to act on.
            ids = [i.invoice_id for i in invoices]
            links = {
                link.xero_invoice_id: link
                for link in InvoiceLink.objects.filter(portal=portal, xero_invoice_id__in=ids)
            }
            ours = [i for i in invoices if i.invoice_id in links]
            outcomes = _apply(
                portal=portal, invoices=ours, links=links, triggers=dict.fromkeys(links, str(trigger)), report=report
            )
            for invoice in ours:
                error = outcomes.get(invoice.invoice_id)
                if error is not None and error.retryable and invoice.updated_at is not None:
                    hold = min(hold, invoice.updated_at) if hold else invoice.updated_at
            if len(invoices) < PAGE_SIZE:
                break
            page += 1
        # Credit notes (invoices below zero, issue 11): Xero sends no webhooks for them, so the
        # sweep and the button read them too — only for portals that have any.
        notes = credit_notes_pull_recent(
            portal=portal, client=client, modified_since=modified_since, page_size=PAGE_SIZE
        )
        if notes:
            report.xero_calls += 1 + len(notes) // PAGE_SIZE
            report.fetched += len(notes)
            links = {
                link.xero_invoice_id: link
                for link in InvoiceLink.objects.filter(portal=portal, xero_invoice_id__in=[n.invoice_id for n in notes])
            }
            ours = [n for n in notes if n.invoice_id in links]
            stamps = [n.updated_at for n in ours if n.updated_at is not None]
            if stamps:
                high = max([high, *stamps]) if high else max(stamps)
            outcomes = _apply(
                portal=portal, invoices=ours, links=links, triggers=dict.fromkeys(links, str(trigger)), report=report
            )
            for note in ours:
                error = outcomes.get(note.invoice_id)
                if error is not None and error.retryable and note.updated_at is not None:
                    hold = min(hold, note.updated_at) if hold else note.updated_at
        mark = min(high, hold) if high and hold else (hold or high)
        if mark is not None:
            _advance_watermark(portal, mark)
        report.watermark = mark or since
        return report


# --- 3. applying what Xero said ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Move:
    link: InvoiceLink
    invoice: XeroInvoiceState
    stage_id: str


def _apply(
    *,
    portal: Portal,
    invoices: list[XeroInvoiceState],
    links: Mapping[uuid.UUID, InvoiceLink],
    triggers: Mapping[uuid.UUID, str],
    report: PullReport,
) -> dict[uuid.UUID, ExternalAPIError | None]:
    """Act on invoices read from Xero; return each one's error (None = handled).

    1. Decide per invoice (`_decided`): echo, record only, or move the stage.
    2. Take the per-invoice locks the push engine uses for the invoices to move, and re-decide the
       ones whose link changed since it was read (the push engine stored something meanwhile).
       Holding the lock until the link is recorded means the push engine handles the
       ONCRMDYNAMICITEMUPDATE of our own write only after the link names the new stage.
    3. Write all stage changes in batches of 50; each command fails only its own invoice.
    4. Record each successful move on its link (stage, status, fingerprint) and log it.
    5. Optionally (SyncSettings) add a paid payment in Bitrix24 for invoices that became PAID.
    """
    outcomes: dict[uuid.UUID, ExternalAPIError | None] = dict.fromkeys(i.invoice_id for i in invoices)
    if not invoices:
        return outcomes
    for invoice in invoices:
        # Content drift and payment details first: an echo of our status is still news if the
        # lines changed in Xero (sync.services.drift).
        drift_observe(
            portal=portal,
            link=links[invoice.invoice_id],
            actual=invoice.raw,
            trigger=triggers.get(invoice.invoice_id, Trigger.WEBHOOK),
        )
    # One Xero -> Bitrix24 map per kind of invoice (a portal may have old and new ones).
    stage_map = {source.entity_type: stage_map_load(portal, source.entity_type) for source in SOURCES.values()}
    moves: list[_Move] = []
    newly_paid = [
        (links[i.invoice_id], i)
        for i in invoices
        if _newly_paid(links[i.invoice_id], i) and invoice_source(links[i.invoice_id].bitrix24_entity_type).has_payments
    ]
    for invoice in invoices:
        move = _decided(portal, links[invoice.invoice_id], invoice, stage_map, triggers, report)
        if move is not None:
            moves.append(move)
    if moves:
        _apply_moves(portal, moves, stage_map, triggers, outcomes, report)
    if newly_paid:
        _record_payments(portal, newly_paid, triggers, outcomes, report)
    return outcomes


def _apply_moves(
    portal: Portal,
    moves: list[_Move],
    stage_map: Mapping[int, tuple[dict[str, str], dict[str, str]]],
    triggers: Mapping[uuid.UUID, str],
    outcomes: dict[uuid.UUID, ExternalAPIError | None],
    report: PullReport,
) -> None:
    with contextlib.ExitStack() as held:
        locked: list[_Move] = []
        for move in moves:
            try:
                held.enter_context(
                    redis_lock(
                        invoice_lock_name(portal.pk, move.link.bitrix24_id),
                        ttl_s=LOCK_TTL_S,
                        wait_s=INVOICE_LOCK_WAIT_S,
                    )
                )
            except LockTimeout:
                busy = RetryableError(
                    "The invoice is being sent to Xero right now; trying again shortly.", system="bitrix24"
                )
                outcomes[move.invoice.invoice_id] = busy
                report.failed += 1
                continue
            locked.append(move)
        fresh = InvoiceLink.objects.in_bulk([m.link.pk for m in locked])
        ready: list[_Move] = []
        for move in locked:
            link = fresh.get(move.link.pk)
            if link is None:
                continue  # unlinked meanwhile
            if link.version != move.link.version:
                move = _decided(portal, link, move.invoice, stage_map, triggers, report)
                if move is None:
                    continue
            ready.append(move)
        interactive = any(triggers.get(m.invoice.invoice_id) == Trigger.BUTTON for m in ready)
        errors = _write_stages(portal, ready, interactive=interactive, report=report) if ready else {}
        names = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "name"))
        # The links and their log rows are committed together, still inside the locks, so the
        # push engine sees the recorded stages by the time it handles the events of our writes.
        with transaction.atomic():
            for move in ready:
                error = errors.get(move.link.pk)
                if error is None:
                    _moved(portal, move, triggers, names, report)
                else:
                    outcomes[move.invoice.invoice_id] = error
                    _move_failed(portal, move, error, triggers, report)


def _newly_paid(link: InvoiceLink, invoice: XeroInvoiceState) -> bool:
    """PAID in Xero, and not PAID when we (or the push engine, after paying it) last recorded it."""
    return invoice.status == PAID and link.last_xero_status != PAID


def _record_payments(
    portal: Portal,
    paid: list[tuple[InvoiceLink, XeroInvoiceState]],
    triggers: Mapping[uuid.UUID, str],
    outcomes: dict[uuid.UUID, ExternalAPIError | None],
    report: PullReport,
) -> None:
    """The optional "create a Bitrix24 payment record when PAID" (SyncSettings). Only for invoices
    whose stage write did not fail; a failure is logged, and does not undo or retry the stage move."""
    if not SyncSettings.objects.filter(portal=portal, create_bitrix24_payment_on_paid=True).exists():
        return
    due = [
        PaidInvoice(
            bitrix24_id=link.bitrix24_id,
            xero_invoice_id=str(invoice.invoice_id),
            invoice_number=invoice.number or link.xero_invoice_number,
            trigger=triggers.get(invoice.invoice_id, Trigger.WEBHOOK),
        )
        for link, invoice in paid
        if outcomes.get(invoice.invoice_id) is None
    ]
    interactive = any(p.trigger == Trigger.BUTTON for p in due)
    recorded = bitrix24_payments_record(
        portal=portal, client=Bitrix24Client(portal, interactive=interactive), invoices=due
    )
    report.payments += sum(1 for error in recorded.values() if error is None)


def _decided(
    portal: Portal,
    link: InvoiceLink,
    invoice: XeroInvoiceState,
    stage_maps: Mapping[int, tuple[dict[str, str], dict[str, str]]],
    triggers: Mapping[uuid.UUID, str],
    report: PullReport,
) -> _Move | None:
    """The stage move this invoice calls for, or None after handling it (echo, record, refuse).

    1. Older than what the link last acted on (an out-of-order read): ignore.
    2. Fingerprint equal to last_pulled_hash: an echo or nothing new; skip (logged for webhooks).
    3. Status not mapped back, or the invoice already on (or on a stage meaning) that status:
       record the new state on the link, leave Bitrix24 alone.
    """
    b24_to_xero, xero_to_b24 = stage_maps[link.bitrix24_entity_type]
    trigger = triggers.get(invoice.invoice_id, Trigger.WEBHOOK)
    if link.xero_updated_at and invoice.updated_at and invoice.updated_at < link.xero_updated_at:
        report.echoes += 1
        return None
    current, echo = _synced_stage(link, invoice, b24_to_xero)
    if echo:
        report.echoes += 1
        if trigger == Trigger.WEBHOOK:  # a sweep re-reads hundreds of these; say nothing
            _log(
                portal,
                link,
                invoice,
                trigger,
                SyncLogEntry.Outcome.ECHO_DROPPED,
                f"Xero status {invoice.status} is what we last synced; nothing to change in Bitrix24.",
            )
        return None
    target = stage_for_xero_status(
        invoice.status, current_stage_id=current, xero_to_b24=xero_to_b24, b24_to_xero=b24_to_xero
    )
    if target is None:
        if invoice.status != link.last_xero_status:
            _log(
                portal,
                link,
                invoice,
                trigger,
                SyncLogEntry.Outcome.STATUS_CHANGED,
                f"Xero status {invoice.status} recorded; the Bitrix24 stage stays as it is.",
            )
        _record(link, invoice, stage_id=current)
        report.recorded += 1
        return None
    return _Move(link, invoice, target)


def _synced_stage(link: InvoiceLink, invoice: XeroInvoiceState, stages: Mapping[str, str]) -> tuple[str, bool]:
    """(the Bitrix24 stage the link's last fingerprint was taken on, whether `invoice` matches it).

    Normally that is `last_bitrix24_stage_id`. A link whose stage was never stored (a push that
    recorded only last_pulled_hash) still carries the stage inside the fingerprint: try the
    portal's stages, a dozen sha256s, rather than take our own push's echo for a change.
    """
    stored = link.last_bitrix24_stage_id
    if invoice.fingerprint(stored) == link.last_pulled_hash:
        return stored, True
    if not stored and link.last_pulled_hash:
        for stage_id in stages:
            if invoice.fingerprint(stage_id) == link.last_pulled_hash:
                return stage_id, True
    return stored, False


def _moved(
    portal: Portal, move: _Move, triggers: Mapping[uuid.UUID, str], names: Mapping[str, str], report: PullReport
) -> None:
    previous = move.link.last_bitrix24_stage_id
    _record(move.link, move.invoice, stage_id=move.stage_id, clear_error=True)
    report.moved += 1
    _log(
        portal,
        move.link,
        move.invoice,
        triggers.get(move.invoice.invoice_id, Trigger.WEBHOOK),
        SyncLogEntry.Outcome.UPDATED,
        f"Xero status {move.invoice.status} -> Bitrix24 stage {names.get(move.stage_id, move.stage_id)}",
        details={"stage_id": move.stage_id, "previous_stage_id": previous},
    )


def _move_failed(
    portal: Portal, move: _Move, error: ExternalAPIError, triggers: Mapping[uuid.UUID, str], report: PullReport
) -> None:
    report.failed += 1
    InvoiceLink.objects.filter(pk=move.link.pk).update(
        last_error=error.message[:4000], last_error_permanent=not error.retryable, updated_at=timezone.now()
    )
    _log(
        portal,
        move.link,
        move.invoice,
        triggers.get(move.invoice.invoice_id, Trigger.WEBHOOK),
        SyncLogEntry.Outcome.RETRYING if error.retryable else SyncLogEntry.Outcome.FAILED,
        error.message,
        details={"stage_id": move.stage_id, "code": error.code or ""},
    )


def _write_stages(
    portal: Portal, moves: list[_Move], *, interactive: bool, report: PullReport
) -> dict[int, ExternalAPIError]:
    """The source's move for every invoice (crm.item.update {entityTypeId: 31, id, fields: {stageId}}
    for new invoices, crm.invoice.update {id, fields: {STATUS_ID}} for old ones), 50 per `batch`.

    Bitrix24Client.batch_all would raise on the first batch that fails as a whole and lose the
    results of the ones before it, so the chunks are sent one by one here: a network error or a
    full bucket fails its own chunk (and, being retryable or fatal for all, the ones after it).
    """
    client = Bitrix24Client(portal, interactive=interactive)
    errors: dict[int, ExternalAPIError] = {}
    for start in range(0, len(moves), BATCH_LIMIT):
        chunk = moves[start : start + BATCH_LIMIT]
        commands = {
            f"s{move.link.pk}": invoice_source(move.link.bitrix24_entity_type).move_command(
                move.link.bitrix24_id, move.stage_id
            )
            for move in chunk
        }
        try:
            outcome = client.batch(commands)
        except ExternalAPIError as error:
            report.errors.append(str(error))
            for move in moves[start:]:
                errors[move.link.pk] = error
            break
        report.bitrix24_calls += 1
        for move in chunk:
            key = f"s{move.link.pk}"
            if key in outcome.errors:
                errors[move.link.pk] = outcome.errors[key]
            elif key not in outcome.results:
                errors[move.link.pk] = RetryableError("Bitrix24 did not run the stage update", system="bitrix24")
    return errors


def _record(link: InvoiceLink, invoice: XeroInvoiceState, *, stage_id: str, clear_error: bool = False) -> None:
    """Store what we now know, compare-and-set on `version` (style B.3).

    If someone else saved the link since we read it (the push engine handling an event), their
    stage is the newer fact: keep it and fingerprint with it; the Xero side is ours to record.
    """
    read_stage, version = link.last_bitrix24_stage_id, link.version
    for _ in range(5):
        values = {
            "last_xero_status": invoice.status,
            "last_bitrix24_stage_id": stage_id,
            "last_pulled_hash": invoice.fingerprint(stage_id),
            "xero_updated_at": invoice.updated_at,
            "last_pulled_at": timezone.now(),
            "updated_at": timezone.now(),
        }
        if clear_error:
            values.update(last_error="", last_error_permanent=False)
        if InvoiceLink.save_if_version(link.pk, version, **values):
            link.version = version + 1
            for name, value in values.items():
                setattr(link, name, value)
            return
        fresh = InvoiceLink.objects.filter(pk=link.pk).values("version", "last_bitrix24_stage_id").first()
        if fresh is None:
            return  # the link was deleted meanwhile: nothing left to record on
        version = fresh["version"]
        if fresh["last_bitrix24_stage_id"] != read_stage:
            stage_id = fresh["last_bitrix24_stage_id"]
    logger.warning("link %s kept changing under the pull; its state was not recorded", link.pk)


# --- helpers ----------------------------------------------------------------------------------------


def _active(portal_id: int, report: PullReport) -> tuple[Portal | None, XeroConnection | None]:
    portal = Portal.objects.filter(pk=portal_id).first()
    connection = XeroConnection.objects.filter(portal=portal).first() if portal is not None else None
    gate = sync_gate(portal, connection=connection)
    if not gate.jobs_may_run:
        report.skipped = gate.reason
        return (portal if portal is not None and portal.is_active else None), None
    return portal, connection


@contextmanager
def _pull_lock(portal_id: int) -> Iterator[None]:
    with redis_lock(f"sync:pull:{portal_id}", ttl_s=LOCK_TTL_S, wait_s=LOCK_WAIT_S):
        yield


def _first_link_time(portal: Portal) -> datetime | None:
    """Where a first sweep starts: no invoice of ours changed in Xero before we linked it."""
    return (
        InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def _advance_watermark(portal: Portal, mark: datetime) -> None:
    # Only forward: a slow pass finishing after a faster one must not move it back.
    SyncSettings.objects.filter(portal=portal).filter(
        Q(xero_modified_since__isnull=True) | Q(xero_modified_since__lt=mark)
    ).update(xero_modified_since=mark, updated_at=timezone.now())


def _log_unlinked(portal: Portal, invoice_ids: list[uuid.UUID], triggers: Mapping[uuid.UUID, str]) -> None:
    """Once per InvoiceID: every change of a Xero-made invoice sends a webhook, forever."""
    if not invoice_ids:
        return
    seen = set(
        SyncLogEntry.objects.filter(
            portal=portal, outcome=IGNORED_UNLINKED, xero_id__in=[str(i) for i in invoice_ids]
        ).values_list("xero_id", flat=True)
    )
    for invoice_id in invoice_ids:
        if str(invoice_id) not in seen:
            sync_log_write(
                portal=portal,
                direction=Direction.PULL,
                trigger=triggers.get(invoice_id, Trigger.WEBHOOK),
                outcome=IGNORED_UNLINKED,
                xero_id=str(invoice_id),
                message="This Xero invoice was not created from Bitrix24, so it is not synced back.",
            )


def _log(
    portal: Portal,
    link: InvoiceLink,
    invoice: XeroInvoiceState,
    trigger: str,
    outcome: str,
    message: str,
    *,
    details: dict | None = None,
) -> None:
    sync_log_write(
        portal=portal,
        direction=Direction.PULL,
        trigger=trigger,
        outcome=outcome,
        bitrix24_id=link.bitrix24_id,
        xero_id=str(invoice.invoice_id),
        invoice_number=invoice.number or link.xero_invoice_number,
        message=message,
        details={"xero_status": invoice.status, "amount_paid": str(invoice.amount_paid), **(details or {})},
    )
