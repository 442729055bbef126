"""Redis (the broker) goes down: the webhook endpoints keep answering and storing; once it is back,
the sweeper sends what was never sent and every stored event ends processed with its job.

Our own redis-server, web server (manage.py runserver) and worker run as subprocesses on the test
database, so stopping that Redis touches nobody else.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
import requests
from celery import Celery
from django.utils import timezone

from accounts.models import Portal
from accounts.services.sandbox import sandbox_connect_xero
from celery_app import app as celery
from sync.models import InboxEvent, SyncJob
from sync.tasks.sweeps import sweep_stuck_task
from tests.conftest import ROOT, WorkerProcess, _wait_http
from tests.sync.conftest import WEBHOOK_KEY, setup_done, wait_for, xero_body, xero_event, xero_post
from tests.sync.test_xero_webhook import create_xero_invoice


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private redis-server on a free port, started and stopped by this test only."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: self._pings(client), timeout=10, what="our redis-server")

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def own_redis():
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class OwnBrokerWorker(WorkerProcess):
    """tests/conftest.py's worker, checked for readiness through its own broker (this process's
    Celery app keeps pooled connections to the suite's Redis)."""

    def __init__(self, env: dict[str, str], broker_url: str) -> None:
        super().__init__(env, concurrency=2)
        self.broker_url = broker_url

    def wait_ready(self, timeout: float = 60) -> None:
        probe = Celery("probe", broker=self.broker_url, set_as_current=False)
        try:
            wait_for(lambda: self.proc.poll() is None and self._pong(probe), timeout=timeout, what="our worker")
        finally:
            probe.close()

    @staticmethod
    def _pong(probe: Celery) -> bool:
        try:
            return bool(probe.control.ping(timeout=1))
        except Exception:  # the broker may still be starting
            return False


@contextmanager
def sending_to(url: str):
    """This process's task sends (the sweeper below) go to `url`: task_send opens a fresh
    connection from the configured broker URL each time."""
    original = celery.conf.broker_url
    celery.conf.broker_url = url
    try:
        yield
    finally:
        celery.conf.broker_url = original


@pytest.fixture
def stack(own_redis, celery_worker_env):
    """Web server + worker whose broker (and locks) are our own Redis; yields the server's URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**celery_worker_env, "REDIS_URL": own_redis.url, "PUBLIC_URL": url}
    log = open(ROOT / ".pytest_cache" / f"runserver-{os.getpid()}.log", "a")  # noqa: SIM115 - the server's lifetime
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = OwnBrokerWorker(env, own_redis.url)
    try:
        _wait_http(f"{url}/health/", proc=web)
        worker.start()
        yield url
    finally:
        worker.stop()
        web.terminate()
        web.wait(timeout=10)
        log.close()


@pytest.mark.exact_delivery  # counts deliveries and inbox rows one by one
def test_with_redis_down_events_are_stored_and_processed_once_it_is_back(sandbox, app_url, own_redis, stack, b24):
    installed = sandbox.bitrix24_install(
        app_url=f"{stack}/bitrix24/app/",
        install_url=f"{stack}/bitrix24/install/",
        event_url=f"{stack}/bitrix24/events/",
    )
    assert installed["install_status"] == 200, installed
    portal = Portal.objects.get(member_id=installed["member_id"])
    connection = sandbox_connect_xero(portal=portal)
    setup_done(portal)
    subscribed = requests.post(
        f"{sandbox.base_url}/_sandbox/xero/webhooks",
        json={"url": f"{stack}/xero/webhooks/", "key": WEBHOOK_KEY},
        timeout=60,
    ).json()
    assert subscribed["status"] == "OK", subscribed

    own_redis.stop()

    invoice_id = b24.create_invoice("Ordered during the outage")
    xero_invoice_id = create_xero_invoice(sandbox, connection.tenant_id)
    started = time.monotonic()
    direct = xero_post(
        f"{stack}/xero/webhooks/", xero_body([xero_event(connection.tenant_id, "b0b0b0b0-1111-4000-8000-000000000002")])
    )
    assert direct.status_code == 200 and time.monotonic() - started < 2.0
    wait_for(
        lambda: (
            InboxEvent.objects.filter(payload__id=invoice_id).exists()
            and InboxEvent.objects.filter(payload__resourceId=xero_invoice_id).exists()
        ),
        what="the Bitrix24 event and the Xero webhook to be stored",
    )
    deliveries = sandbox.state()["bitrix24"]["app"]["deliveries"]
    assert {d["status"] for d in deliveries if d["event"].startswith("ONCRMDYNAMICITEM")} == {200}
    assert not InboxEvent.objects.exclude(status=InboxEvent.Status.RECEIVED).exists()  # nothing could be sent

    own_redis.start()
    # The sweeper picks up rows left `received` for 30 s; let that time have passed.
    InboxEvent.objects.update(received_at=timezone.now() - timedelta(minutes=1))
    with sending_to(own_redis.url):
        assert sweep_stuck_task()["inbox"] == InboxEvent.objects.count()

    unfinished = [InboxEvent.Status.RECEIVED, InboxEvent.Status.PROCESSING]
    wait_for(
        lambda: not InboxEvent.objects.filter(status__in=unfinished).exists(),
        timeout=20,
        what="every stored event to be processed",
    )
    # Xero's CONTACT.CREATE for the new customer is processed as ignored; the invoice events are done.
    assert set(InboxEvent.objects.values_list("status", flat=True)) <= {"done", "ignored"}
    assert InboxEvent.objects.get(payload__id=invoice_id, event_type="ONCRMDYNAMICITEMADD").status == "done"
    assert InboxEvent.objects.get(payload__resourceId=xero_invoice_id).status == "done"
    assert SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, target=f"31:{invoice_id}").exists()
    assert SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PULL_STATUS, target=xero_invoice_id).exists()
