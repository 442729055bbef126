"""No secret in a log line, a job error or a sync log entry (issue 8, point 5).

The case from the attack review, on the real stack: a worker whose Bitrix24 OAuth server is
unreachable refreshes a portal's token. The connection error names the whole token URL, client
secret and refresh token included; every log line of the worker and every stored message must show
them redacted. Then the same for this process's log records, formatted by the project's LOGGING.
"""

from __future__ import annotations

import logging
import os
import socket

import pytest

from accounts.models import Portal
from connector.redaction import REDACTED, RedactSecretsFilter, redact
from integrations.bitrix24.oauth import bitrix24_refresh
from integrations.common.errors import PermanentError, RetryableError
from sync.models import SyncJob, SyncLogEntry
from sync.services.buttons import invoices_push_request
from sync.services.jobs import job_failed, jobs_claim
from tests.conftest import ROOT, WorkerProcess
from tests.factories import SyncLogEntryFactory
from tests.sync.conftest import OAUTH_CLIENTS, wait_for


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _secrets_of(portal: Portal) -> list[str]:
    return [OAUTH_CLIENTS["BITRIX24_CLIENT_SECRET"], portal.refresh_token, portal.access_token]


def test_an_unreachable_oauth_server_leaves_no_secret_in_the_worker_log_or_stored_errors(
    celery_worker_env, acme_xero, b24
):
    portal = Portal.objects.get(pk=acme_xero.portal_id)
    invoice_id = b24.create_invoice("Secrets test")
    Portal.objects.filter(pk=portal.pk).update(token_expires_at="2000-01-01T00:00:00Z")  # forces a refresh
    log_path = ROOT / ".pytest_cache" / f"worker-{os.getpid()}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0

    def worker_log() -> str:
        return log_path.read_text(errors="replace")[offset:]

    worker = WorkerProcess({**celery_worker_env, "SANDBOX_URL": f"http://127.0.0.1:{_closed_port()}"})
    try:
        worker.start()
        [job] = invoices_push_request(portal=portal, invoice_ids=[invoice_id], requested_by=1)
        wait_for(lambda: "oauth/token" in worker_log(), timeout=30, what="the refresh failure in the worker log")
    finally:
        worker.stop()

    text = worker_log()
    assert "client_secret=[redacted]" in text
    stored = [
        *SyncJob.objects.values_list("last_error", flat=True),
        *SyncLogEntry.objects.values_list("message", flat=True),
    ]
    for secret in _secrets_of(portal):
        assert secret not in text
        assert all(secret not in message for message in stored)


def test_job_errors_and_sync_log_entries_store_no_secret(acme):
    [job] = invoices_push_request(portal=acme, invoice_ids=[1], requested_by=1)
    [claimed] = jobs_claim(portal_id=acme.pk, kind=SyncJob.Kind.PUSH_INVOICE, limit=1)
    job_failed(
        claimed,
        PermanentError(f"refused: refresh_token={acme.refresh_token}&auth={acme.access_token}", system="bitrix24"),
    )
    SyncLogEntryFactory(
        portal=acme,
        direction="push",
        trigger="event",
        outcome="failed",
        message=f"client_secret=very-secret-value {acme.refresh_token}",
    )
    stored = [SyncJob.objects.get(pk=job.pk).last_error, SyncLogEntry.objects.get().message]
    assert all(acme.refresh_token not in m and acme.access_token not in m for m in stored), stored
    assert "very-secret-value" not in stored[1]


def test_log_records_of_any_logger_are_redacted_when_formatted_by_the_project_logging(settings, caplog):
    settings.SANDBOX_URL = f"http://127.0.0.1:{_closed_port()}"
    settings.BITRIX24_CLIENT_ID, settings.BITRIX24_CLIENT_SECRET = "app.x", "client-secret-for-logs"
    with pytest.raises(RetryableError) as raised:
        bitrix24_refresh("refresh-token-for-logs")
    logging.getLogger("some.library").exception("refresh failed: %s", raised.value)
    logging.getLogger("gunicorn.access").info('"GET /app/invoices/?ft=frame.token.value&page=2 HTTP/1.1" 200')
    logging.getLogger("x").warning("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abcdef webhook key %s", "k" * 12)
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    for secret in ("client-secret-for-logs", "refresh-token-for-logs", "frame.token.value", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in text
    assert "client-secret-for-logs" not in str(raised.value)


def test_the_filter_sits_on_the_project_handlers(settings):
    handlers = settings.LOGGING["handlers"]
    assert all("redact_secrets" in h.get("filters", []) for h in handlers.values())
    assert RedactSecretsFilter().filter(logging.makeLogRecord({"msg": "auth=abc"}))
    assert redact("x?client_secret=s3cr3t&y=1") == f"x?client_secret={REDACTED}&y=1"
