"""A worker keeps its database connection from one task to the next (connector/celery_db.py), as the
web process does between requests, instead of Celery's default of a new connection for every task;
and a kept connection that died (a database restart) costs the next task nothing."""

from __future__ import annotations

import pytest
from django.db import connection

from sync.models import InboxEvent
from tests.conftest import WorkerProcess
from tests.sync.conftest import wait_for, xero_body, xero_event, xero_post


def _other_backends() -> set[int]:
    """The PostgreSQL backends of the test database other than this process's own (the worker's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return {pid for (pid,) in cursor.fetchall()}


def _deliver_and_wait(app_url: str, tenant_id: str, done: int) -> None:
    assert xero_post(f"{app_url}/xero/webhooks/", xero_body([xero_event(tenant_id)])).status_code == 200
    wait_for(lambda: InboxEvent.objects.exclude(status=InboxEvent.Status.RECEIVED).count() >= done, what="processed")


@pytest.fixture
def kept_worker(celery_worker_env):
    """A worker with production's CONN_MAX_AGE (the suite runs with 0: see tests/conftest.py)."""
    process = WorkerProcess({**celery_worker_env, "CONN_MAX_AGE": "60"})
    try:
        process.start()
        yield process
    finally:
        process.stop()


def test_a_worker_keeps_its_connection_between_tasks_and_survives_its_loss(acme_xero, app_url, kept_worker):
    _deliver_and_wait(app_url, acme_xero.tenant_id, 1)
    before = _other_backends()
    _deliver_and_wait(app_url, acme_xero.tenant_id, 2)
    after = _other_backends()

    kept = before & after
    assert kept, (before, after)  # the worker's connection outlived its task and served the next

    with connection.cursor() as cursor:
        for pid in kept:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    _deliver_and_wait(app_url, acme_xero.tenant_id, 3)  # checked before use, reopened: processed
    assert not InboxEvent.objects.filter(status=InboxEvent.Status.FAILED).exists()
