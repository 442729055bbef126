"""The portal's mapping choices: the stage map both ways, and the defaults for invoices."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import Portal
from integrations.bitrix24.entity_types import SMART_INVOICE
from sync.mappers.invoice import ItemRef, MappingSettings
from sync.mappers.money import optional_decimal
from sync.models.choices import XeroStatus


class StageMapping(models.Model):
    """One Bitrix24 invoice stage and the Xero status it asks for ("" = don't push, leave as is).

    name/semantics/sort are a copy of crm.status.list, refreshed by stage_map_apply_defaults; the
    SEMANTICS decide the defaults, never the stage codes (bitrix24-api.md §1.5).
    """

    class Semantics(models.TextChoices):
        IN_PROGRESS = "", "In progress"
        SUCCESS = "S", "Success"
        FAILURE = "F", "Failure"

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="stage_mappings")
    stage_id = models.CharField(max_length=100, help_text='Full stage id, e.g. "DT31_3:UC_AB12CD".')
    category_id = models.PositiveIntegerField()
    name = models.CharField(max_length=255)
    semantics = models.CharField(max_length=1, choices=Semantics.choices, blank=True, default="")
    sort = models.IntegerField(default=0)
    xero_status = models.CharField(
        max_length=12,
        choices=XeroStatus.choices,
        blank=True,
        help_text="Xero status for invoices entering this stage; empty = don't push, leave Xero as it is.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portal", "category_id", "sort", "stage_id"]
        constraints = [
            models.UniqueConstraint(fields=["portal", "stage_id"], name="stage_mapping_unique_stage"),
            models.CheckConstraint(
                condition=models.Q(xero_status__in=["", *XeroStatus.values]), name="stage_mapping_valid_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.stage_id}) → {self.xero_status or 'leave as is'}"

    def clean(self) -> None:
        """What Django admin (any ModelForm) refuses: a status Xero does not have, and Paid while
        payments are not recorded (Xero sets PAID only through a payment)."""
        if self.xero_status and self.xero_status not in XeroStatus.values:
            raise ValidationError({"xero_status": f'"{self.xero_status}" is not a Xero invoice status.'})
        if self.xero_status == XeroStatus.PAID and self.portal_id:
            settings = SyncSettings.objects.filter(portal_id=self.portal_id).first()
            if settings is None or not (settings.record_payment_on_paid and settings.payment_account_code):
                raise ValidationError(
                    {
                        "xero_status": "Xero marks an invoice Paid only through a payment: switch on "
                        "“record payment on paid” with a bank account in the portal's sync settings first."
                    }
                )


class XeroStatusMapping(models.Model):
    """One Xero status and the Bitrix24 stage an invoice moves to when Xero reports it
    ("" = leave the stage alone), per kind of invoice: a portal with old and new invoices has one
    map for each (old invoices have statuses, not pipeline stages)."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="xero_status_mappings")
    entity_type = models.PositiveSmallIntegerField(
        default=SMART_INVOICE, help_text="Bitrix24 entity type of the invoices this row moves: 31 new, 5 old."
    )
    xero_status = models.CharField(max_length=12, choices=XeroStatus.choices)
    stage_id = models.CharField(max_length=100, blank=True, help_text="Empty = leave the Bitrix24 stage alone.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portal", "entity_type", "xero_status"]
        constraints = [
            models.UniqueConstraint(
                fields=["portal", "entity_type", "xero_status"], name="xero_status_mapping_unique_status"
            ),
            models.CheckConstraint(
                condition=models.Q(xero_status__in=XeroStatus.values), name="xero_status_mapping_valid_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.xero_status} → {self.stage_id or 'leave as is'}"

    def clean(self) -> None:
        """The stage must be one of the portal's real invoice stages (the copy of Bitrix24's
        crm.status.list that Setup refreshes), or empty; anything else would break the pull."""
        if self.xero_status and self.xero_status not in XeroStatus.values:
            raise ValidationError({"xero_status": f'"{self.xero_status}" is not a Xero invoice status.'})
        if self.stage_id and self.portal_id:
            known = StageMapping.objects.filter(portal_id=self.portal_id, stage_id=self.stage_id).exists()
            if not known:
                raise ValidationError(
                    {
                        "stage_id": f'"{self.stage_id}" is not an invoice stage of this portal. Choose one of its '
                        "stages (open Setup in the app to re-read them from Bitrix24), or leave it empty."
                    }
                )


def default_tax_types() -> dict[str, str]:
    # JSON keys are strings: the Bitrix24 rate as a plain number, "none" for rows without a rate.
    return {"none": "NONE"}


class SyncSettings(models.Model):
    """One per portal: defaults the invoice mapping needs, the payment switches, sweep watermarks."""

    class LineAmounts(models.TextChoices):
        AUTO = "auto", "Follow the rows (Inclusive when Bitrix24 prices include tax)"
        EXCLUSIVE = "exclusive", "Always send tax-exclusive prices"

    portal = models.OneToOneField(Portal, on_delete=models.CASCADE, related_name="sync_settings")
    default_account_code = models.CharField(max_length=10, default="200")
    default_tax_type = models.CharField(
        max_length=50, blank=True, help_text="Xero TaxType for new Xero items created from Bitrix24 products."
    )
    tax_types = models.JSONField(
        default=default_tax_types,
        blank=True,
        help_text='Bitrix24 tax rate → Xero TaxType, e.g. {"15": "OUTPUT2", "0": "ZERORATEDOUTPUT", "none": "NONE"}.',
    )
    default_currency = models.CharField(
        max_length=3, blank=True, help_text="Used when an invoice has no currency, and for imported products."
    )
    line_amounts = models.CharField(max_length=10, choices=LineAmounts.choices, default=LineAmounts.AUTO)
    record_payment_on_paid = models.BooleanField(
        default=False, help_text="Record a Xero payment of the amount due when a stage maps to PAID."
    )
    payment_account_code = models.CharField(
        max_length=10, blank=True, help_text="Xero bank account (code) the payments above are recorded to."
    )
    create_bitrix24_payment_on_paid = models.BooleanField(
        default=False, help_text="Create a Bitrix24 payment record when Xero reports the invoice PAID."
    )

    class CurrencyRateSource(models.TextChoices):
        XERO = "xero", "Xero's rate (Xero uses its daily rate)"
        BITRIX24 = "bitrix24", "Bitrix24's rate (sent as the invoice's CurrencyRate)"

    totals_tolerance_cents = models.PositiveSmallIntegerField(
        default=0,
        help_text="An invoice whose Xero total would differ from Bitrix24's by at most this many cents is "
        "pushed as DRAFT only, with the difference noted; 0 = hold every difference.",
    )
    manual_amount_account_code = models.CharField(
        max_length=10,
        blank=True,
        help_text="A hand-entered Bitrix24 amount is sent with the difference to its rows as an adjustment "
        "line to this Xero account; empty = hold such invoices.",
    )
    currency_rate_source = models.CharField(
        max_length=10, choices=CurrencyRateSource.choices, default=CurrencyRateSource.XERO
    )

    class DriftWinner(models.TextChoices):
        BITRIX24 = "bitrix24", "Bitrix24 (automatic sync restores Bitrix24's version)"
        XERO = "xero", "Xero (automatic sync keeps changes made in Xero)"

    drift_winner = models.CharField(
        max_length=10,
        choices=DriftWinner.choices,
        default=DriftWinner.BITRIX24,
        help_text="When an invoice was changed in Xero, which side automatic sync keeps. Drift is always shown.",
    )
    setup_completed = models.BooleanField(default=False)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text='The portal\'s time zone for the pages ("+03:00" as Bitrix24 writes its dates, or an IANA name).',
    )
    # Sweeps read changes since these marks (minus an overlap) and advance them when a pass completes.
    bitrix24_updated_since = models.DateTimeField(null=True, blank=True)
    xero_modified_since = models.DateTimeField(null=True, blank=True)
    contacts_modified_since = models.DateTimeField(
        null=True, blank=True, help_text="Linked companies/contacts changed in Bitrix24 after this are updated in Xero."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sync settings"
        verbose_name_plural = "sync settings"
        constraints = [
            # Paying needs somewhere to pay into; refuse the switch without an account.
            models.CheckConstraint(
                condition=models.Q(record_payment_on_paid=False) | ~models.Q(payment_account_code=""),
                name="sync_settings_payment_needs_account",
            ),
        ]

    def __str__(self) -> str:
        return f"Settings of {self.portal}"

    def clean(self) -> None:
        bad = []
        for key, value in (self.tax_types or {}).items():
            try:
                if key != "none":
                    optional_decimal(key)
            except ValueError:
                bad.append(key)
            if not isinstance(value, str) or not value:
                bad.append(key)
        if bad:
            raise ValidationError(
                {"tax_types": f'Keys must be tax rates like "15" or "none", values Xero tax types; check {bad}.'}
            )

    def tax_type_map(self) -> dict[str | None, str]:
        """tax_types with "none" turned back into None, the form MappingSettings takes."""
        return {None if key == "none" else key: value for key, value in (self.tax_types or {}).items()}

    def to_mapping_settings(
        self, *, items: Mapping[int, ItemRef] | None = None, xero_tax_rates: list[dict] | None = None
    ) -> MappingSettings:
        """The plain values invoice_to_xero needs. `items` are the portal's ItemLinks by product id;
        `xero_tax_rates` the organisation's (reference cache), to name them in a missing-rate error."""
        return MappingSettings(
            default_account_code=self.default_account_code,
            tax_types=self.tax_type_map(),
            default_currency=self.default_currency,
            force_exclusive=self.line_amounts == self.LineAmounts.EXCLUSIVE,
            bitrix24_domain=self.portal.domain,
            items=items or {},
            xero_tax_rates=tuple(xero_tax_rates or ()),
        )
