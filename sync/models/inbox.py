"""The inbox: every verified webhook/event, stored before anything else happens.

The view verifies the signature/application_token, inserts unless (source, dedupe_key) is there
already (the unique constraint settles races) so a redelivery is a no-op, enqueues the processing task on commit and
answers. The sweeper re-enqueues rows left `received`, or `processing` past `lease_until`.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Portal
from sync.models.choices import Source


class InboxEvent(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    # Null until resolved: a Xero event names a tenant, which maps to a portal only after lookup.
    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, null=True, blank=True, related_name="inbox_events")
    source = models.CharField(max_length=10, choices=Source.choices)
    dedupe_key = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    headers = models.JSONField(default=dict, blank=True, help_text="The few headers worth keeping (no secrets).")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "dedupe_key"], name="inbox_event_unique_delivery"),
        ]
        indexes = [
            # The sweeper only looks at unfinished rows.
            models.Index(
                fields=["status", "received_at"],
                condition=models.Q(status__in=["received", "processing"]),
                name="inbox_event_unfinished",
            ),
            models.Index(fields=["portal", "received_at"], name="inbox_event_portal_time"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.event_type} {self.dedupe_key} ({self.status})"
