"""The operators' state gauges (connector/metrics.py serves them): jobs, the inbox, invoices by state,
Xero's daily budget, connections and portals, read from the database when /metrics is scraped.

They read the tables of accounts and sync, so they live here and sync registers them at start-up
(sync.apps) in connector.metrics.STATE_SOURCES; connector imports neither (issue 17's layers).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric


def state_gauges() -> Iterator[Metric]:
    """Gauges computed from the database at scrape time (a few grouped queries on indexed columns)."""
    from django.db.models import Count, Min
    from django.utils import timezone

    from accounts.models import Portal, XeroConnection
    from integrations.common.throttle import xero_daily_usage
    from sync.models import InboxEvent, SyncJob

    now = timezone.now()
    jobs = GaugeMetricFamily(
        "connector_jobs",
        "Jobs not finished (pending, running) or failed, per portal and kind.",
        labels=["portal", "kind", "state"],
    )
    for row in (
        SyncJob.objects.filter(status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING, SyncJob.Status.FAILED])
        .values("portal_id", "kind", "status")
        .annotate(n=Count("id"))
    ):
        jobs.add_metric([str(row["portal_id"]), row["kind"], row["status"]], row["n"])
    oldest = GaugeMetricFamily(
        "connector_job_oldest_pending_age_seconds",
        "Age of the oldest due pending job per portal (0 when none waits): a growing value means work is stuck.",
        labels=["portal"],
    )
    due = dict(
        SyncJob.objects.filter(status=SyncJob.Status.PENDING, not_before__lte=now)
        .values("portal_id")
        .annotate(first=Min("not_before"))
        .values_list("portal_id", "first")
    )
    for portal_id in Portal.objects.exclude(status=Portal.Status.UNINSTALLED).values_list("pk", flat=True):
        first = due.get(portal_id)
        oldest.add_metric([str(portal_id)], (now - first).total_seconds() if first else 0.0)
    inbox = GaugeMetricFamily(
        "connector_inbox_unprocessed",
        "Inbox rows received or processing (not yet turned into jobs).",
        labels=["source"],
    )
    for source, n in (
        InboxEvent.objects.filter(status__in=[InboxEvent.Status.RECEIVED, InboxEvent.Status.PROCESSING])
        .values("source")
        .annotate(n=Count("id"))
        .values_list("source", "n")
    ):
        inbox.add_metric([source], n)
    yield from (jobs, oldest, inbox)
    yield from invoice_states()

    budget = GaugeMetricFamily(
        "connector_xero_daily_calls_used",
        "Xero calls counted by our throttle in the rolling day, per tenant (Xero's limit: XERO_DAILY_LIMIT).",
        labels=["tenant"],
    )
    remaining = GaugeMetricFamily(
        "connector_xero_daily_calls_remaining",
        "X-DayLimit-Remaining as Xero last reported it, per tenant (absent when not known).",
        labels=["tenant"],
    )
    for tenant_id in XeroConnection.objects.exclude(tenant_id="").values_list("tenant_id", flat=True).distinct():
        used, left = xero_daily_usage(tenant_id)
        budget.add_metric([tenant_id], used)
        if left is not None:
            remaining.add_metric([tenant_id], left)
    yield from (budget, remaining)

    connections = GaugeMetricFamily(
        "connector_xero_connections",
        "Xero connections by status (needs_reauth waits for a user).",
        labels=["status"],
    )
    for status, n in XeroConnection.objects.values("status").annotate(n=Count("id")).values_list("status", "n"):
        connections.add_metric([status], n)
    portals = GaugeMetricFamily("connector_portals", "Bitrix24 portals by status.", labels=["status"])
    for status, n in Portal.objects.values("status").annotate(n=Count("id")).values_list("status", "n"):
        portals.add_metric([status], n)
    yield from (connections, portals)


def invoice_states() -> Iterable[Metric]:
    """Invoices by where they stand (sync.models.InvoiceOutcome), except the many that are fine on
    Xero: held (totals differ), failed, refused, retrying, changed in Xero, per portal."""
    from django.db.models import Count

    from sync.models import InvoiceOutcome

    states = GaugeMetricFamily(
        "connector_invoices",
        "Invoices not simply on Xero, per portal and state (held, failed, refused need a person).",
        labels=["portal", "state"],
    )
    counted = dict.fromkeys((s for s in InvoiceOutcome.State.values if s != InvoiceOutcome.State.ON_XERO), 0)
    rows = (
        InvoiceOutcome.objects.exclude(state=InvoiceOutcome.State.ON_XERO)
        .values("portal_id", "state")
        .annotate(n=Count("id"))
        .values_list("portal_id", "state", "n")
    )
    by_portal: dict[int, dict[str, int]] = {}
    for portal_id, state, n in rows:
        by_portal.setdefault(portal_id, dict(counted))[state] = n
    for portal_id, values in sorted(by_portal.items()):
        for state, n in values.items():
            states.add_metric([str(portal_id), state], n)
    yield states
