"""Reads for the app's pages: the invoices a signed-in Bitrix24 user may see, one invoice, the
sync log as that user may see it, and the progress of the jobs their clicks created.

Every Bitrix24 read here goes through the USER's client (accounts.services.frame), so Bitrix24's
own permissions decide what is listed: crm.item.list silently leaves out what the user may not
read, crm.item.get answers ACCESS_DENIED (bitrix24-api.md §7). Our tables add only what Bitrix24
does not know (link state, Xero status, last error), always scoped to the portal.

Call budget per invoice-list page view (checked by tests against the sandbox's call log):
1. the rows: one crm.item.list call, or ONE batch of the 50-row pages that cover the slice;
2. the names: one batch of crm.company.list / crm.contact.list by @ID (+ crm.status.list for any
   stage the stage map does not know yet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q

from accounts.models import Portal
from integrations.bitrix24.client import PAGE_SIZE as B24_PAGE
from integrations.bitrix24.client import Bitrix24Client
from sync.mappers.exactness import HELD_PREFIX
from sync.models import InvoiceLink, InvoiceOutcome, StageMapping, SyncJob, SyncLogEntry, SyncSettings, XeroStatus
from sync.services.outcomes import outcomes_for
from sync.sources import SMART_INVOICE, invoice_source, portal_sources

Source = Any  # sync.sources.SmartInvoices | OldInvoices
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
LOG_PAGE_SIZE = 50
MAX_PROGRESS_JOBS = 1000


# --- the filter the page's form describes ---------------------------------------------------------


@dataclass(frozen=True)
class InvoiceFilter:
    """Last-modified range in whole days, and the sort direction.

    Days are UTC day bounds (00:00:00 to 23:59:59 +00:00), sent with an explicit offset: Bitrix24
    interprets naive datetimes in a portal/user dependent zone (bitrix24-api.md §2.2), so an
    explicit UTC bound is the only reading that means the same for every user. The page says so.
    """

    modified_from: date | None = None
    modified_to: date | None = None
    order: str = "desc"

    def bitrix24_filter(self) -> dict[str, str]:
        flt: dict[str, str] = {}
        if self.modified_from:
            flt[">=updatedTime"] = f"{self.modified_from.isoformat()}T00:00:00+00:00"
        if self.modified_to:
            flt["<=updatedTime"] = f"{self.modified_to.isoformat()}T23:59:59+00:00"
        return flt

    def bitrix24_order(self) -> dict[str, str]:
        # id as the tie-breaker: many invoices share a second, and pages must not overlap.
        direction = "ASC" if self.order == "asc" else "DESC"
        return {"updatedTime": direction, "id": direction}


# --- what the pages show --------------------------------------------------------------------------


@dataclass
class InvoiceRow:
    id: int
    number: str
    title: str
    company_id: int
    company_name: str
    contact_id: int
    contact_name: str
    amount: Decimal | None
    currency: str
    stage_id: str
    stage_name: str
    updated_at: datetime | None
    link: InvoiceLink | None = None
    job_status: str = ""  # status of the newest push job that is not finished ("pending"/"running")
    outcome: InvoiceOutcome | None = None  # where it stands after the last attempt (sync.services.outcomes)
    entity_type: int = SMART_INVOICE  # 31 new invoice, 5 old invoice (crm.invoice.*)

    @property
    def kind_query(self) -> str:
        """The query parameter that names an old invoice on the app's pages ("" for a new one)."""
        return "" if self.entity_type == SMART_INVOICE else f"kind={self.entity_type}"

    @property
    def kind(self) -> str:
        """ "New" or "Old": which kind of Bitrix24 invoice (a portal may have both)."""
        return invoice_source(self.entity_type).label

    @property
    def link_state(self) -> str:
        """One word for the badge and for tests: queued, failed, refused, held, changed, linked or
        unlinked — the last outcome, whether or not the invoice ever reached Xero."""
        if self.job_status:
            return "queued"
        state = self.outcome.state if self.outcome is not None else ""
        if state in (InvoiceOutcome.State.FAILED, InvoiceOutcome.State.RETRYING):
            return "failed"
        if state == InvoiceOutcome.State.REFUSED:
            return "refused"
        if state == InvoiceOutcome.State.HELD:
            return "held"
        if state == InvoiceOutcome.State.CHANGED_IN_XERO:
            return "changed"
        if self.link is not None and self.link.last_error.startswith(HELD_PREFIX):
            return "held"  # Xero would not total what Bitrix24 shows (sync.services.exactness)
        if self.link is not None and self.link.last_error:
            return "failed"
        if self.link is not None and self.link.xero_invoice_id and self.link.drift:
            return "changed"  # Changed in Xero (sync.services.drift): the diff is on the invoice page
        if self.link is not None and self.link.xero_invoice_id:
            return "linked"
        return "unlinked"

    @property
    def reason(self) -> str:
        """Why the invoice is failed/refused/held, or what a queued retry waits on, in the API's words."""
        if self.outcome is not None and self.outcome.state != InvoiceOutcome.State.ON_XERO and self.outcome.reason:
            return self.outcome.reason
        return self.link.last_error if self.link is not None else ""

    @property
    def retrying(self) -> bool:
        return (
            self.job_status == SyncJob.Status.PENDING
            and self.outcome is not None
            and self.outcome.state == InvoiceOutcome.State.RETRYING
        )

    @property
    def xero_status(self) -> str:
        return self.link.get_last_xero_status_display() if self.link and self.link.last_xero_status else ""


@dataclass
class InvoicePage:
    rows: list[InvoiceRow]
    total: int
    page: int
    pages: int
    page_size: int

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return (self.page - 1) * self.page_size + len(self.rows)


@dataclass(frozen=True)
class BaseAmounts:
    """A foreign-currency invoice in the base currency, by Bitrix24's rate and by Xero's (issue 11)."""

    currency: str
    bitrix24: Decimal | None
    xero: Decimal | None

    @property
    def differ(self) -> bool:
        return self.bitrix24 is not None and self.xero is not None and self.bitrix24 != self.xero


@dataclass
class InvoiceDetail:
    row: InvoiceRow
    product_rows: list[dict]
    log: list[SyncLogEntry]
    base_amounts: BaseAmounts | None = None


def base_amounts_of(row: InvoiceRow, currencies: list) -> BaseAmounts | None:
    """Bitrix24's amount at its rate (AMOUNT base units per AMOUNT_CNT) and Xero's total at the
    CurrencyRate Xero used (units of the currency per 1 base unit), when the invoice is foreign."""
    rates = {str(c.get("CURRENCY")): c for c in currencies or [] if isinstance(c, dict)}
    base = next((code for code, c in rates.items() if c.get("BASE") == "Y"), "")
    if not base or not row.currency or row.currency == base:
        return None
    bitrix24 = xero = None
    mine = rates.get(row.currency)
    try:
        if mine is not None and row.amount is not None:
            per_unit = Decimal(str(mine["AMOUNT"])) / Decimal(str(mine.get("AMOUNT_CNT") or 1))
            bitrix24 = (row.amount * per_unit).quantize(Decimal("0.01"))
        link = row.link
        if link is not None and link.xero_total is not None and link.xero_currency_rate:
            sign = -1 if link.xero_type == "ACCRECCREDIT" else 1
            xero = (sign * link.xero_total / link.xero_currency_rate).quantize(Decimal("0.01"))
    except (ArithmeticError, KeyError, ValueError):
        return None
    return BaseAmounts(currency=base, bitrix24=bitrix24, xero=xero)


# --- Bitrix24 reads as the user -------------------------------------------------------------------


def _source(client: Bitrix24Client, entity_type: int | None) -> Source:
    """The source of the kind of invoices asked for; by default the portal's first kind."""
    return invoice_source(entity_type) if entity_type else portal_sources(client.portal)[0]


def _list_command(source: Source, flt: InvoiceFilter, start: int) -> tuple[str, dict]:
    return source.list_command(flt.bitrix24_filter(), order=flt.bitrix24_order(), start=start)


def _fetch_slice(
    client: Bitrix24Client, flt: InvoiceFilter, offset: int, size: int, source: Source
) -> tuple[list[dict], int]:
    """Rows [offset, offset+size) and the total. Bitrix24's pages are fixed at 50, so fetch the
    pages that cover the slice: one plain call, or all of them in one batch."""
    starts = list(range(offset // B24_PAGE * B24_PAGE, offset + size, B24_PAGE))
    if len(starts) == 1:
        response = client.call(*_list_command(source, flt, starts[0]))
        rows, total = source.items(response.result), int(response.total or 0)
    else:
        batch = client.batch({f"p{start}": _list_command(source, flt, start) for start in starts})
        rows = [row for start in starts for row in source.items(batch.value(f"p{start}"))]
        total = max(batch.totals.values(), default=0)
    skip = offset - starts[0]
    return rows[skip : skip + size], total


def _chunks(ids: list[int], size: int = B24_PAGE) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _names_and_stages(
    client: Bitrix24Client, portal: Portal, items: list[dict], source: Source
) -> tuple[dict[int, str], dict[int, str], dict[str, str]]:
    """Company and contact names of these rows, and stage names, in at most one batch call.

    Stage names come from the stage map (no call); a stage it does not know yet (added in Bitrix24
    since setup) is read with crm.status.list in the same batch. A user without read rights on
    companies or contacts still gets the list: the names are left blank."""
    company_ids = sorted({int(i["companyId"]) for i in items if i.get("companyId")})
    contact_ids = sorted({int(i["contactId"]) for i in items if i.get("contactId")})
    stage_ids = {str(i.get("stageId") or "") for i in items} - {""}
    stages = dict(StageMapping.objects.filter(portal=portal, stage_id__in=stage_ids).values_list("stage_id", "name"))
    missing_categories = sorted({int(i.get("categoryId") or 0) for i in items if i.get("stageId") not in stages})
    commands: dict[str, tuple[str, dict]] = {}
    for n, chunk in enumerate(_chunks(company_ids)):
        commands[f"co{n}"] = ("crm.company.list", {"filter": {"@ID": chunk}, "select": ["ID", "TITLE"]})
    for n, chunk in enumerate(_chunks(contact_ids)):
        commands[f"ct{n}"] = (
            "crm.contact.list",
            {"filter": {"@ID": chunk}, "select": ["ID", "NAME", "LAST_NAME"]},
        )
    for category in missing_categories:
        commands[f"st{category}"] = source.stages_command(category)
    companies: dict[int, str] = {}
    contacts: dict[int, str] = {}
    if not commands:
        return companies, contacts, stages
    batch = client.batch_all(commands)
    for key, result in batch.results.items():
        for row in result if isinstance(result, list) else []:
            if key.startswith("co"):
                companies[int(row["ID"])] = row.get("TITLE") or ""
            elif key.startswith("ct"):
                contacts[int(row["ID"])] = " ".join(p for p in (row.get("NAME"), row.get("LAST_NAME")) if p)
            else:
                stages.setdefault(str(row.get("STATUS_ID") or ""), row.get("NAME") or "")
    return companies, contacts, stages


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _learn_portal_zone(portal: Portal, items: list[dict]) -> None:
    """Bitrix24 writes its dates in the portal's zone ("…+03:00"): keep that offset, so pages show
    times in the portal's zone when the user has none of their own (connector.i18n)."""
    from connector.i18n import offset_name

    for item in items:
        zone = offset_name(_datetime(item.get("updatedTime")))
        if zone:
            SyncSettings.objects.filter(portal=portal).exclude(time_zone=zone).update(time_zone=zone)
            return


def _rows(client: Bitrix24Client, portal: Portal, items: list[dict], source: Source) -> list[InvoiceRow]:
    _learn_portal_zone(portal, items)
    companies, contacts, stages = _names_and_stages(client, portal, items, source)
    ids = [int(i["id"]) for i in items]
    links = {
        link.bitrix24_id: link
        for link in InvoiceLink.objects.filter(
            portal=portal, bitrix24_entity_type=source.entity_type, bitrix24_id__in=ids
        )
    }
    outcomes = outcomes_for(portal, [(source.entity_type, i) for i in ids])
    busy = dict(
        SyncJob.objects.filter(
            portal=portal,
            kind=SyncJob.Kind.PUSH_INVOICE,
            target__in=[source.target(i) for i in ids],
            status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING],
        ).values_list("target", "status")
    )
    rows = []
    for item in items:
        invoice_id = int(item["id"])
        company_id, contact_id = int(item.get("companyId") or 0), int(item.get("contactId") or 0)
        stage_id = str(item.get("stageId") or "")
        rows.append(
            InvoiceRow(
                id=invoice_id,
                number=str(item.get("accountNumber") or ""),
                title=str(item.get("title") or ""),
                company_id=company_id,
                company_name=companies.get(company_id, ""),
                contact_id=contact_id,
                contact_name=contacts.get(contact_id, ""),
                amount=_decimal(item.get("opportunity")),
                currency=str(item.get("currencyId") or ""),
                stage_id=stage_id,
                stage_name=stages.get(stage_id, stage_id),
                updated_at=_datetime(item.get("updatedTime")),
                link=links.get(invoice_id),
                job_status=busy.get(source.target(invoice_id), ""),
                outcome=outcomes.get((source.entity_type, invoice_id)),
                entity_type=source.entity_type,
            )
        )
    return rows


def invoices_for_user(
    *,
    client: Bitrix24Client,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    modified_from: date | None = None,
    modified_to: date | None = None,
    order: str = "desc",
    entity_type: int | None = None,
) -> InvoicePage:
    """One page of the invoices of one kind (`entity_type`, the portal's first kind by default) the
    client's user may see, newest change first (or oldest).

    A page past the end shows the last page (a filter narrowed the list under an old link)."""
    source = _source(client, entity_type)
    page_size = page_size if page_size in PAGE_SIZES else DEFAULT_PAGE_SIZE
    page = max(1, page)
    flt = InvoiceFilter(modified_from, modified_to, "asc" if order == "asc" else "desc")
    items, total = _fetch_slice(client, flt, (page - 1) * page_size, page_size, source)
    pages = max(1, math.ceil(total / page_size))
    if not items and page > pages:
        page = pages
        items, total = _fetch_slice(client, flt, (page - 1) * page_size, page_size, source)
    return InvoicePage(
        rows=_rows(client, client.portal, items, source), total=total, page=page, pages=pages, page_size=page_size
    )


def invoice_ids_for_user(
    *,
    client: Bitrix24Client,
    modified_from: date | None = None,
    modified_to: date | None = None,
    entity_type: int | None = None,
) -> list[int]:
    """Every id the user sees under the filter ("all filtered"): Bitrix24's bulk pattern (§2.2),
    so the user's token, not ours, decides what the click may act on."""
    source = _source(client, entity_type)
    flt = InvoiceFilter(modified_from, modified_to)
    method, params = source.list_command(flt.bitrix24_filter(), ids_only=True)
    rows = client.list_all(method, params, key=source.list_key, fast=True)
    return [int(source.item(row)["id"]) for row in rows]


def visible_invoice_ids(
    *, client: Bitrix24Client, ids: list[int] | set[int], entity_type: int | None = None
) -> set[int]:
    """The subset of `ids` the client's user may see: one list call per 50 ids, in one batch."""
    source = _source(client, entity_type)
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return set()
    commands = {
        f"v{n}": source.list_command({"@id": chunk}, start=-1, ids_only=True) for n, chunk in enumerate(_chunks(wanted))
    }
    if len(commands) == 1:
        ((method, params),) = commands.values()
        results = [client.result(method, params)]
    else:
        batch = client.batch_all(commands)
        results = [batch.value(key) for key in commands]
    return {int(row["id"]) for result in results for row in source.items(result)} & set(wanted)


def invoice_for_user(
    *, client: Bitrix24Client, invoice_id: int, log_limit: int = 20, entity_type: int | None = None
) -> InvoiceDetail:
    """One invoice with its product rows and names, in one batch; raises Bitrix24's own error
    (PermanentError with code ACCESS_DENIED or NOT_FOUND) when the user may not see it."""
    source = _source(client, entity_type)
    company_ref, contact_ref = source.client_refs()
    batch = client.batch(
        {
            **source.get_commands(invoice_id),
            # Chained on the item: no second round trip for the names (an id of 0 matches nothing).
            "co0": ("crm.company.list", {"filter": {"ID": company_ref}, "select": ["ID", "TITLE"]}),
            "ct0": ("crm.contact.list", {"filter": {"ID": contact_ref}, "select": ["ID", "NAME", "LAST_NAME"]}),
            # The rates, for a foreign invoice's amount in the base currency (same call, no extra trip).
            "cur": ("crm.currency.list", {}),
        }
    )
    if "item" in batch.errors:  # Bitrix24's own error when the user may not see the invoice
        raise source.classify(batch.errors["item"])
    item, product_rows = source.detail(batch.results)
    companies = {int(r["ID"]): r.get("TITLE") or "" for r in batch.results.get("co0") or [] if isinstance(r, dict)}
    contacts = {
        int(r["ID"]): " ".join(p for p in (r.get("NAME"), r.get("LAST_NAME")) if p)
        for r in batch.results.get("ct0") or []
        if isinstance(r, dict)
    }
    portal = client.portal
    stages = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "name"))
    link = InvoiceLink.objects.filter(
        portal=portal, bitrix24_entity_type=source.entity_type, bitrix24_id=invoice_id
    ).first()
    job = (
        SyncJob.objects.filter(
            portal=portal,
            kind=SyncJob.Kind.PUSH_INVOICE,
            target=source.target(invoice_id),
            status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING],
        )
        .values_list("status", flat=True)
        .first()
    )
    company_id, contact_id = int(item.get("companyId") or 0), int(item.get("contactId") or 0)
    stage_id = str(item.get("stageId") or "")
    row = InvoiceRow(
        id=int(item["id"]),
        number=str(item.get("accountNumber") or ""),
        title=str(item.get("title") or ""),
        company_id=company_id,
        company_name=companies.get(company_id, ""),
        contact_id=contact_id,
        contact_name=contacts.get(contact_id, ""),
        amount=_decimal(item.get("opportunity")),
        currency=str(item.get("currencyId") or ""),
        stage_id=stage_id,
        stage_name=stages.get(stage_id, stage_id),
        updated_at=_datetime(item.get("updatedTime")),
        link=link,
        job_status=job or "",
        outcome=outcomes_for(portal, [(source.entity_type, int(item["id"]))]).get(
            (source.entity_type, int(item["id"]))
        ),
        entity_type=source.entity_type,
    )
    log = list(
        SyncLogEntry.objects.filter(
            portal=portal, object_kind=SyncLogEntry.ObjectKind.INVOICE, bitrix24_id=str(invoice_id)
        )[:log_limit]
    )
    return InvoiceDetail(
        row=row, product_rows=product_rows, log=log, base_amounts=base_amounts_of(row, batch.results.get("cur"))
    )


# --- the sync log ---------------------------------------------------------------------------------


@dataclass
class LogRow:
    entry: SyncLogEntry
    job_id: int | None = None  # the job a Retry acts on (failed, or already pending again)
    job_status: str = ""

    @property
    def kind_query(self) -> str:
        """ "kind=5" for an old invoice's entry (its page link names the kind), else ""."""
        entity_type = entry_entity_type(self.entry)
        return "" if entity_type == SMART_INVOICE else f"kind={entity_type}"


@dataclass
class LogPage:
    rows: list[LogRow]
    page: int
    pages: int
    total: int
    hidden: int = 0  # entries on this page left out: invoices the user may not see
    failed_only: bool = False
    extra: dict = field(default_factory=dict)


def _log_query(*, portal: Portal, is_admin: bool, failed_only: bool):
    entries = SyncLogEntry.objects.filter(portal=portal)
    if not is_admin:
        # Only invoices have per-user permissions we can check; contacts and items are for admins.
        entries = entries.filter(object_kind=SyncLogEntry.ObjectKind.INVOICE)
    if failed_only:
        entries = entries.filter(
            outcome__in=[
                SyncLogEntry.Outcome.FAILED,
                SyncLogEntry.Outcome.RETRYING,
                SyncLogEntry.Outcome.HELD,
                SyncLogEntry.Outcome.REFUSED,
            ]
        )
    return entries.order_by("-created_at", "-id")


def entry_entity_type(entry: SyncLogEntry) -> int:
    """The kind of Bitrix24 invoice a log entry is about: the push logs old invoices' entries with
    details["entity_type"] = 5; entries without it are about new invoices."""
    try:
        return int((entry.details or {}).get("entity_type") or SMART_INVOICE)
    except (TypeError, ValueError):
        return SMART_INVOICE


def _job_target(entry: SyncLogEntry) -> tuple[str, str] | None:
    """The (kind, target) of the job that produced a log entry, as the engine names them."""
    if entry.object_kind != SyncLogEntry.ObjectKind.INVOICE:
        return None
    if entry.direction == "push" and entry.bitrix24_id:
        return SyncJob.Kind.PUSH_INVOICE, f"{entry_entity_type(entry)}:{entry.bitrix24_id}"
    if entry.direction == "pull" and entry.xero_id:
        return SyncJob.Kind.PULL_STATUS, entry.xero_id
    return None


def _latest_jobs(portal: Portal, entries: list[SyncLogEntry]) -> dict[tuple[str, str], SyncJob]:
    """The newest job per (kind, target) of these entries, in one query."""
    targets = {t for t in (_job_target(e) for e in entries) if t}
    if not targets:
        return {}
    query = Q()
    for kind, target in targets:
        query |= Q(kind=kind, target=target)
    latest: dict[tuple[str, str], SyncJob] = {}
    for job in SyncJob.objects.filter(query, portal=portal).order_by("-created_at", "-id"):
        latest.setdefault((job.kind, job.target), job)
    return latest


def sync_log_for_user(
    *, portal: Portal, client: Bitrix24Client | None, is_admin: bool, page: int = 1, failed_only: bool = False
) -> LogPage:
    """The portal's log, newest first. A non-admin sees only entries of invoices Bitrix24 lets
    them see (checked for this page's ids with their token; `client` is required then)."""
    entries_query = _log_query(portal=portal, is_admin=is_admin, failed_only=failed_only)
    total = entries_query.count()
    pages = max(1, math.ceil(total / LOG_PAGE_SIZE))
    page = min(max(1, page), pages)
    entries = list(entries_query[(page - 1) * LOG_PAGE_SIZE : page * LOG_PAGE_SIZE])
    hidden = 0
    if not is_admin:
        by_kind: dict[int, set[int]] = {}
        for e in entries:
            if e.bitrix24_id.isdigit():
                by_kind.setdefault(entry_entity_type(e), set()).add(int(e.bitrix24_id))
        visible = {
            (kind, i)
            for kind, ids in by_kind.items()
            for i in visible_invoice_ids(client=client, ids=ids, entity_type=kind)
        }
        shown = [
            e for e in entries if e.bitrix24_id.isdigit() and (entry_entity_type(e), int(e.bitrix24_id)) in visible
        ]
        hidden, entries = len(entries) - len(shown), shown
    jobs = _latest_jobs(portal, entries)
    rows = []
    for entry in entries:
        target = _job_target(entry)
        job = jobs.get(target) if target else None
        retryable = (
            entry.outcome in (SyncLogEntry.Outcome.FAILED, SyncLogEntry.Outcome.RETRYING)
            and job is not None
            and job.status in (SyncJob.Status.FAILED, SyncJob.Status.PENDING)
        )
        rows.append(LogRow(entry=entry, job_id=job.pk if retryable else None, job_status=job.status if job else ""))
    return LogPage(rows=rows, page=page, pages=pages, total=total, hidden=hidden, failed_only=failed_only)


def log_entry_job(*, portal: Portal, entry_id: int) -> tuple[SyncLogEntry, SyncJob | None]:
    """A log entry of this portal and the newest job behind it (DoesNotExist for another portal's)."""
    entry = SyncLogEntry.objects.get(pk=entry_id, portal=portal)
    return entry, _latest_jobs(portal, [entry]).get(_job_target(entry) or ("", ""))


# --- progress of a click --------------------------------------------------------------------------


def jobs_progress(*, portal: Portal, job_ids: list[int]) -> dict[str, Any]:
    """How far the jobs of one click are; jobs of another portal are not counted (nor revealed).
    A retrying job says when it tries again; an "Update from Xero" job that finished says what
    changed ("INV-4 → Paid")."""
    jobs = list(
        SyncJob.objects.filter(portal=portal, pk__in=job_ids[:MAX_PROGRESS_JOBS]).values(
            "id", "kind", "target", "status", "last_error", "not_before", "attempts", "created_at"
        )
    )
    done = sum(j["status"] == SyncJob.Status.DONE for j in jobs)
    failed = [j for j in jobs if j["status"] == SyncJob.Status.FAILED]
    pulls = [j for j in jobs if j["kind"] == SyncJob.Kind.SWEEP_XERO and j["status"] == SyncJob.Status.DONE]
    return {
        "total": len(jobs),
        "done": done,
        "failed": len(failed),
        "pending": len(jobs) - done - len(failed),
        "errors": [
            {"job": j["id"], "invoice": j["target"].partition(":")[2] or j["target"], "message": j["last_error"]}
            for j in failed
        ],
        # A retryable failure keeps the job pending with the API's message; show it while waiting.
        "retrying": [
            {
                "job": j["id"],
                "invoice": j["target"].partition(":")[2],
                "message": j["last_error"],
                "next_attempt_at": j["not_before"].isoformat(),
                "attempts": j["attempts"],
            }
            for j in jobs
            if j["status"] == SyncJob.Status.PENDING and j["last_error"]
        ],
        "changes": _pulled_changes(portal, min(j["created_at"] for j in pulls)) if pulls else [],
    }


def _pulled_changes(portal: Portal, since) -> list[str]:
    """What a button's pull changed, as "INV-4 → Paid", newest first."""
    entries = SyncLogEntry.objects.filter(
        portal=portal,
        direction="pull",
        trigger="button",
        created_at__gte=since,
        outcome__in=[SyncLogEntry.Outcome.STATUS_CHANGED, SyncLogEntry.Outcome.UPDATED],
    ).order_by("-created_at")[:20]
    out = []
    for entry in entries:
        status = str((entry.details or {}).get("xero_status") or "")
        label = dict(XeroStatus.choices).get(status, status.title())
        out.append(f"{entry.invoice_number or entry.bitrix24_id} → {label}")
    return out


def invoices_by_ids_for_user(
    *, client: Bitrix24Client, ids: list[int], entity_type: int | None = None
) -> list[InvoiceRow]:
    """The rows of these invoices that the user may see (a list menu's selection), in one list
    call per 50 ids plus the names batch; ids the user may not see are simply absent."""
    source = _source(client, entity_type)
    wanted = sorted({int(i) for i in ids})[:B24_PAGE]
    if not wanted:
        return []
    method, params = source.list_command({"@id": wanted}, order={"id": "ASC"}, start=-1)
    return _rows(client, client.portal, source.items(client.result(method, params)), source)
