"""Metrics after a real sync: the web endpoint's counters and state gauges, and a Celery worker's own
exporter (multiprocess mode, as in production)."""

from __future__ import annotations

import pytest
import requests

from tests.test_operations import _free_port, sample


@pytest.mark.django_db(transaction=True)
def test_after_a_sync_the_web_and_worker_counters_moved(
    acme, acme_xero, b24, sandbox, celery_worker_env, tmp_path, settings, client
):
    """An invoice created in Bitrix24 goes to Xero; then the web's /metrics shows the event received
    and the state gauges, and the worker's own exporter its API calls, throttle waits and outcomes."""
    from sync.models import InvoiceLink
    from sync.services.stages import stage_map_refresh
    from tests.conftest import WorkerProcess
    from tests.sync.conftest import wait_for
    from tests.sync.test_push_e2e import new_invoice

    settings.METRICS_TOKEN = "t0ken"
    auth = {"HTTP_AUTHORIZATION": "Bearer t0ken"}
    stage_map_refresh(portal=acme)
    before = client.get("/metrics", **auth).content.decode()

    port = _free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    worker = WorkerProcess(
        {**celery_worker_env, "WORKER_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
        concurrency=1,
    )
    try:
        worker.start()
        company_id = b24.call("crm.company.add", {"fields": {"TITLE": "Kauri Coast Outfitters Ltd"}})
        invoice_id = new_invoice(b24, company_id, "Metrics check")
        wait_for(
            lambda: InvoiceLink.objects.filter(bitrix24_id=invoice_id, xero_invoice_id__isnull=False).exists(),
            timeout=30,
            what="the invoice in Xero",
        )

        def worker_metrics() -> str:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            # The outcome is logged just before the job is marked done: wait for both.
            pushed = sample(text, "connector_sync_outcomes_total", direction="push") >= 1
            done = sample(text, "connector_job_results_total", kind="push_invoice", result="done") >= 1
            return text if pushed and done else ""

        scraped = wait_for(worker_metrics, timeout=15, what="the worker's counters")
    finally:
        worker.stop()

    assert sample(scraped, "connector_api_calls_total", system="xero") >= 2  # contacts, then the invoice
    assert sample(scraped, "connector_api_calls_total", system="bitrix24") >= 1
    assert sample(scraped, "connector_throttle_wait_seconds_count", system="xero") >= 2
    assert sample(scraped, "connector_sync_outcomes_total", direction="push", outcome="created") >= 1
    assert sample(scraped, "connector_job_results_total", kind="push_invoice", result="done") >= 1

    after = client.get("/metrics", **auth).content.decode()
    for name, labels in [
        ("connector_inbound_requests_total", {"source": "bitrix24", "outcome": "accepted"}),
        ("connector_inbox_events_total", {"source": "bitrix24", "result": "new"}),
    ]:
        assert sample(after, name, **labels) > sample(before, name, **labels), name
    assert sample(after, "connector_job_oldest_pending_age_seconds", portal=str(acme.pk)) == 0
    assert sample(after, "connector_xero_connections", status="active") == 1
    assert f'connector_xero_daily_calls_used{{tenant="{acme_xero.tenant_id}"}}' in after


def test_a_sync_outcome_is_also_one_log_line_with_the_invoice_ids(lone_portal, caplog):
    import logging

    from sync.services.log import sync_log_write

    caplog.set_level(logging.INFO, logger="sync.outcome")
    sync_log_write(
        portal=lone_portal, direction="push", trigger="event", outcome="failed", bitrix24_id=42, message="no contact"
    )
    (record,) = [r for r in caplog.records if r.name == "sync.outcome"]
    assert record.levelno == logging.WARNING
    assert (record.portal, record.invoice) == (str(lone_portal.pk), "42")
    assert record.getMessage() == "push invoice 42 failed: no contact"


def test_held_and_failed_invoices_are_counted_per_portal(lone_portal, client, settings):
    from sync.services.log import sync_log_write

    settings.METRICS_TOKEN = "t0ken"
    for invoice_id, outcome in ((7, "held"), (8, "failed"), (9, "created")):
        sync_log_write(portal=lone_portal, direction="push", trigger="event", outcome=outcome, bitrix24_id=invoice_id)
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
    portal = str(lone_portal.pk)
    assert sample(text, "connector_invoices", portal=portal, state="held") == 1
    assert sample(text, "connector_invoices", portal=portal, state="failed") == 1
    assert sample(text, "connector_invoices", portal=portal, state="refused") == 0
    assert 'state="on_xero"' not in text
