"""What a pull reads from Xero (the few fields it acts on) and what it reports."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sync.mappers.canonical import invoice_pull_fingerprint
from sync.mappers.money import to_decimal
from sync.services.drift import xero_invoice_dict


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
