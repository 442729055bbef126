"""Preview before sending: what Xero would receive and compute for one invoice, writing nothing.

The same mapping the push engine uses (sync.mappers.invoice.invoice_to_xero with the portal's
settings and item links), the same status rules (sync.mappers.stage.xero_status_for_push) and the
same drift gate (sync.services.drift.push_gate), applied to Bitrix24's invoice as the signed-in user
may read it (one `batch` call). Xero's figures come from Xero's arithmetic in
sync.mappers.invoice (expected_totals: each line rounded, its tax rounded, then summed; the rounding
itself is sync.mappers.xero_arithmetic).

Nothing is written anywhere: no Xero call, no link, no log row. The contact is "existing" when the
client is linked (ContactLink), else "to be created" (the push first looks for it in Xero by our
ContactNumber and by exact name, and creates it only when neither finds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from accounts.models import Portal
from integrations.bitrix24.api import Bitrix24Api, directory
from integrations.bitrix24.entity_types import SMART_INVOICE
from integrations.common.errors import ExternalAPIError
from sync.mappers import MappingError
from sync.mappers.canonical import bitrix24_amounts_of, invoice_push_fingerprint
from sync.mappers.contact import company_to_xero_contact, contact_number_for, person_to_xero_contact
from sync.mappers.exactness import Options, make_exact
from sync.mappers.invoice import (
    ItemRef,
    Totals,
    bitrix24_totals,
    expected_totals,
    invoice_to_xero,
    totals_gap,
)
from sync.mappers.money import optional_decimal, to_decimal
from sync.mappers.stage import xero_status_for_push, xero_status_for_stage
from sync.mappers.xero_arithmetic import line_amount, line_tax
from sync.models import ContactLink, InvoiceLink, ItemLink, SyncSettings
from sync.services.drift import push_gate
from sync.services.xero_reference import XeroNotConnected, xero_reference
from sync.sources import invoice_source
from sync.stage_map import stage_map_load

PLACEHOLDER_CONTACT = "00000000-0000-0000-0000-000000000000"
HEADER_LABELS = (
    ("InvoiceNumber", "Invoice number"),
    ("Reference", "Reference"),
    ("Date", "Date"),
    ("DueDate", "Due date"),
    ("CurrencyCode", "Currency"),
    ("LineAmountTypes", "Amounts are"),
)


@dataclass
class PreviewLine:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    discount: str
    account_code: str
    tax_type: str
    item_code: str
    line_amount: Decimal
    tax_amount: Decimal
    bitrix24_amount: Decimal | None  # the row's sum in Bitrix24 (price x quantity, with tax)


@dataclass
class Preview:
    invoice_id: int
    number: str
    action: str  # "create" | "update" | "nothing" | "refused" | "held"
    reasons: list[str] = field(default_factory=list)  # why it would be held, refused or not sent
    notes: list[str] = field(default_factory=list)  # what the user should know, sent anyway
    contact_name: str = ""
    contact_state: str = ""  # "existing" | "to be created" | ""
    status: str = ""  # the Status Xero would be sent ("" = left as it is)
    header: dict = field(default_factory=dict)  # InvoiceNumber, Reference, Date, DueDate, ...
    lines: list[PreviewLine] = field(default_factory=list)
    xero: Totals | None = None
    bitrix24: Totals | None = None

    @property
    def totals_match(self) -> bool:
        return bool(self.xero and self.bitrix24) and (self.xero.total, self.xero.tax) == (
            self.bitrix24.total,
            self.bitrix24.tax,
        )


def invoice_preview(
    *, portal: Portal, client: Bitrix24Api, invoice_id: int, entity_type: int = SMART_INVOICE
) -> Preview:
    """What "Create / Edit on Xero" would send for one invoice of either kind (sync.sources)."""
    source = invoice_source(entity_type)
    company_ref, contact_ref = source.client_refs()
    batch = client.batch(
        {
            **source.get_commands(invoice_id, ordered_rows=True),
            "co": directory.clients_list_by_filter("company", {"ID": company_ref}),
            "ct": directory.clients_list_by_filter("contact", {"ID": contact_ref}),
        }
    )
    if "item" in batch.errors:
        raise source.classify(batch.errors["item"])
    detail = source.detail(batch.raw_results())
    invoice, rows = detail.item, detail.rows
    clients = {key: batch.value(key) for key in ("co", "ct") if batch.ran(key)}
    preview = Preview(invoice_id=invoice_id, number=str(invoice.get("accountNumber") or invoice_id), action="create")
    settings, _ = SyncSettings.objects.get_or_create(portal=portal)
    items = {
        link.bitrix24_product_id: ItemRef(code=link.xero_item_code, account_code=link.xero_sales_account_code)
        for link in ItemLink.objects.filter(portal=portal)
    }
    mapping = settings.to_mapping_settings(items=items)
    link = InvoiceLink.objects.filter(
        portal=portal, bitrix24_entity_type=source.entity_type, bitrix24_id=invoice_id
    ).first()
    known = link is not None and link.xero_invoice_id is not None

    contact_id = _contact(portal, invoice, clients, preview)
    try:
        content = invoice_to_xero(invoice, rows, {"ContactID": contact_id or PLACEHOLDER_CONTACT}, mapping)
    except MappingError as exc:
        preview.action = "refused"
        preview.reasons.append(str(exc))
        preview.bitrix24 = bitrix24_totals(invoice)
        return preview
    preview.header = {label: content.get(key, "") for key, label in HEADER_LABELS}
    rates = mapping.rates_by_tax_type()
    verdict = _exact(portal, settings, mapping, invoice, rows, content)
    if verdict is not None:
        # Money's exactness (sync.mappers.exactness): the lines the push will send, Xero's figures for
        # them with the organisation's effective rates, or the reason it would be held.
        rates = _rates(portal)  # the same rates make_exact used (cached)
        content = {**content, "LineAmountTypes": verdict.amount_type, "LineItems": verdict.line_items}
        if verdict.credit_note:
            content["Type"] = "ACCRECCREDIT"
            preview.notes.append("Below zero: it would be sent as a credit note (ACCRECCREDIT).")
        preview.notes.extend(verdict.notes)
        if not verdict.exact:
            preview.action = "held"
            preview.reasons.append(verdict.message)
    # The push fingerprints the exact content with Bitrix24's amounts (sync.services.push.map).
    mapped_hash = invoice_push_fingerprint(content, bitrix24_amounts=bitrix24_amounts_of(invoice))
    amount_type = content["LineAmountTypes"]
    for line, row in zip(content["LineItems"], rows, strict=False):
        amount = line_amount(
            to_decimal(line.get("Quantity"), default=Decimal(1)),
            to_decimal(line.get("UnitAmount")),
            discount_rate=optional_decimal(line.get("DiscountRate")),
            discount_amount=optional_decimal(line.get("DiscountAmount")),
        )
        discount = (
            f"{line['DiscountRate']}%"
            if line.get("DiscountRate")
            else (str(line["DiscountAmount"]) if line.get("DiscountAmount") else "")
        )
        preview.lines.append(
            PreviewLine(
                description=line.get("Description", ""),
                quantity=to_decimal(line.get("Quantity")),
                unit_amount=to_decimal(line.get("UnitAmount")),
                discount=discount,
                account_code=line.get("AccountCode", ""),
                tax_type=line.get("TaxType", ""),
                item_code=line.get("ItemCode", ""),
                line_amount=amount,
                tax_amount=to_decimal(line["TaxAmount"])
                if line.get("TaxAmount") is not None and amount_type != "NoTax"
                else line_tax(amount, to_decimal(rates.get(line.get("TaxType") or "", 0)), amount_type),
                bitrix24_amount=_row_sum(row),
            )
        )
    if verdict is not None:
        preview.xero = Totals(subtotal=verdict.xero.subtotal, tax=verdict.xero.tax, total=verdict.xero.total)
        preview.bitrix24 = Totals(
            subtotal=verdict.bitrix24.subtotal, tax=verdict.bitrix24.tax, total=verdict.bitrix24.total
        )
    else:
        preview.xero = expected_totals(content["LineItems"], amount_type, rates)
        preview.bitrix24 = bitrix24_totals(invoice)
        gap = totals_gap(invoice, content, mapping)
        if gap is not None:
            preview.notes.append(gap.message)

    if preview.contact_state == "" and not contact_id:
        preview.action = "refused"
        preview.reasons.append(
            "The invoice has no company or contact; Xero needs a customer. Choose a client in Bitrix24."
        )
        return preview

    b24_to_xero, _ = stage_map_load(portal)
    wanted = xero_status_for_stage(str(invoice.get("stageId") or ""), b24_to_xero)
    if known:
        gate = push_gate(link=link, content=content, user_asked=False, winner=settings.drift_winner, current=None)
        if gate.hold:
            preview.action = "held"
            preview.reasons.append(gate.message)
    stage = str(invoice.get("stageId") or "")
    unchanged = (
        known and stage == link.last_bitrix24_stage_id and mapped_hash == link.last_pushed_hash and not link.drift
    )
    if unchanged and preview.action != "held":
        preview.action = "nothing"
        preview.reasons.append(
            "Unchanged since the last push. Create / Edit on Xero first reads Xero's version and "
            "sends Bitrix24's only where Xero differs."
        )
        return preview
    decision = xero_status_for_push(
        link.last_xero_status if known else None,
        wanted,
        content_changed=True,
        amount_paid=(link.xero_amount_paid or 0) if known else 0,
        record_payment_allowed=settings.record_payment_on_paid,
    )
    preview.status = decision.status or ""
    if decision.refused:
        preview.action = "refused"
        preview.reasons.append(decision.message)
    elif not decision.push and not decision.record_payment:
        if preview.action != "held":
            preview.action = "nothing"
        preview.reasons.append(decision.message or "Nothing would be sent.")
    elif preview.action not in ("held",):
        preview.action = "update" if known else "create"
        if decision.message:
            preview.notes.append(decision.message)
    return preview


def _rates(portal: Portal) -> dict[str, Decimal]:
    """The organisation's effective tax rates by TaxType (the cached reference data; a read)."""
    rates: dict[str, Decimal] = {}
    for rate in xero_reference(portal).tax_rates:
        if rate.get("rate") is not None:
            rates[str(rate["tax_type"])] = Decimal(str(rate["rate"]))
    return rates


def _exact(portal: Portal, settings: SyncSettings, mapping, invoice: dict, rows: list[dict], content: dict):
    """make_exact's verdict, or None when Xero's rates cannot be read (then the portal's tax map)."""
    try:
        rates = _rates(portal)
    except (XeroNotConnected, ExternalAPIError):
        return None
    try:
        no_tax = mapping.tax_type_for(None)
    except MappingError:
        no_tax = "NONE"
    options = Options(
        adjustment_account=settings.manual_amount_account_code,
        adjustment_tax_type=no_tax,
        force_exclusive=mapping.force_exclusive,
    )
    return make_exact(invoice, rows, content["LineItems"], rates, options)


def _row_sum(row: dict) -> Decimal | None:
    price, quantity = optional_decimal(row.get("price")), optional_decimal(row.get("quantity"))
    if price is None or quantity is None:
        return None
    return (price * quantity).quantize(Decimal("0.01"))


def _contact(portal: Portal, invoice: dict, results: dict[str, list[directory.ClientRecord]], preview: Preview) -> str:
    """The Xero ContactID when the client is linked; fills the preview's contact name and state."""
    company, person = int(invoice.get("companyId") or 0), int(invoice.get("contactId") or 0)
    kind, ident, found = ("company", company, results.get("co")) if company else ("contact", person, results.get("ct"))
    if not ident:
        return ""
    link = ContactLink.objects.filter(portal=portal, bitrix24_kind=kind, bitrix24_id=ident).first()
    if link is not None:
        preview.contact_name, preview.contact_state = link.xero_name, "existing"
        return str(link.xero_contact_id)
    entity = next((dict(e.fields) for e in found or []), None)
    preview.contact_state = "to be created"
    if entity is None:
        preview.contact_name = f"{kind} {ident}"
        return ""
    number = contact_number_for(kind, ident)
    try:
        contact = (company_to_xero_contact if kind == "company" else person_to_xero_contact)(
            entity, None, contact_number=number
        )
    except MappingError as exc:
        preview.reasons.append(str(exc))
        preview.contact_name = f"{kind} {ident}"
        return ""
    preview.contact_name = contact.get("Name", "")
    return PLACEHOLDER_CONTACT
