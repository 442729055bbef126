"""Shared fixtures of the sync tests: a portal with Xero connected, a worker, invoices made by a user.

Everything runs for real: our live server (pytest-django's live_server) is installed into the
sandbox's Bitrix24 portal and connected to the sandbox's Xero organisation through the same HTTP
flows a real portal and a real Xero login use. Nothing of ours is mocked.

Fixtures (all function-scoped; the sandbox is reset for each test):

- `app_url`      our live server's URL, also set as PUBLIC_URL (Bitrix24 events go to
                 <app_url>/bitrix24/events/, Xero webhooks to <app_url>/xero/webhooks/). Sets the
                 Xero and Bitrix24 OAuth clients and XERO_WEBHOOK_KEY (= WEBHOOK_KEY) for this process.
- `acme`         the installed Portal (invoice events bound to our live server).
- `acme_xero`    acme's active XeroConnection to the sandbox's default organisation (OAuth code flow).
- `sales_rep`    a sandbox Bitrix24 user (not an admin, sees all invoices): {"id", "access_token", ...}.
- `b24`          a `Bitrix24Sandbox` helper bound to `sales_rep`: .create_invoice(...), .update_invoice(...),
                 .call(method, params) — REST calls made as that user, so Bitrix24 sends the events.
- `worker`       a real Celery worker process (tests/conftest.py WorkerProcess) on the test database,
                 with the same Xero/Bitrix24 settings as the live server. Use it with `acme_xero`.
- `celery_worker_env` that worker's environment, for other subprocesses (runserver, `celery call`).
- `lone_portal`  a Portal + active XeroConnection row, no sandbox: for job-machinery tests.

Helpers (import them from tests.sync.conftest):

- `wait_for(predicate, timeout=15)` polls until predicate() is truthy (returns it) or fails the test.
- `xero_post(url, body, key=WEBHOOK_KEY)` POSTs a body signed like Xero does; `xero_event(...)`
  builds one event dict of Xero's payload, `xero_body(events)` the whole body.
- `queued_tasks()` the task messages waiting in the Redis broker (to count dispatches).

Tests that use live_server or worker see committed data only (transactional_db).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

import celery_app  # noqa: F401 - binds shared tasks (the worker's ping) to the connector app here too
from accounts.models import Portal, XeroConnection
from accounts.services.sandbox import sandbox_connect_xero
from integrations.xero.webhooks import xero_signature
from tests.conftest import WorkerProcess, _worker_env

WEBHOOK_KEY = "sync-tests-webhook-key"
# OAuth clients of both apps (the sandbox accepts any; Bitrix24's pins the first one it sees).
OAUTH_CLIENTS = {
    "XERO_CLIENT_ID": "sandbox-client",
    "XERO_CLIENT_SECRET": "sandbox-secret",
    "BITRIX24_CLIENT_ID": "local.sync-tests",
    "BITRIX24_CLIENT_SECRET": "sync-tests-secret",
}


def setup_done(portal: Portal) -> None:
    """As if an admin had saved Setup: automatic sync runs (before it, events are held)."""
    from sync.models import SyncSettings

    SyncSettings.objects.update_or_create(portal=portal, defaults={"setup_completed": True})


# How the sandbox delivers Bitrix24 events and Xero webhooks in the sync tests, unless a test is
# marked `exact_delivery`: a little late, each twice, and out of order, as neither service promises
# better (sandbox/core.py DELIVERY_DEFAULTS).
REALISTIC_DELIVERY = {"delay_s": 0.05, "duplicates": 1, "reorder": True}


@pytest.fixture
def app_url(live_server, settings, sandbox, request) -> str:
    settings.PUBLIC_URL = live_server.url
    settings.SANDBOX_URL = sandbox.base_url
    settings.XERO_WEBHOOK_KEY = WEBHOOK_KEY
    for name, value in OAUTH_CLIENTS.items():
        setattr(settings, name, value)
    # The portal's app must be the client we refresh its tokens as (it pins one at first use).
    pinned = {
        "client_id": OAUTH_CLIENTS["BITRIX24_CLIENT_ID"],
        "client_secret": OAUTH_CLIENTS["BITRIX24_CLIENT_SECRET"],
    }
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json=pinned, timeout=10).raise_for_status()
    if request.node.get_closest_marker("exact_delivery") is None:
        requests.post(f"{sandbox.base_url}/_sandbox/delivery", json=REALISTIC_DELIVERY, timeout=10).raise_for_status()
    return live_server.url


@pytest.fixture
def acme(sandbox, app_url) -> Portal:
    installed = sandbox.bitrix24_install(
        app_url=f"{app_url}/bitrix24/app/",
        install_url=f"{app_url}/bitrix24/install/",
        event_url=f"{app_url}/bitrix24/events/",
    )
    assert installed["install_status"] == 200, installed
    return Portal.objects.get(member_id=installed["member_id"])


@pytest.fixture
def acme_xero(acme) -> XeroConnection:
    connection = sandbox_connect_xero(portal=acme)
    assert connection.is_active
    setup_done(acme)
    return connection


@pytest.fixture
def sales_rep(sandbox) -> dict:
    return sandbox.bitrix24_user("Rita Sales", admin=False, invoices="all")


@dataclass
class Bitrix24Sandbox:
    """REST calls to the sandbox portal as one user; the changes fire events like a person's would."""

    sandbox: Any
    user: dict

    def call(self, method: str, params: dict | None = None) -> Any:
        answer = self.sandbox.bitrix24_rest(method, params or {}, auth=self.user["access_token"])
        assert "error" not in answer, answer
        return answer["result"]

    def create_invoice(
        self, title: str = "Spring order", rows: list[tuple[str, str, int]] | None = None, currency: str = "NZD"
    ) -> int:
        """A new invoice (entity type 31) with product rows (name, price, quantity); its id."""
        item = self.call("crm.item.add", {"entityTypeId": 31, "fields": {"title": title, "currencyId": currency}})
        invoice_id = int(item["item"]["id"])
        rows = rows if rows is not None else [("Merino socks", "24.90", 4), ("Rain jacket", "189.00", 1)]
        self.call(
            "crm.item.productrow.set",
            {
                "ownerType": "SI",
                "ownerId": invoice_id,
                "productRows": [{"productName": n, "price": p, "quantity": q} for n, p, q in rows],
            },
        )
        return invoice_id

    def update_invoice(self, invoice_id: int, **fields: Any) -> None:
        self.call("crm.item.update", {"entityTypeId": 31, "id": invoice_id, "fields": fields})


@pytest.fixture
def b24(sandbox, sales_rep) -> Bitrix24Sandbox:
    return Bitrix24Sandbox(sandbox, sales_rep)


@pytest.fixture
def worker(celery_worker_env) -> WorkerProcess:
    process = WorkerProcess(celery_worker_env)
    try:
        process.start()  # inside the try: a worker that never became ready is stopped too
        yield process
    finally:
        process.stop()


@pytest.fixture
def celery_worker_env(transactional_db, sandbox, app_url) -> dict[str, str]:
    """The environment of a worker (or any subprocess) that must behave like our live server."""
    return {**_worker_env(), **OAUTH_CLIENTS, "XERO_WEBHOOK_KEY": WEBHOOK_KEY, "PUBLIC_URL": app_url}


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def xero_event(
    tenant_id: str, resource_id: str | None = None, *, category: str = "INVOICE", event_type: str = "UPDATE"
) -> dict:
    resource_id = resource_id or str(uuid.uuid4())
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "eventType": event_type,
        "eventCategory": category,
        "tenantId": tenant_id,
        "tenantType": "ORGANISATION",
    }


def xero_body(events: list[dict], first: int = 1) -> bytes:
    last = first + len(events) - 1 if events else first  # Intent to Receive probes send 0 and 0
    body = {"events": events, "firstEventSequence": first, "lastEventSequence": last}
    return json.dumps(body | {"entropy": "SYNCTESTS"}, separators=(",", ":")).encode()


def xero_post(url: str, body: bytes, *, key: str = WEBHOOK_KEY, signature: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is None:
        signature = xero_signature(key, body)
    if signature:
        headers["x-xero-signature"] = signature
    return requests.post(url, data=body, headers=headers, timeout=10)


def queued_tasks(queue: str = "connector") -> list[dict]:
    """The task messages waiting in the Redis broker (no worker running): each message's headers
    (`task`, `argsrepr`, `eta`, ...). How tests count what was dispatched without mocking Celery."""
    from connector.coordination import redis_client

    return [json.loads(raw)["headers"] for raw in redis_client().lrange(queue, 0, -1)]


@pytest.fixture
def lone_portal(transactional_db) -> Portal:
    """A Portal row with an active Xero connection row, for tests of the job machinery that never
    call either API (no sandbox, no HTTP)."""
    from tests.factories import ready_portal

    return ready_portal(domain="lone.bitrix24.com")
