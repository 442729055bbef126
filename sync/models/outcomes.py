"""Where each invoice stands, whether or not it ever reached Xero (issue 9).

One row per Bitrix24 invoice the engine has acted on, keyed like InvoiceLink (portal, entity type,
id) but independent of it: an invoice that failed before Xero ever heard of it has an outcome and
no link. The row is written from the sync log (sync.services.outcomes.outcome_note), so every
engine that logs an invoice outcome — push, pull, money's hold, drift's "Changed in Xero" — keeps
it current without knowing about it. "Queued" is not stored: it is a pending job (the list adds it).
"""

from __future__ import annotations

from django.db import models

from accounts.models import Portal
from integrations.bitrix24.entity_types import SMART_INVOICE


class InvoiceOutcome(models.Model):
    class State(models.TextChoices):
        ON_XERO = "on_xero", "On Xero"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"
        HELD = "held", "Held: totals differ"
        CHANGED_IN_XERO = "changed_in_xero", "Changed in Xero"

    # The states a person has to act on ("Needs attention").
    ATTENTION = (State.FAILED, State.REFUSED, State.HELD)

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="invoice_outcomes")
    bitrix24_entity_type = models.PositiveSmallIntegerField(default=SMART_INVOICE)
    bitrix24_id = models.PositiveBigIntegerField()
    state = models.CharField(max_length=20, choices=State.choices)
    reason = models.TextField(blank=True, help_text="The API's own words, or the rule's explanation.")
    rule = models.CharField(max_length=64, blank=True, help_text="The rule or error code behind the state.")
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts of the job behind the last outcome.")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When a retry is due (Retrying).")
    log_entry_id = models.PositiveBigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["portal", "bitrix24_entity_type", "bitrix24_id"], name="invoice_outcome_unique_invoice"
            )
        ]
        indexes = [models.Index(fields=["portal", "state"], name="invoice_outcome_portal_state")]

    def __str__(self) -> str:
        return f"{self.bitrix24_entity_type}:{self.bitrix24_id} {self.state}"

    @property
    def needs_attention(self) -> bool:
        return self.state in self.ATTENTION
