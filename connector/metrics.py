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
from collections.abc import Callable, Iterable, Iterator

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
        for source in STATE_SOURCES:
            yield from source()


# Sources of state gauges, each a callable yielding metrics; sync registers its own (sync.apps:
# sync/metrics_state.py), so this module imports no app's models.
STATE_SOURCES: list[Callable[[], Iterable[Metric]]] = []


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
