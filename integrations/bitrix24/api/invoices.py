"""Invoices of both kinds, as commands: how each kind is listed, read (with its product rows),
moved to a stage, and how its errors read. Everything above speaks one shape, crm.item's camelCase
invoice and crm.item.productrow rows; old invoices are translated into it (old_invoices.py).

- new invoices, entity type 31: crm.item.* with entityTypeId 31, stages of pipelines;
- old invoices, entity type 5: crm.invoice.*, statuses from INVOICE_STATUS.

Reads come in a `batch` with other commands (the read of an invoice names its client through
`client_refs`, so the company and contact come in the same request); see Bitrix24Api.batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from integrations.bitrix24.api.command import (
    Command,
    ListCommand,
    as_decimal,
    as_int,
    as_str,
    list_command,
    ref,
    rows_of,
)
from integrations.bitrix24.api.old_invoices import (
    LIST_SELECT,
    old_filter,
    old_invoice_as_item,
    old_order,
    old_rows_as_product_rows,
    status_fields,
)
from integrations.bitrix24.api.statuses import Stage, invoice_stages_list
from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE
from integrations.common.errors import ExternalAPIError, PermanentError

SMART_SELECT = [
    "id",
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
    "assignedById",
]
# What the push reads of a new invoice (its Xero content and its hash come from these).
READ_SELECT = [
    "id",
    "entityTypeId",
    "title",
    "accountNumber",
    "stageId",
    "categoryId",
    "opportunity",
    "isManualOpportunity",
    "taxValue",
    "currencyId",
    "companyId",
    "contactId",
    "begindate",
    "closedate",
    "createdTime",  # a row-less invoice waits for its rows only while new (push/rows_wait.py)
    "updatedTime",
]
# crm.item.productrow ownerType of a new invoice (bitrix24-api.md §1.4).
SMART_INVOICE_OWNER = "SI"


@dataclass(frozen=True)
class Invoice:
    """One invoice of either kind, typed (money exact). `item` keeps the shared crm.item shape the
    pure mappers and the push's fingerprints read."""

    id: int
    entity_type: int
    number: str  # accountNumber
    title: str
    stage_id: str
    category_id: int
    amount: Decimal | None  # opportunity: the total with tax
    tax: Decimal | None
    currency: str
    company_id: int
    contact_id: int
    updated_time: str  # ISO 8601 with the portal's offset, as Bitrix24 wrote it
    item: Mapping[str, Any] = field(default_factory=dict)


def invoice_of(item: Mapping[str, Any]) -> Invoice:
    """An invoice in the shared shape (a list row, or a detail's item) as an Invoice."""
    return Invoice(
        id=as_int(item.get("id")) or 0,
        entity_type=as_int(item.get("entityTypeId")) or SMART_INVOICE,
        number=as_str(item.get("accountNumber")),
        title=as_str(item.get("title")),
        stage_id=as_str(item.get("stageId")),
        category_id=as_int(item.get("categoryId")) or 0,
        amount=as_decimal(item.get("opportunity")),
        tax=as_decimal(item.get("taxValue")),
        currency=as_str(item.get("currencyId")),
        company_id=as_int(item.get("companyId")) or 0,
        contact_id=as_int(item.get("contactId")) or 0,
        updated_time=as_str(item.get("updatedTime")),
        item=item,
    )


@dataclass(frozen=True)
class InvoiceDetail:
    """One invoice in the shared shape, with its product rows in their order."""

    item: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def invoice(self) -> Invoice:
        return invoice_of(self.item)


def _items(result: Any) -> list[dict[str, Any]]:
    items = result.get("items") if isinstance(result, dict) else None
    return [dict(i) for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def product_rows_parse(result: Any) -> list[dict[str, Any]]:
    """crm.item.productrow.list's rows ({"productRows": [...]}, or a bare array)."""
    rows = result.get("productRows") if isinstance(result, dict) else result
    return [r for r in rows or [] if isinstance(r, dict)] if isinstance(rows, list) else []


def productrows_list(
    owner_ids: Sequence[int] | int, *, ordered: bool = False, select: Sequence[str] | None = None
) -> ListCommand[dict[str, Any]]:
    """The product rows of new invoices (one id or several), in the shared shape; `ordered`: in a
    fixed order (sort, id), so page offsets are stable."""
    flt: dict[str, Any] = {"=ownerType": SMART_INVOICE_OWNER}
    owners = [owner_ids] if isinstance(owner_ids, int) else list(owner_ids)
    # crm.item.productrow.list takes an array under "=ownerId" as "any of these".
    flt["=ownerId"] = owners if len(owners) > 1 else owners[0]
    params: dict[str, Any] = {"filter": flt}
    if select is not None:
        params["select"] = list(select)
    if ordered:
        params["order"] = {"sort": "ASC", "id": "ASC"}
    return list_command("crm.item.productrow.list", params, dict, list_key="productRows", id_field="id")


def productrows_set(owner_id: int, rows: Sequence[Mapping[str, Any]]) -> Command[Any]:
    """Replace a new invoice's rows (crm.item.productrow.set)."""
    return Command(
        "crm.item.productrow.set",
        {"ownerType": SMART_INVOICE_OWNER, "ownerId": owner_id, "productRows": [dict(r) for r in rows]},
    )


def item_add(fields: Mapping[str, Any], entity_type: int = SMART_INVOICE) -> Command[int]:
    """crm.item.add; the new id."""

    def parse(result: Any) -> int:
        return int(((result or {}).get("item") or {})["id"])

    return Command("crm.item.add", {"entityTypeId": entity_type, "fields": dict(fields)}, parse)


class SmartInvoices:
    """New invoices: crm.item.* with entityTypeId 31."""

    entity_type = SMART_INVOICE
    label = "New"
    title = "New invoices"
    has_payments = True  # crm.item.payment.* (a paid payment when Xero reports PAID)

    def item(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One row of list_command's result in the shared shape."""
        return dict(row)

    def target(self, invoice_id: int) -> str:
        return f"{self.entity_type}:{invoice_id}"

    def list_command(
        self,
        flt: Mapping[str, Any],
        *,
        order: Mapping[str, str] | None = None,
        start: int | None = None,
        ids_only: bool = False,
        select: Sequence[str] | None = None,
    ) -> ListCommand[dict[str, Any]]:
        """crm.item.list with a crm.item filter/order (camelCase keys, as the caller writes them);
        rows in the shared shape. `select`: other fields than the pages' (READ_SELECT: the push's)."""
        params: dict[str, Any] = {
            "entityTypeId": SMART_INVOICE,
            "select": ["id"] if ids_only else list(select or SMART_SELECT),
            "filter": dict(flt),
        }
        if order:
            params["order"] = dict(order)
        if start is not None:
            params["start"] = start
        return list_command("crm.item.list", params, self.item, list_key="items", id_field="id")

    def get_commands(self, invoice_id: int, *, ordered_rows: bool = False) -> dict[str, Command[Any]]:
        """The invoice ("item") and its rows ("rows"), for one batch (detail reads the answers)."""
        return {
            "item": Command("crm.item.get", {"entityTypeId": SMART_INVOICE, "id": invoice_id}),
            "rows": productrows_list(invoice_id, ordered=ordered_rows),
        }

    def client_refs(self) -> tuple[str, str]:
        """`$result[...]` references to the company and contact id of get_commands' invoice."""
        return ref("item", "item", "companyId"), ref("item", "item", "contactId")

    def detail(self, answers: Mapping[str, Any]) -> InvoiceDetail:
        """The invoice and rows from get_commands' raw answers (BatchOutcome.raw_results)."""
        item = (answers.get("item") or {}).get("item") or {}
        return InvoiceDetail(item=dict(item), rows=product_rows_parse(answers.get("rows")))

    def classify(self, error: ExternalAPIError) -> ExternalAPIError:
        """The error with ACCESS_DENIED / NOT_FOUND as its code when it means that (crm.item's do)."""
        return error

    def move_command(self, invoice_id: int, stage_id: str) -> Command[Any]:
        return Command(
            "crm.item.update", {"entityTypeId": SMART_INVOICE, "id": invoice_id, "fields": {"stageId": stage_id}}
        )

    def stages_command(self, category_id: int) -> Command[list[Stage]]:
        return invoice_stages_list(SMART_INVOICE, category_id)


class OldInvoices:
    """Old invoices: crm.invoice.* (entity type 5). crm.invoice.list returns no rows; get does."""

    entity_type = OLD_INVOICE
    label = "Old"
    title = "Old invoices"
    has_payments = False  # paid is a status (PAYED follows the success status), not a payment

    def item(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return old_invoice_as_item(row)

    def target(self, invoice_id: int) -> str:
        return f"{self.entity_type}:{invoice_id}"

    def list_command(
        self,
        flt: Mapping[str, Any],
        *,
        order: Mapping[str, str] | None = None,
        start: int | None = None,
        ids_only: bool = False,
    ) -> ListCommand[dict[str, Any]]:
        params: dict[str, Any] = {"select": ["ID"] if ids_only else LIST_SELECT, "filter": old_filter(flt)}
        if order:
            params["order"] = old_order(order)
        if start is not None:
            params["start"] = start
        return list_command("crm.invoice.list", params, self.item, list_key=None, id_field="ID")

    def get_command(self, invoice_id: int) -> Command[InvoiceDetail | None]:
        """crm.invoice.get alone: the invoice with its rows (None for an answer without one)."""

        def parse(result: Any) -> InvoiceDetail | None:
            if not isinstance(result, dict) or not result.get("ID"):
                return None
            return InvoiceDetail(item=old_invoice_as_item(result), rows=old_rows_as_product_rows(result))

        return Command("crm.invoice.get", {"id": invoice_id}, parse)

    def get_commands(self, invoice_id: int, *, ordered_rows: bool = False) -> dict[str, Command[Any]]:
        return {"item": Command("crm.invoice.get", {"id": invoice_id})}

    def client_refs(self) -> tuple[str, str]:
        return ref("item", "UF_COMPANY_ID"), ref("item", "UF_CONTACT_ID")

    def detail(self, answers: Mapping[str, Any]) -> InvoiceDetail:
        invoice = answers.get("item") or {}
        return InvoiceDetail(item=old_invoice_as_item(invoice), rows=old_rows_as_product_rows(invoice))

    def classify(self, error: ExternalAPIError) -> ExternalAPIError:
        """The classic API answers `"error": ""` with "Access denied." or "Not found": give the error
        the code crm.item would have, so callers tell "may not see" from "gone" one way."""
        text = (error.message or "").strip().rstrip(".").lower()
        code = {"access denied": "ACCESS_DENIED", "not found": "NOT_FOUND"}.get(text)
        if error.retryable or error.code or code is None:
            return error
        return PermanentError(error.message, system=error.system, status=error.status, code=code, payload=error.payload)

    def move_command(self, invoice_id: int, stage_id: str) -> Command[Any]:
        return Command("crm.invoice.update", {"id": invoice_id, "fields": status_fields(stage_id)})

    def stages_command(self, category_id: int) -> Command[list[Stage]]:
        return invoice_stages_list(OLD_INVOICE, category_id)


def invoice_kinds_probe() -> dict[str, Command[Any]]:
    """One cheap list per kind ("new", "old"), for one batch: a kind the portal has answers, a kind
    it does not have (old invoices turned off) is refused."""
    return {
        "new": Command("crm.item.list", {"entityTypeId": SMART_INVOICE, "select": ["id"], "start": -1}),
        "old": Command("crm.invoice.list", {"select": ["ID"], "start": -1}),
    }


InvoiceKind = SmartInvoices | OldInvoices
INVOICE_KINDS: dict[int, InvoiceKind] = {SMART_INVOICE: SmartInvoices(), OLD_INVOICE: OldInvoices()}


def invoice_kind(entity_type: int | str | None) -> InvoiceKind:
    """The kind of an entity type (31 when none is given); KeyError for other types."""
    return INVOICE_KINDS[int(entity_type or SMART_INVOICE)]


__all__ = ["INVOICE_KINDS", "InvoiceDetail", "InvoiceKind", "OldInvoices", "SmartInvoices", "invoice_kind", "rows_of"]
