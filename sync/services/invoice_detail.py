"""One invoice as a signed-in Bitrix24 user may see it, for the invoice page: the invoice, its
product rows, client names and the currency rates in ONE batch call (through the user's
Bitrix24Api, so Bitrix24 answers ACCESS_DENIED when they may not see it), with what our tables
know about it (link, queued job, outcome, log)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from integrations.bitrix24.api import Bitrix24Api, catalog, directory
from integrations.bitrix24.api.directory import ClientRecord
from sync.models import InvoiceLink, StageMapping, SyncJob, SyncLogEntry
from sync.services.invoice_list import InvoiceRow, invoice_row, source_of
from sync.services.outcomes import outcomes_for


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


def base_amounts_of(row: InvoiceRow, currencies: list[catalog.Currency]) -> BaseAmounts | None:
    """Bitrix24's amount at its rate (`amount` base units per `amount_cnt`) and Xero's total at the
    CurrencyRate Xero used (units of the currency per 1 base unit), when the invoice is foreign."""
    rates = {c.code: c for c in currencies}
    base = next((c.code for c in currencies if c.base), "")
    if not base or not row.currency or row.currency == base:
        return None
    bitrix24 = xero = None
    mine = rates.get(row.currency)
    try:
        if mine is not None and mine.amount is not None and row.amount is not None:
            per_unit = mine.amount / (mine.amount_cnt if mine.amount_cnt is not None else Decimal(1))
            bitrix24 = (row.amount * per_unit).quantize(Decimal("0.01"))
        link = row.link
        if link is not None and link.xero_total is not None and link.xero_currency_rate:
            sign = -1 if link.xero_type == "ACCRECCREDIT" else 1
            xero = (sign * link.xero_total / link.xero_currency_rate).quantize(Decimal("0.01"))
    except ArithmeticError:
        return None
    return BaseAmounts(currency=base, bitrix24=bitrix24, xero=xero)


def _names(records: list[ClientRecord]) -> dict[int, str]:
    return {record.id: record.display_name for record in records}


def invoice_for_user(
    *, client: Bitrix24Api, invoice_id: int, log_limit: int = 20, entity_type: int | None = None
) -> InvoiceDetail:
    """One invoice with its product rows and names, in one batch; raises Bitrix24's own error
    (PermanentError with code ACCESS_DENIED or NOT_FOUND) when the user may not see it."""
    source = source_of(client, entity_type)
    company_ref, contact_ref = source.client_refs()
    # Chained on the item: no second round trip for the names (an id of 0 matches nothing).
    companies_cmd = directory.client_names_list("company", company_ref)
    contacts_cmd = directory.client_names_list("contact", contact_ref)
    # The rates, for a foreign invoice's amount in the base currency (same call, no extra trip).
    currencies_cmd = catalog.currencies_list()
    batch = client.batch(
        {**source.get_commands(invoice_id), "co0": companies_cmd, "ct0": contacts_cmd, "cur": currencies_cmd}
    )
    if "item" in batch.errors:  # Bitrix24's own error when the user may not see the invoice
        raise source.classify(batch.errors["item"])
    detail = source.detail(batch.raw_results())
    companies = _names(batch.get(companies_cmd)) if batch.ran("co0") else {}
    contacts = _names(batch.get(contacts_cmd)) if batch.ran("ct0") else {}
    portal = client.portal
    stages = dict(StageMapping.objects.filter(portal=portal).values_list("stage_id", "name"))
    row = invoice_row(detail.invoice, source=source, companies=companies, contacts=contacts, stages=stages)
    row.link = InvoiceLink.objects.filter(
        portal=portal, bitrix24_entity_type=source.entity_type, bitrix24_id=invoice_id
    ).first()
    row.job_status = (
        SyncJob.objects.filter(
            portal=portal,
            kind=SyncJob.Kind.PUSH_INVOICE,
            target=source.target(invoice_id),
            status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING],
        )
        .values_list("status", flat=True)
        .first()
        or ""
    )
    row.outcome = outcomes_for(portal, [(source.entity_type, row.id)]).get((source.entity_type, row.id))
    log = list(
        SyncLogEntry.objects.filter(
            portal=portal, object_kind=SyncLogEntry.ObjectKind.INVOICE, bitrix24_id=str(invoice_id)
        )[:log_limit]
    )
    currencies = batch.get(currencies_cmd) if batch.ran("cur") else []
    return InvoiceDetail(row=row, product_rows=detail.rows, log=log, base_amounts=base_amounts_of(row, currencies))
