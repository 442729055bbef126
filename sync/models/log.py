"""The sync log: one row per outcome, shown to the user with the API's own words."""

from __future__ import annotations

from django.db import models

from accounts.models import Portal
from sync.models.choices import Direction, Trigger


class SyncLogEntry(models.Model):
    class ObjectKind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CONTACT = "contact", "Contact"
        ITEM = "item", "Item / product"
        PAYMENT = "payment", "Payment"

    class Outcome(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        STATUS_CHANGED = "status_changed", "Status / stage changed"
        PAYMENT_RECORDED = "payment_recorded", "Payment recorded"
        SKIPPED_UNCHANGED = "skipped_unchanged", "Skipped (unchanged)"
        ECHO_DROPPED = "echo_dropped", "Echo of our own change dropped"
        IGNORED_UNLINKED = "ignored_unlinked", "Ignored (not an invoice of ours)"
        REFUSED = "refused", "Refused (rule)"
        HELD = "held", "Held: totals differ"
        CHANGED_IN_XERO = "changed_in_xero", "Changed in Xero"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Failed"

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="sync_log")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    object_kind = models.CharField(max_length=10, choices=ObjectKind.choices, default=ObjectKind.INVOICE)
    bitrix24_id = models.CharField(max_length=64, blank=True)
    xero_id = models.CharField(max_length=64, blank=True)
    invoice_number = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    message = models.TextField(blank=True, help_text="The API's own error text, or our rule's explanation.")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "sync log entries"
        indexes = [
            models.Index(fields=["portal", "created_at"], name="sync_log_portal_time"),
            models.Index(fields=["portal", "object_kind", "bitrix24_id"], name="sync_log_portal_object"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.direction} {self.object_kind} {self.bitrix24_id}: {self.outcome}"
        )

    def save(self, *args, **kwargs) -> None:
        self.redact_message()
        super().save(*args, **kwargs)

    def redact_message(self) -> None:
        """Whatever wrote the message (an API's error text, an exception), no secret is stored
        (save() and sync.services.log's bulk writes both call this)."""
        from connector.redaction import redact

        if self.message:
            portal = self.portal
            self.message = redact(
                self.message, also=(portal.access_token, portal.refresh_token, portal.application_token)
            )
