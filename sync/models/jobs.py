"""The outbox: work the engine has decided to do, durable in PostgreSQL.

A service writes the job in the same transaction as the change that calls for it and enqueues the
task on commit; workers claim a job with a conditional UPDATE (status pending -> running, with a
lease); the sweeper re-enqueues pending jobs past `not_before` and running ones past their lease.
At most one pending job exists per (portal, kind, target) (a partial unique constraint): a burst of
events for one invoice coalesces into that one job (sync.services.jobs.job_enqueue).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Portal
from sync.models.choices import Trigger


class SyncJob(models.Model):
    class Kind(models.TextChoices):
        PUSH_INVOICE = "push_invoice", "Push invoice to Xero"
        PULL_STATUS = "pull_status", "Pull invoice status from Xero"
        IMPORT_CONTACTS = "import_contacts", "Import Xero contacts"
        IMPORT_ITEMS = "import_items", "Import Xero items"
        PUSH_PRODUCT = "push_product", "Create product in Xero"
        SWEEP_BITRIX24 = "sweep_bitrix24", "Sweep Bitrix24 changes"
        SWEEP_XERO = "sweep_xero", "Sweep Xero changes"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Priority(models.IntegerChoices):
        # A user waiting on a button goes before background work.
        USER = 0, "User request"
        EVENT = 5, "Event"
        BACKGROUND = 9, "Background"

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="sync_jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    target = models.CharField(
        max_length=100, blank=True, help_text='What the job works on, e.g. "31:42" (Bitrix24) or a Xero InvoiceID.'
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.EVENT)
    requested_by = models.PositiveIntegerField(
        null=True, blank=True, help_text="Bitrix24 user id for button clicks: the job acts with their rights."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    # The pass that runs the job (sync.services.heartbeat): while its Redis heartbeat lives the job is
    # in hand; once it is gone (kill -9) the sweeper releases the job without waiting for the lease.
    holder = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "not_before"]
        constraints = [
            models.UniqueConstraint(
                fields=["portal", "kind", "target"],
                condition=models.Q(status="pending"),
                name="sync_job_one_pending_per_target",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "not_before"], name="sync_job_sweeper"),
            models.Index(fields=["portal", "created_at"], name="sync_job_portal_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.target} ({self.status})"
