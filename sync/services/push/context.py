"""What a push pass shares (PassContext), what it knows about one invoice (Work), and its report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from accounts.models import Portal, XeroConnection
from integrations.bitrix24.api import BatchOutcome, Bitrix24Api
from integrations.bitrix24.api.command import Command
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from integrations.xero.client import XeroClient
from integrations.xero.types import Invoice as XeroInvoice
from sync.mappers.invoice import ItemRef
from sync.mappers.stage import Decision
from sync.models import ContactLink, InvoiceLink, ItemLink, SyncJob, SyncLogEntry, SyncSettings
from sync.services.contacts import ClientKey
from sync.services.drift import Gate
from sync.services.exactness import known_tax_rates
from sync.services.jobs import JOB_LEASE_S, job_leases_renew, jobs_done
from sync.services.log import sync_log_write_many
from sync.stage_map import stage_map_load

LEASE_RENEW_S = JOB_LEASE_S / 6


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
class Work:
    """One invoice on its way through the stages. A stage that settles the invoice (pushed, skipped,
    failed, refused, held, deferred) sets `finished` through sync.services.push.outcomes; later
    stages only look at the unfinished ones."""

    invoice_id: int
    job: SyncJob | None
    trigger: str
    entity_type: int = SMART_INVOICE
    # read
    invoice: dict | None = None
    rows: list[dict] = field(default_factory=list)
    read_error: ExternalAPIError | None = None
    client: ClientKey | None = None
    # resolve contacts
    link_contact: ContactLink | None = None
    # map
    link: InvoiceLink | None = None
    content: dict | None = None  # the Xero invoice without Status
    content_hash: str = ""
    # drift: forced (Xero differs and the user asked), held (Xero's change wins), Xero's current state
    gate: Gate = field(default_factory=Gate)
    # decide
    decision: Decision | None = None
    body: dict | None = None  # what is sent (content + Status + InvoiceID)
    gap_message: str = ""
    # write: Xero's answer element for this invoice
    answer: XeroInvoice | None = None
    # record: set once Xero answered for the invoice (its write, or a read before paying it)
    amount_due: Decimal | None = None
    amount_paid: Decimal = Decimal(0)
    pushed_log: tuple | None = None  # (created, message, details) logged after the payment
    finished: bool = False

    @property
    def created(self) -> bool:
        return self.body is not None and "InvoiceID" not in self.body


def unfinished(items: list[Work]) -> list[Work]:
    return [item for item in items if not item.finished]


class PassContext:
    """What one pass shares: the portal, counting clients, settings and the report."""

    def __init__(self, portal: Portal, connection: XeroConnection, report: PushReport, interactive: bool) -> None:
        self.portal = portal
        self.report = report
        self.b24 = Bitrix24Api.for_portal(portal, interactive=interactive)
        # Every Xero request of the pass is counted on the report and keeps the jobs' leases alive.
        self.xero = XeroClient(connection, interactive=interactive, on_call=self._xero_called)
        self.settings, _ = SyncSettings.objects.get_or_create(portal=portal)
        self.b24_to_xero, _xero_to_b24 = stage_map_load(portal)
        items = {
            link.bitrix24_product_id: ItemRef(code=link.xero_item_code, account_code=link.xero_sales_account_code)
            for link in ItemLink.objects.filter(portal=portal)
        }
        self.mapping = self.settings.to_mapping_settings(items=items, xero_tax_rates=known_tax_rates(portal))
        self.items: list[Work] = []  # the pass's invoices (for lease renewal)
        # The invoices' log entries and the jobs of those settled as done, stored together by
        # settle(): a few statements per batch or stage instead of several per invoice.
        self.log_entries: list[SyncLogEntry] = []
        self.done_jobs: list[SyncJob] = []
        self._renewed_at = time.monotonic()

    def keep_leases(self) -> None:
        """Renew the leases of the pass's running jobs, at most every LEASE_RENEW_S: a pass that waits
        long on throttles never sees its jobs taken back while it lives."""
        now = time.monotonic()
        if now - self._renewed_at < LEASE_RENEW_S:
            return
        self._renewed_at = now
        # Settled jobs are no longer renewed: finish them now rather than let their leases run out.
        self.settle()
        job_leases_renew([item.job for item in self.items if item.job is not None and not item.finished])

    def settle(self) -> None:
        """Store the log entries written since the last call (each invoice's outcome with them),
        then finish the jobs settled as done: the entry is there before its job is done, as when
        each was written at once. Taken before they are written, so a failed write is not retried
        by a later call (the caller's error path says what became of those invoices)."""
        entries, self.log_entries = self.log_entries, []
        jobs, self.done_jobs = self.done_jobs, []
        sync_log_write_many(entries)
        if jobs:
            jobs_done(jobs)

    def discard(self) -> None:
        """Forget what settle() has not stored yet (it was rolled back with its batch)."""
        self.log_entries, self.done_jobs = [], []

    def batch_all(self, commands: dict[str, Command[Any]]) -> BatchOutcome:
        self.keep_leases()
        self.report.bitrix24_calls += -(-len(commands) // 50)
        return self.b24.batch_all(commands)

    def _xero_called(self) -> None:
        self.keep_leases()
        self.report.xero_calls = self.xero.calls

    def links(self, items: list[Work]) -> dict[tuple[int, int], InvoiceLink]:
        """The InvoiceLinks of these invoices, by (entity type, Bitrix24 id)."""
        out: dict[tuple[int, int], InvoiceLink] = {}
        by_type: dict[int, list[int]] = {}
        for item in items:
            by_type.setdefault(item.entity_type, []).append(item.invoice_id)
        for entity_type, ids in by_type.items():
            for link in InvoiceLink.objects.filter(
                portal=self.portal, bitrix24_entity_type=entity_type, bitrix24_id__in=ids
            ):
                out[(entity_type, link.bitrix24_id)] = link
        return out
