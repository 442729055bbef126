"""Prometheus metrics (prometheus-client) for operators: what came in, what went out, what waits.

Two kinds:

- **Counters and histograms** incremented where things happen (webhook answers, inbox rows, API
  calls and 429s, throttle waits, token refreshes, sync outcomes). Web server and Celery worker
  processes each count their own. With `PROMETHEUS_MULTIPROC_DIR` set (gunicorn's workers, Celery's
  pool), every process writes to files in that folder and a scrape adds them up
  (prometheus-client's multiprocess mode); the folder must be empty when the service starts.
- **State gauges** read from the database (and the throttle) when scraped: jobs by state and the
  age of the oldest due job per portal, unfinished inbox rows, invoices held / failed / refused /
  retrying (sync.models.InvoiceOutcome), the Xero daily budget used per tenant. They are the truth whichever process did the work, so only the web
  endpoint serves them (a worker's exporter would only repeat them).

Where: `GET /metrics` on the web server, allowed with `Authorization: Bearer <METRICS_TOKEN>`
(404 when METRICS_TOKEN is unset); each Celery worker serves its own counters on
`WORKER_METRICS_PORT` (internal: do not publish it) when that is set.

Labels are ids (portal id, tenant id, system names), never names or amounts: cardinality stays
bounded by the number of portals.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# --- counted where it happens ---------------------------------------------------------------------

INBOUND_REQUESTS = Counter(
    "connector_inbound_requests",
    "Bitrix24 events, Xero webhooks and installs answered, by outcome (accepted 2xx, refused 4xx, error 5xx).",
    ["source", "outcome"],
)
INBOX_EVENTS = Counter(
    "connector_inbox_events",
    "Verified events offered to the inbox: new (stored to process), duplicate (a redelivery), ignored.",
    ["source", "result"],
)
SYNC_OUTCOMES = Counter(
    "connector_sync_outcomes",
    "Sync log entries written: pushes, pulls and imports by outcome (created, updated, failed, ...).",
    ["direction", "outcome"],
)
API_CALLS = Counter(
    "connector_api_calls",
    "Calls to Bitrix24 and Xero let through by the client-side throttle (one per HTTP request).",
    ["system"],
)
API_RATE_LIMITED = Counter(
    "connector_api_rate_limited",
    "429 / QUERY_LIMIT_EXCEEDED answers from the API (every caller then waits the Retry-After).",
    ["system"],
)
THROTTLE_WAIT = Histogram(
    "connector_throttle_wait_seconds",
    "Time a caller waited for its turn in the client-side throttle before calling the API.",
    ["system"],
    buckets=(0.005, 0.05, 0.25, 1, 2.5, 5, 10, 30, 60),
)
THROTTLE_REFUSED = Counter(
    "connector_throttle_refused",
    "Calls not made because the wait would be too long or the day's budget is spent (job retried later).",
    ["system", "limit"],
)
TOKEN_REFRESHES = Counter(
    "connector_token_refreshes",
    "OAuth token refreshes: refreshed, sibling (another process had already refreshed), lost (grant dead).",
    ["system", "outcome"],
)
JOB_RESULTS = Counter(
    "connector_job_results",
    "Jobs finished by kind and result: done, retry (back to pending with backoff), failed.",
    ["kind", "result"],
)


def count(counter: Counter, *labels: str, amount: float = 1) -> None:
    """Increment without ever breaking the caller (a metric is never worth a failed sync)."""
    try:
        counter.labels(*labels).inc(amount)
    except Exception:  # pragma: no cover - defensive
        logger.debug("metric %s not counted", counter, exc_info=True)


def observe(histogram: Histogram, value: float, *labels: str) -> None:
    try:
        histogram.labels(*labels).observe(value)
    except Exception:  # pragma: no cover - defensive
        logger.debug("metric %s not observed", histogram, exc_info=True)


def sync_log_counted(sender, instance, created: bool, **kwargs) -> None:
    """post_save of SyncLogEntry: every sync outcome the user sees is counted the same way."""
    if created:
        count(SYNC_OUTCOMES, str(instance.direction), str(instance.outcome))


# --- read when scraped ------------------------------------------------------------------------------


class StateCollector(Collector):
    """Gauges computed from the database at scrape time (a few grouped queries on indexed columns)."""

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception as exc:
            # A scrape must answer even when the database does not; /ready/ says what is down.
            logger.warning("metrics: state gauges unavailable (%s)", type(exc).__name__)
            up = GaugeMetricFamily("connector_state_metrics_up", "1 when the state gauges could be read.")
            up.add_metric([], 0)
            yield up

    def _collect(self) -> Iterator[Metric]:
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
        yield from _invoice_states()

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


def _invoice_states() -> Iterable[Metric]:
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


# --- exposition -------------------------------------------------------------------------------------


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def process_registry() -> CollectorRegistry:
    """The counters of this process, or of every process writing to PROMETHEUS_MULTIPROC_DIR."""
    if not multiprocess_dir():
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def exposition(*, with_state: bool = True) -> bytes:
    started = time.monotonic()
    parts = [generate_latest(process_registry())]
    if with_state:
        state = CollectorRegistry()
        state.register(StateCollector())
        parts.append(generate_latest(state))
        logger.debug("metrics scrape took %.3fs", time.monotonic() - started)
    return b"".join(parts)


def token_valid(header: str, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


CONTENT_TYPE = CONTENT_TYPE_LATEST


def worker_exporter_start(port: int) -> None:
    """A Celery worker's own /metrics (its pool's counters) on an internal port."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=os.environ.get("WORKER_METRICS_ADDR", "0.0.0.0"), registry=process_registry())
    logger.info("worker metrics on port %s", port)
