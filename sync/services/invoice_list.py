"""The invoices a signed-in Bitrix24 user may see, for the app's list pages (one invoice's page is
sync.services.invoice_detail; the log's Retry and permissions sync.services.log_jobs; a click's
progress sync.services.jobs_progress).

Every Bitrix24 read here goes through the USER's Bitrix24Api (accounts.services.frame), so
Bitrix24's own permissions decide what is listed: a list silently leaves out what the user may not
read, a get answers ACCESS_DENIED (bitrix24-api.md §7). Our tables add only what Bitrix24 does not
know (link state, Xero status, last error), always scoped to the portal.

Call budget per invoice-list page view (checked by tests against the sandbox's call log):
1. the rows: one list call, or ONE batch of the 50-row pages that cover the slice;
2. the names: one batch of company / contact lists by id (+ the stages of any pipeline whose
   stage the stage map does not know yet).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from accounts.models import Portal
from connector.i18n import offset_name, page_zone
from integrations.bitrix24.api import PAGE_SIZE as B24_PAGE
from integrations.bitrix24.api import Bitrix24Api, directory
from integrations.bitrix24.api.command import Command
from integrations.bitrix24.api.invoices import Invoice, InvoiceKind, invoice_kind, invoice_of
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.mappers.exactness import HELD_PREFIX
from sync.models import InvoiceLink, InvoiceOutcome, StageMapping, SyncJob, SyncSettings
from sync.services.outcomes import outcomes_for
from sync.sources import portal_sources

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25


# --- the filter the page's form describes ---------------------------------------------------------


def day_start(day: date, zone: tzinfo) -> datetime:
    """The first instant of `day` in `zone`: local midnight, or the first local time after it when a
    DST change skips midnight (zoneinfo reads a skipped time with the offset before the change, which
    is that same instant); written in the offset of that instant."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).astimezone(zone)


@dataclass(frozen=True)
class InvoiceFilter:
    """Last-modified range in whole days of the page's time zone, and the sort direction.

    A day runs from its local midnight (`>=updatedTime`) to the next day's (`<updatedTime`,
    exclusive), as crm.item.list's own example filters "from the start to the end of the day"
    (api-reference/crm/universal/crm-item-list.md, "Example Request with Date Filter Using OR Logic";
    `<` is among the documented prefixes there and for the classic lists, crm.company.list). Bounds
    carry an explicit ISO 8601 offset (data-types.md `datetime`: YYYY-MM-DDThh:mm:ss±hh:mm): a
    naive value would be read in a portal/user dependent zone (data-types.md "Date and Time
    Features"), so only an offset means the same instant for every caller. Each bound takes the
    offset of its own day (zoneinfo), so a range across a DST change keeps local midnights. Old
    invoices get the same bounds on DATE_UPDATE (integrations.bitrix24.api.old_invoices.old_filter).
    """

    modified_from: date | None = None
    modified_to: date | None = None
    order: str = "desc"
    zone: tzinfo = UTC

    def bitrix24_filter(self) -> dict[str, str]:
        # A day past what a datetime holds (0001-01-01 east of UTC, after 9999-12-31) leaves that side open.
        flt: dict[str, str] = {}
        for key, day, after in ((">=updatedTime", self.modified_from, 0), ("<updatedTime", self.modified_to, 1)):
            if day:
                with contextlib.suppress(OverflowError):
                    flt[key] = day_start(day + timedelta(days=after), self.zone).isoformat()
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
        return invoice_kind(self.entity_type).label

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


# --- Bitrix24 reads as the user -------------------------------------------------------------------


def source_of(client: Bitrix24Api, entity_type: int | None) -> InvoiceKind:
    """The source of the kind of invoices asked for; by default the portal's first kind."""
    return invoice_kind(entity_type) if entity_type else portal_sources(client.portal)[0]


def _list_command(source: InvoiceKind, flt: InvoiceFilter, start: int) -> Command[list[dict]]:
    return source.list_command(flt.bitrix24_filter(), order=flt.bitrix24_order(), start=start)


def _fetch_slice(
    client: Bitrix24Api, flt: InvoiceFilter, offset: int, size: int, source: InvoiceKind
) -> tuple[list[dict], int]:
    """Rows [offset, offset+size) and the total. Bitrix24's pages are fixed at 50, so fetch the
    pages that cover the slice: one plain call, or all of them in one batch."""
    starts = list(range(offset // B24_PAGE * B24_PAGE, offset + size, B24_PAGE))
    if len(starts) == 1:
        rows, counted = client.run_counted(_list_command(source, flt, starts[0]))
        total = int(counted or 0)
    else:
        batch = client.batch({f"p{start}": _list_command(source, flt, start) for start in starts})
        rows = [row for start in starts for row in batch.value(f"p{start}")]
        total = max((batch.total(f"p{start}") or 0 for start in starts), default=0)
    skip = offset - starts[0]
    return rows[skip : skip + size], total


def _chunks(ids: list[int], size: int = B24_PAGE) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _names_and_stages(
    client: Bitrix24Api, portal: Portal, items: list[Invoice], source: InvoiceKind
) -> tuple[dict[int, str], dict[int, str], dict[str, str]]:
    """Company and contact names of these rows, and stage names, in at most one batch call.

    Stage names come from the stage map (no call); a stage it does not know yet (added in Bitrix24
    since setup) is read in the same batch. A user without read rights on companies or contacts
    still gets the list: the names are left blank."""
    company_ids = sorted({i.company_id for i in items if i.company_id})
    contact_ids = sorted({i.contact_id for i in items if i.contact_id})
    stage_ids = {i.stage_id for i in items} - {""}
    stages = dict(StageMapping.objects.filter(portal=portal, stage_id__in=stage_ids).values_list("stage_id", "name"))
    missing_categories = sorted({i.category_id for i in items if i.stage_id not in stages})
    commands: dict[str, Command[Any]] = {}
    for n, chunk in enumerate(_chunks(company_ids)):
        commands[f"co{n}"] = directory.client_names_list("company", chunk)
    for n, chunk in enumerate(_chunks(contact_ids)):
        commands[f"ct{n}"] = directory.client_names_list("contact", chunk)
    for category in missing_categories:
        commands[f"st{category}"] = source.stages_command(category)
    companies: dict[int, str] = {}
    contacts: dict[int, str] = {}
    if not commands:
        return companies, contacts, stages
    batch = client.batch_all(commands)
    for key in commands:
        if not batch.ran(key):
            continue
        for entry in batch.value(key):
            if isinstance(entry, directory.ClientRecord):
                (companies if entry.kind == "company" else contacts)[entry.id] = entry.display_name
            else:
                stages.setdefault(entry.status_id, entry.name)
    return companies, contacts, stages


def as_datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _learn_portal_zone(portal: Portal, items: list[Invoice]) -> None:
    """Bitrix24 writes its dates in the portal's zone ("…+03:00"): keep that offset, so pages show
    times in the portal's zone when the user has none of their own (connector.i18n)."""
    for item in items:
        zone = offset_name(as_datetime(item.updated_time))
        if zone:
            SyncSettings.objects.filter(portal=portal).exclude(time_zone=zone).update(time_zone=zone)
            return


def invoice_row(
    item: Invoice, *, source: InvoiceKind, companies: dict[int, str], contacts: dict[int, str], stages: dict[str, str]
) -> InvoiceRow:
    """The row of one invoice in the shared shape (links, jobs and outcomes are set by the caller)."""
    return InvoiceRow(
        id=item.id,
        number=item.number,
        title=item.title,
        company_id=item.company_id,
        company_name=companies.get(item.company_id, ""),
        contact_id=item.contact_id,
        contact_name=contacts.get(item.contact_id, ""),
        amount=item.amount,
        currency=item.currency,
        stage_id=item.stage_id,
        stage_name=stages.get(item.stage_id, item.stage_id),
        updated_at=as_datetime(item.updated_time),
        entity_type=source.entity_type,
    )


def _rows(client: Bitrix24Api, portal: Portal, listed: list[dict], source: InvoiceKind) -> list[InvoiceRow]:
    items = [invoice_of(row) for row in listed]
    _learn_portal_zone(portal, items)
    companies, contacts, stages = _names_and_stages(client, portal, items, source)
    ids = [i.id for i in items]
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
        row = invoice_row(item, source=source, companies=companies, contacts=contacts, stages=stages)
        row.link = links.get(row.id)
        row.job_status = busy.get(source.target(row.id), "")
        row.outcome = outcomes.get((source.entity_type, row.id))
        rows.append(row)
    return rows


def invoices_for_user(
    *,
    client: Bitrix24Api,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    modified_from: date | None = None,
    modified_to: date | None = None,
    order: str = "desc",
    entity_type: int | None = None,
    zone: tzinfo | None = None,
) -> InvoicePage:
    """One page of the invoices of one kind (`entity_type`, the portal's first kind by default) the
    client's user may see, newest change first (or oldest). The days of the range are days in
    `zone`, by default the page's (connector.i18n.page_zone: the zone its times are shown in).

    A page past the end shows the last page (a filter narrowed the list under an old link)."""
    source = source_of(client, entity_type)
    page_size = page_size if page_size in PAGE_SIZES else DEFAULT_PAGE_SIZE
    page = max(1, page)
    flt = InvoiceFilter(modified_from, modified_to, "asc" if order == "asc" else "desc", zone or page_zone())
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
    client: Bitrix24Api,
    modified_from: date | None = None,
    modified_to: date | None = None,
    entity_type: int | None = None,
    zone: tzinfo | None = None,
) -> list[int]:
    """Every id the user sees under the filter ("all filtered"): Bitrix24's bulk pattern (§2.2),
    so the user's token, not ours, decides what the click may act on. Days as the list counts them
    (invoices_for_user): in `zone`, by default the page's."""
    source = source_of(client, entity_type)
    flt = InvoiceFilter(modified_from, modified_to, zone=zone or page_zone())
    rows = client.list_all(source.list_command(flt.bitrix24_filter(), ids_only=True), fast=True)
    return [int(row["id"]) for row in rows]


def visible_invoice_ids(*, client: Bitrix24Api, ids: list[int] | set[int], entity_type: int | None = None) -> set[int]:
    """The subset of `ids` the client's user may see: one list call per 50 ids, in one batch."""
    source = source_of(client, entity_type)
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return set()
    commands = {
        f"v{n}": source.list_command({"@id": chunk}, start=-1, ids_only=True) for n, chunk in enumerate(_chunks(wanted))
    }
    if len(commands) == 1:
        results = [client.run(next(iter(commands.values())))]
    else:
        batch = client.batch_all(commands)
        results = [batch.value(key) for key in commands]
    return {int(row["id"]) for result in results for row in result} & set(wanted)


def invoices_by_ids_for_user(
    *, client: Bitrix24Api, ids: list[int], entity_type: int | None = None
) -> list[InvoiceRow]:
    """The rows of these invoices that the user may see (a list menu's selection), in one list
    call per 50 ids plus the names batch; ids the user may not see are simply absent."""
    source = source_of(client, entity_type)
    wanted = sorted({int(i) for i in ids})[:B24_PAGE]
    if not wanted:
        return []
    items = client.run(source.list_command({"@id": wanted}, order={"id": "ASC"}, start=-1))
    return _rows(client, client.portal, items, source)
