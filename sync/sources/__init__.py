"""Invoice sources: one per Bitrix24 entity type, the only place that knows how that kind of invoice
is listed, read and moved. Everything else (the pages, the pull engine, the push engine's read
stage through sync.services.push) asks the source for the portal's kinds and gets invoices and rows
in one shape: crm.item's camelCase invoice and crm.item.productrow rows.

- new invoices, entity type 31 (crm.item.* with entityTypeId 31, stages of pipelines);
- old invoices, entity type 5 (crm.invoice.*, statuses from INVOICE_STATUS), translated by
  sync.mappers.old_invoice.

A source builds commands, `(method, params)` pairs that the caller runs through its Bitrix24 client
(one call, or a `batch` with other commands), and reads their results; it does no I/O itself, so the
caller keeps its call budget and its user's token (Bitrix24's permissions decide what is listed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.bitrix24.entity_types import OLD_INVOICE, SMART_INVOICE
from integrations.common.errors import ExternalAPIError, PermanentError
from sync.mappers.old_invoice import (
    LIST_SELECT,
    old_filter,
    old_invoice_as_item,
    old_order,
    old_rows_as_product_rows,
    status_fields,
)

Command = tuple[str, dict]

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


def _items(result: Any) -> list[dict]:
    items = result.get("items") if isinstance(result, dict) else None
    return items if isinstance(items, list) else []


class SmartInvoices:
    """New invoices: crm.item.* with entityTypeId 31."""

    entity_type = SMART_INVOICE
    label = "New"
    title = "New invoices"
    has_payments = True  # crm.item.payment.* (a paid payment when Xero reports PAID)
    list_key = "items"  # where list_command's rows are inside its result

    def item(self, row: Mapping) -> dict:
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
    ) -> Command:
        """crm.item.list with a crm.item filter/order (camelCase keys, as the caller writes them)."""
        params: dict[str, Any] = {
            "entityTypeId": SMART_INVOICE,
            "select": ["id"] if ids_only else SMART_SELECT,
            "filter": dict(flt),
        }
        if order:
            params["order"] = dict(order)
        if start is not None:
            params["start"] = start
        return "crm.item.list", params

    def items(self, result: Any) -> list[dict]:
        return _items(result)

    def get_commands(self, invoice_id: int) -> dict[str, Command]:
        """The invoice ("item") and its rows ("rows"), for one batch."""
        return {
            "item": ("crm.item.get", {"entityTypeId": SMART_INVOICE, "id": invoice_id}),
            "rows": ("crm.item.productrow.list", {"filter": {"=ownerType": "SI", "=ownerId": invoice_id}}),
        }

    def client_refs(self) -> tuple[str, str]:
        """`$result[...]` references to the company and contact id of get_commands' invoice."""
        return "$result[item][item][companyId]", "$result[item][item][contactId]"

    def detail(self, results: Mapping[str, Any]) -> tuple[dict, list[dict]]:
        item = (results.get("item") or {}).get("item") or {}
        rows = results.get("rows")
        if isinstance(rows, dict):
            rows = rows.get("productRows")
        return item, [r for r in rows or [] if isinstance(r, dict)]

    def classify(self, error: ExternalAPIError) -> ExternalAPIError:
        """The error with ACCESS_DENIED / NOT_FOUND as its code when it means that (crm.item's do)."""
        return error

    def move_command(self, invoice_id: int, stage_id: str) -> Command:
        return "crm.item.update", {"entityTypeId": SMART_INVOICE, "id": invoice_id, "fields": {"stageId": stage_id}}

    def stages_command(self, category_id: int) -> Command:
        return "crm.status.list", {
            "filter": {"ENTITY_ID": f"SMART_INVOICE_STAGE_{category_id}"},
            "order": {"SORT": "ASC"},
        }


class OldInvoices:
    """Old invoices: crm.invoice.* (entity type 5). crm.invoice.list returns no rows; get does."""

    entity_type = OLD_INVOICE
    label = "Old"
    title = "Old invoices"
    has_payments = False  # paid is a status (PAYED follows the success status), not a payment
    list_key = None

    def item(self, row: Mapping) -> dict:
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
    ) -> Command:
        params: dict[str, Any] = {"select": ["ID"] if ids_only else LIST_SELECT, "filter": old_filter(flt)}
        if order:
            params["order"] = old_order(order)
        if start is not None:
            params["start"] = start
        return "crm.invoice.list", params

    def items(self, result: Any) -> list[dict]:
        return [old_invoice_as_item(row) for row in result or [] if isinstance(row, dict)]

    def get_commands(self, invoice_id: int) -> dict[str, Command]:
        return {"item": ("crm.invoice.get", {"id": invoice_id})}

    def client_refs(self) -> tuple[str, str]:
        return "$result[item][UF_COMPANY_ID]", "$result[item][UF_CONTACT_ID]"

    def detail(self, results: Mapping[str, Any]) -> tuple[dict, list[dict]]:
        invoice = results.get("item") or {}
        return old_invoice_as_item(invoice), old_rows_as_product_rows(invoice)

    def classify(self, error: ExternalAPIError) -> ExternalAPIError:
        """The classic API answers `"error": ""` with "Access denied." or "Not found": give the error
        the code crm.item would have, so callers tell "may not see" from "gone" one way."""
        text = (error.message or "").strip().rstrip(".").lower()
        code = {"access denied": "ACCESS_DENIED", "not found": "NOT_FOUND"}.get(text)
        if error.retryable or error.code or code is None:
            return error
        return PermanentError(error.message, system=error.system, status=error.status, code=code, payload=error.payload)

    def move_command(self, invoice_id: int, stage_id: str) -> Command:
        return "crm.invoice.update", {"id": invoice_id, "fields": status_fields(stage_id)}

    def stages_command(self, category_id: int) -> Command:
        return "crm.status.list", {"filter": {"ENTITY_ID": "INVOICE_STATUS"}, "order": {"SORT": "ASC"}}


SOURCES: dict[int, SmartInvoices | OldInvoices] = {SMART_INVOICE: SmartInvoices(), OLD_INVOICE: OldInvoices()}


def invoice_source(entity_type: int | str | None) -> SmartInvoices | OldInvoices:
    """The source of an entity type (31 when none is given); KeyError for other types."""
    return SOURCES[int(entity_type or SMART_INVOICE)]


def portal_sources(portal) -> list[SmartInvoices | OldInvoices]:
    """The sources of the kinds of invoices the portal has, new ones first."""
    return [SOURCES[t] for t in portal.invoice_entity_types]


def parse_target(target: str) -> tuple[int, int] | None:
    """(entity type, id) of a job target "<type>:<id>" whose type has a source, else None."""
    entity, _, ident = (target or "").partition(":")
    if not entity.isdigit() or not ident.isdigit() or int(entity) not in SOURCES:
        return None
    return int(entity), int(ident)
