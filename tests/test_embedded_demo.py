"""`make run EMBEDDED=1` end to end: the demo on SQLite and the filesystem broker (no PostgreSQL, no
Redis), in its own processes, exactly as a newcomer starts it. An invoice goes to Xero by itself, is
approved in Bitrix24, paid in Xero, and the payment comes back as Bitrix24's Paid stage; the
multiprocess metrics of the web server and the worker add up on /metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bench._forms import setup_accept_as_proposed
from sandbox.client import SandboxClient
from tests.test_operations import sample

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

SENT, PAID = "DT31_3:S", "DT31_3:P"
METRICS_TOKEN = "embedded-demo-metrics"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the demo exited with {proc.returncode} while waiting for {what}:\n{log.read_text()[-3000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; demo log:\n{log.read_text()[-3000:]}")


@pytest.fixture
def demo(tmp_path):
    """The demo running embedded in tmp_path; yields (sandbox URL, web URL, process, log path)."""
    web_port, sandbox_port = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SANDBOX_URL", "PUBLIC_URL", "DJANGO_SETTINGS_MODULE"}
    }
    (tmp_path / "prometheus").mkdir()
    env |= {
        "EMBEDDED": "1",
        "EMBEDDED_DIR": str(tmp_path / "run"),
        "WEB_PORT": str(web_port),
        "SANDBOX_PORT": str(sandbox_port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "METRICS_TOKEN": METRICS_TOKEN,
        "XERO_WEBHOOK_KEY": "embedded-demo-webhook-key",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "scripts/run_demo.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait(lambda: "The connector is running." in log.read_text(), 120, "the demo to start", proc, log)
        yield f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{web_port}", proc, log
    finally:
        # run_demo stops everything it started on SIGTERM (as on Ctrl-C).
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_the_embedded_demo_pushes_an_invoice_to_xero_and_brings_its_payment_back(demo):
    sandbox_url, web_url, proc, log = demo
    text = log.read_text()
    assert "SQLite" in text and "filesystem broker" in text, text[:500]
    sandbox = SandboxClient(sandbox_url)
    admin_token = sandbox.bitrix24_frame(1)["form"]["AUTH_ID"]

    def rest(method: str, params: dict) -> dict:
        answer = sandbox.bitrix24_rest(method, params, auth=admin_token)
        assert "error" not in answer, answer
        return answer["result"]

    def xero_invoices() -> list[dict]:
        return sandbox.state()["xero"]["organisations"][0]["invoices"]

    def wait(predicate, what: str, timeout: float = 40):
        return _wait(predicate, timeout, what, proc, log)

    # The first day: the admin saves Setup as proposed; nothing is pushed automatically before.
    setup_accept_as_proposed(sandbox_url, web_url)

    # A new invoice, saved the way a user saves the form: it reaches Xero by itself (event -> inbox
    # -> job -> worker, every step through SQLite and the filesystem broker).
    company = rest("crm.company.list", {"select": ["ID"]})[0]["ID"]
    invoice_id = int(
        rest("crm.item.add", {"entityTypeId": 31, "fields": {"title": "Embedded order", "companyId": company}})["item"][
            "id"
        ]
    )
    rest(
        "crm.item.productrow.set",
        {
            "ownerType": "SI",
            "ownerId": invoice_id,
            "productRows": [{"productName": "Tent", "price": 250, "quantity": 2}],
        },
    )
    rest("crm.item.update", {"entityTypeId": 31, "id": invoice_id, "fields": {"title": "Embedded order (final)"}})
    pushed = wait(
        lambda: next((i for i in xero_invoices() if i.get("Reference") == "Embedded order (final)"), None),
        "the invoice in Xero",
    )
    assert pushed["Status"] == "DRAFT" and float(pushed["Total"]) > 0

    # Approved in Bitrix24 -> AUTHORISED in Xero; paid in Xero -> the webhook brings Paid back.
    rest("crm.item.update", {"entityTypeId": 31, "id": invoice_id, "fields": {"stageId": SENT}})
    wait(
        lambda: next(
            (i for i in xero_invoices() if i["InvoiceID"] == pushed["InvoiceID"] and i["Status"] == "AUTHORISED"), None
        ),
        "the invoice authorised in Xero",
    )
    sandbox.xero_pay(pushed["InvoiceID"])
    wait(
        lambda: rest("crm.item.get", {"entityTypeId": 31, "id": invoice_id})["item"]["stageId"] == PAID,
        "the payment back in Bitrix24",
    )

    # The web server's and the worker's counters, added up by prometheus-client's multiprocess mode.
    metrics = requests.get(f"{web_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert metrics.status_code == 200
    assert sample(metrics.text, "connector_inbound_requests_total", source="xero", outcome="accepted") >= 1
    assert sample(metrics.text, "connector_sync_outcomes_total", direction="push", outcome="created") >= 1
    assert sample(metrics.text, "connector_api_calls_total", system="xero") >= 1
    ready = requests.get(f"{web_url}/ready/", timeout=10).json()
    assert ready == {"status": "ok", "database": "ok", "migrations": "ok", "redis": "not used"}
    assert "Traceback" not in log.read_text()
