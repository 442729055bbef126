"""Which Bitrix24 record is which Xero record. The unique constraints here are what make a task that
runs twice harmless: the second run finds the link instead of creating a second Xero object."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.models import Portal
from integrations.bitrix24 import entity_types
from sync.models.choices import XeroStatus


class InvoiceLink(models.Model):
    """A Bitrix24 invoice and its Xero invoice, with what each side last looked like to us.

    Concurrency (style-and-reliability.md B.3): a worker holds the per-invoice lock, reads `version`,
    and saves its result with `UPDATE ... SET version = version + 1 WHERE version = <read>`; 0 rows
    means another worker won and it must re-read. A change arriving while the lock is held sets
    `dirty`, and the holder runs once more before letting go.

    Echoes (B.4): `last_pushed_hash` / `last_pulled_hash` are canonical fingerprints
    (sync.mappers.canonical) of what we last sent to / acted on from Xero; equal content is dropped.
    """

    class EntityType(models.IntegerChoices):
        SMART_INVOICE = entity_types.SMART_INVOICE, "Invoice (new)"
        CLASSIC_INVOICE = entity_types.OLD_INVOICE, "Invoice (old)"

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="invoice_links")
    bitrix24_entity_type = models.PositiveSmallIntegerField(
        choices=EntityType.choices, default=EntityType.SMART_INVOICE
    )
    bitrix24_id = models.PositiveBigIntegerField()
    xero_invoice_id = models.UUIDField(null=True, blank=True, help_text="Empty until the invoice exists in Xero.")
    xero_invoice_number = models.CharField(max_length=255, blank=True)
    # ACCREC, or ACCRECCREDIT when Bitrix24's total is below zero: xero_invoice_id is then a CreditNoteID.
    xero_type = models.CharField(max_length=12, default="ACCREC")
    # The CurrencyRate Xero used (units of the invoice currency per 1 base currency), when foreign.
    xero_currency_rate = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    last_pushed_hash = models.CharField(max_length=64, blank=True)
    last_pulled_hash = models.CharField(max_length=64, blank=True)
    last_xero_status = models.CharField(max_length=12, choices=XeroStatus.choices, blank=True)
    last_bitrix24_stage_id = models.CharField(max_length=100, blank=True)
    # Xero's UpdatedDateUTC of the version we last read: older data arriving late is ignored.
    xero_updated_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0, help_text="Fencing token; +1 on every saved sync result.")
    dirty = models.BooleanField(default=False, help_text="Changed again while being synced; sync once more.")
    last_error = models.TextField(blank=True, help_text="The API's own message from the last failed attempt.")
    last_error_permanent = models.BooleanField(default=False)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    # Drift (sync.mappers.drift): the invoice JSON last sent, to compare Xero's later versions with;
    # the differences found ("Changed in Xero" while non-empty); Xero's version the user accepted.
    last_pushed_content = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    drift = models.JSONField(
        default=list,
        blank=True,
        help_text="What differs in Xero from Bitrix24: [{field, label, bitrix24, xero, kind}].",
    )
    drift_detected_at = models.DateTimeField(null=True, blank=True)
    drift_xero_hash = models.CharField(max_length=64, blank=True, help_text="Xero's content when drift was found.")
    xero_accepted_hash = models.CharField(
        max_length=64, blank=True, help_text="Xero's version the user accepted; automatic sync leaves it alone."
    )
    xero_accepted_at = models.DateTimeField(null=True, blank=True)
    # Xero's payment details, as last read.
    xero_total = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    xero_amount_paid = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    xero_amount_due = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    xero_fully_paid_on = models.DateField(null=True, blank=True)
    xero_online_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portal", "-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["portal", "bitrix24_entity_type", "bitrix24_id"], name="invoice_link_unique_bitrix24"
            ),
            models.UniqueConstraint(
                fields=["portal", "xero_invoice_id"],
                condition=models.Q(xero_invoice_id__isnull=False),
                name="invoice_link_unique_xero",
            ),
        ]
        indexes = [
            # The sweeper's "who still needs a run" and the UI's "what failed" lists stay small.
            models.Index(fields=["portal"], condition=models.Q(dirty=True), name="invoice_link_dirty"),
            models.Index(
                fields=["portal", "updated_at"], condition=~models.Q(last_error=""), name="invoice_link_failed"
            ),
            models.Index(fields=["portal", "xero_invoice_number"], name="invoice_link_number"),
            models.Index(fields=["portal"], condition=~models.Q(drift=[]), name="invoice_link_drift"),
        ]

    def __str__(self) -> str:
        return f"B24 {self.bitrix24_entity_type}/{self.bitrix24_id} ↔ Xero {self.xero_invoice_number or self.xero_invoice_id or '—'}"

    @classmethod
    def save_if_version(cls, pk: int, version: int, **values) -> bool:
        """The compare-and-set of a sync result (B.3): write `values` and bump `version` only if the
        row is still at the `version` the caller read. False: another worker saved first (or the
        link is gone); the caller re-reads and decides again."""
        return bool(cls.objects.filter(pk=pk, version=version).update(version=models.F("version") + 1, **values))

    @property
    def changed_in_xero(self) -> bool:
        return bool(self.drift)

    @property
    def partly_paid(self) -> bool:
        return bool(self.xero_amount_paid) and bool(self.xero_amount_due)


class ContactLink(models.Model):
    """A Bitrix24 company or contact and the Xero contact invoices for it go to."""

    class Kind(models.TextChoices):
        COMPANY = "company", "Company"
        CONTACT = "contact", "Contact"

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="contact_links")
    bitrix24_kind = models.CharField(max_length=10, choices=Kind.choices)
    bitrix24_id = models.PositiveBigIntegerField()
    xero_contact_id = models.UUIDField()
    xero_name = models.CharField(max_length=255, help_text="The name used in Xero (unique among active contacts).")
    xero_contact_number = models.CharField(max_length=50, blank=True)
    last_pushed_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portal", "bitrix24_kind", "bitrix24_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["portal", "bitrix24_kind", "bitrix24_id"], name="contact_link_unique_bitrix24"
            ),
            models.UniqueConstraint(fields=["portal", "xero_contact_id"], name="contact_link_unique_xero"),
        ]

    def __str__(self) -> str:
        return f"B24 {self.bitrix24_kind} {self.bitrix24_id} ↔ {self.xero_name}"


class ItemLink(models.Model):
    """A Bitrix24 catalog product and the Xero item (by ItemID and Code) its rows are sent as."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="item_links")
    bitrix24_product_id = models.PositiveBigIntegerField()
    xero_item_id = models.UUIDField()
    xero_item_code = models.CharField(max_length=30)
    xero_sales_account_code = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portal", "xero_item_code"]
        constraints = [
            models.UniqueConstraint(fields=["portal", "bitrix24_product_id"], name="item_link_unique_bitrix24"),
            models.UniqueConstraint(fields=["portal", "xero_item_id"], name="item_link_unique_xero"),
            models.UniqueConstraint(fields=["portal", "xero_item_code"], name="item_link_unique_code"),
        ]

    def __str__(self) -> str:
        return f"B24 product {self.bitrix24_product_id} ↔ {self.xero_item_code}"


class ReconciliationRun(models.Model):
    """One comparison of every linked invoice with Xero (sync.services.reconcile), kept for the page.

    rows: [{bitrix24_id, number, xero_invoice_id, xero_number, kinds, differences, xero_status}] for
    the invoices that differ; missing: [{bitrix24_id, number, title, reason}] Bitrix24 invoices that
    should be in Xero but are not; orphans: [{xero_invoice_id, number, reference, url, status, total}]
    Xero invoices pointing at this portal that no link knows.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="reconciliation_runs")
    trigger = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    checked = models.PositiveIntegerField(default=0)
    xero_calls = models.PositiveIntegerField(default=0)
    bitrix24_calls = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    rows = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    missing = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    orphans = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["portal", "-started_at"]
        indexes = [models.Index(fields=["portal", "started_at"], name="reconciliation_portal_time")]

    def __str__(self) -> str:
        return f"Reconciliation of {self.portal} at {self.started_at:%Y-%m-%d %H:%M} ({self.status})"
