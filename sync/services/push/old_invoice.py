"""The invoice source of Bitrix24's old invoices (entity type 5, crm.invoice.*).

crm.invoice.list returns no product rows (crm-invoice-list.md: "To obtain properties and line items,
use the method crm.invoice.get"), and old invoices' rows are not crm.item.productrow rows, so each
invoice is read with one crm.invoice.get: 50 invoices per `batch` call in the read stage's first
round (1,000 invoices: 20 calls, the floor for this kind), together with whatever else that round
carries. The invoice and its rows are translated to the new invoices' shape
(integrations.bitrix24.api.old_invoices), so the map, decide, write and record stages are the same for both.
A get that fails (deleted, "Access denied.") fails its own invoice with Bitrix24's words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from integrations.bitrix24.api.invoices import InvoiceDetail, OldInvoices
from integrations.bitrix24.entity_types import OLD_INVOICE
from integrations.common.errors import ExternalAPIError
from sync.services.push.context import Work
from sync.services.push.reader import Reader
from sync.services.push.smart_invoice import SmartInvoiceSource

KIND = OldInvoices()


class OldInvoiceSource:
    """The read/map seam for entity type 5 (see SmartInvoiceSource for the methods' contract)."""

    entity_type = OLD_INVOICE

    def __init__(self, reader: Reader, by_id: dict[int, Work]) -> None:
        self.reader = reader
        self.by_id = by_id

    # --- reading (called by the read stage) ---

    def queue_first(self) -> None:
        for invoice_id in sorted(self.by_id):
            self.reader.add(
                f"o{invoice_id}",
                KIND.get_command(invoice_id),
                self._take(self.by_id[invoice_id]),
                self._failed(self.by_id[invoice_id]),
            )

    def queue_after_first(self) -> None:
        """Nothing: a get that failed already carries Bitrix24's own words."""

    def finish(self) -> None:
        """Nothing: the rows came with each invoice."""

    # --- what the other stages ask of an invoice (the shared shape: the same as new invoices) ---

    client_of = staticmethod(SmartInvoiceSource.client_of)
    stage_of = staticmethod(SmartInvoiceSource.stage_of)
    to_xero = staticmethod(SmartInvoiceSource.to_xero)
    totals_gap = staticmethod(SmartInvoiceSource.totals_gap)

    # --- internals ---

    @staticmethod
    def _take(item: Work) -> Callable[[Any], None]:
        def on_result(detail: InvoiceDetail | None) -> None:
            if detail is None:
                return  # the read stage fails it as "Bitrix24 did not return the invoice"
            item.invoice = detail.item
            item.rows = detail.rows

        return on_result

    @staticmethod
    def _failed(item: Work) -> Callable[[ExternalAPIError], None]:
        def on_error(error: ExternalAPIError) -> None:
            item.read_error = KIND.classify(error)

        return on_error
