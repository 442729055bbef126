"""Ingest rate: how many Bitrix24 events and Xero webhooks a second the app stores, under gunicorn.

The production shape on this machine: gunicorn with `gunicorn.conf.py` (WEB_CONCURRENCY workers x
GUNICORN_THREADS threads), PostgreSQL, Redis and a Celery worker (bench/_harness.py Stack); the sandbox is
installed and connected as the demo does it, and BENCH_INGEST_INVOICES (20) invoices are made and
pushed first, so the events below name real invoices and their processing is real work.

Load: an open-loop asyncio client (no third-party load tool: a few dozen lines of asyncio streams
on keep-alive HTTP/1.1 connections) sends BENCH_INGEST_RATE (600) requests a second for
BENCH_INGEST_SECONDS (10) seconds to 127.0.0.1 only, half of them Bitrix24 invoice events
(form-encoded exactly as the portal POSTs them: `event`, `event_handler_id`, `data[FIELDS][...]`,
`ts`, `auth[...]`) and half signed Xero webhooks (one event each, HMAC-SHA256 of the raw body).
Every request is scheduled at its own instant; latency is measured from that instant, so a server
that falls behind is charged for the queue it builds (no coordinated omission). Bounded: the run
stops after its count, and every request has a 10 s timeout.

Each delivery is distinct (its own `ts` / `eventDateUtc`), so "0 lost" means: every 2xx delivery
has its own inbox row, and every row is processed (done or ignored) by the worker afterwards.
Targets: >= 500 requests/s sustained, p99 < 100 ms, 0 lost.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from bench._harness import WEBHOOK_KEY, Bitrix24User, Stack, env_int, free_port, percentile, table, verdict

TARGET_RPS = 500
TARGET_P99_MS = 100.0
CONNECTIONS = 64


def run() -> dict:
    invoices = env_int("BENCH_INGEST_INVOICES", 20)
    rate = env_int("BENCH_INGEST_RATE", 600)
    seconds = env_int("BENCH_INGEST_SECONDS", 10)

    with Stack() as stack:
        portal = stack.setup(xero_webhooks=True)
        admin = Bitrix24User(stack, stack.user())
        company_ids = admin.companies(5, prefix="Ingest Customer")
        invoice_ids = [admin.invoice(company_ids[n % 5], lines=2, title=f"Ingest {n}") for n in range(invoices)]
        xero_ids = _wait_linked(portal, invoice_ids)
        base = _start_gunicorn(stack)
        event_form = _event_template(stack)
        tenant_id = portal.xero_connection.tenant_id

        from django.db.models import Max

        from sync.models import InboxEvent

        before = InboxEvent.objects.aggregate(top=Max("pk"))["top"] or 0
        requests_plan = _plan(rate * seconds, invoice_ids, xero_ids, event_form, tenant_id)
        print(f"   sending {len(requests_plan)} requests at {rate}/s to {base} (gunicorn)", flush=True)
        result = asyncio.run(_load(base, requests_plan, rate))
        stored = InboxEvent.objects.filter(pk__gt=before).count()
        processed = _wait_processed(before_id=before)

    ok = [lat for status, lat in result["answers"] if status is not None and 200 <= status < 300]
    refused = [status for status, _ in result["answers"] if status is None or status >= 300]
    achieved = len(result["answers"]) / result["wall"]
    p50, p99 = percentile(ok, 50) * 1000, percentile(ok, 99) * 1000
    lost = len(ok) - stored
    table(
        [
            ("requests/s achieved", f"{achieved:.0f}", f">= {TARGET_RPS}", "", verdict(achieved >= TARGET_RPS)),
            ("latency p50", f"{p50:.1f} ms", "", "", ""),
            ("latency p99", f"{p99:.1f} ms", f"< {TARGET_P99_MS:.0f} ms", "", verdict(p99 < TARGET_P99_MS)),
            ("non-2xx / errors", len(refused), "0", "", verdict(not refused)),
            ("2xx without an inbox row", lost, "0", "", verdict(lost == 0)),
            ("rows not processed", processed["open"], "0", "", verdict(processed["open"] == 0)),
        ]
    )
    print(f"   sent {len(result['answers'])} in {result['wall']:.1f} s; inbox rows stored {stored}; {processed}")
    return {
        "gunicorn": f"{os.environ.get('WEB_CONCURRENCY', '3')} workers x {os.environ.get('GUNICORN_THREADS', '4')} threads",
        "rps": round(achieved),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "errors": len(refused),
        "lost": lost,
        "unprocessed": processed["open"],
        "ok": achieved >= TARGET_RPS and p99 < TARGET_P99_MS and not refused and lost == 0 and not processed["open"],
    }


# --- set-up --------------------------------------------------------------------------------------


def _wait_linked(portal, invoice_ids: list[int], timeout: float = 600) -> list[str]:
    from sync.models import InvoiceLink

    deadline = time.monotonic() + timeout
    while True:
        ids = list(
            InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False).values_list(
                "xero_invoice_id", flat=True
            )
        )
        if len(ids) >= len(invoice_ids):
            return [str(i) for i in ids]
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ids)} of {len(invoice_ids)} invoices reached Xero in {timeout:.0f}s")
        time.sleep(0.5)


def _start_gunicorn(stack: Stack) -> str:
    port = free_port()
    # The production configuration (gunicorn.conf.py: WEB_CONCURRENCY workers x GUNICORN_THREADS).
    args = [
        "-m",
        "gunicorn",
        "--config",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "connector.wsgi:application",
    ]
    stack._start("gunicorn", *args)
    url = f"http://127.0.0.1:{port}"
    stack._wait(lambda: requests.get(f"{url}/health/", timeout=2).status_code < 500, "gunicorn")
    return url


def _event_template(stack: Stack) -> list[tuple[str, str]]:
    """The auth block of a real delivery, from what the sandbox portal gives the app's frame: the
    member_id, domain, endpoints and application token Bitrix24 puts into every event."""
    frame = requests.post(
        f"{stack.sandbox_url}/_sandbox/bitrix24/frame", json={"user": 1, "placement": "DEFAULT"}, timeout=10
    ).json()
    domain = parse_qs(urlparse(frame["url"]).query)["DOMAIN"][0]
    form = frame["form"]
    return [
        ("event", "ONCRMDYNAMICITEMUPDATE"),
        ("event_handler_id", "1"),
        ("auth[domain]", domain),
        ("auth[client_endpoint]", f"{stack.sandbox_url}/bitrix24/rest/"),
        ("auth[server_endpoint]", form["SERVER_ENDPOINT"]),
        ("auth[member_id]", form["member_id"]),
        ("auth[application_token]", form["APPLICATION_TOKEN"]),
    ]


def _plan(count: int, invoice_ids, xero_ids, event_form, tenant_id) -> list[tuple[str, bytes, dict[str, str]]]:
    """(path, body, headers) per request, alternating a Bitrix24 event and a Xero webhook."""
    base_ts = int(time.time()) - 10 * count  # distinct, plausible send times
    start = datetime.now(UTC) - timedelta(hours=1)
    plan = []
    for n in range(count):
        if n % 2 == 0:
            invoice = invoice_ids[(n // 2) % len(invoice_ids)]
            pairs = [
                *event_form[:2],
                ("data[FIELDS][ID]", str(invoice)),
                ("data[FIELDS][ENTITY_TYPE_ID]", "31"),
                ("ts", str(base_ts + n)),
                *event_form[2:],
            ]
            plan.append(
                ("/bitrix24/events/", urlencode(pairs).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
            )
        else:
            when = (start + timedelta(milliseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            body = json.dumps(
                {
                    "events": [
                        {
                            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{xero_ids[n % len(xero_ids)]}",
                            "resourceId": xero_ids[n % len(xero_ids)],
                            "eventDateUtc": when,
                            "eventType": "UPDATE",
                            "eventCategory": "INVOICE",
                            "tenantId": tenant_id,
                            "tenantType": "ORGANISATION",
                        }
                    ],
                    "firstEventSequence": n,
                    "lastEventSequence": n,
                    "entropy": uuid.uuid4().hex.upper()[:20],
                },
                separators=(",", ":"),
            ).encode()
            signature = base64.b64encode(hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha256).digest()).decode()
            plan.append(("/xero/webhooks/", body, {"Content-Type": "application/json", "x-xero-signature": signature}))
    return plan


# --- the load ------------------------------------------------------------------------------------


async def _load(base: str, plan, rate: int) -> dict:
    parsed = urlparse(base)
    queue: asyncio.Queue = asyncio.Queue()
    answers: list[tuple[int | None, float]] = []
    started = time.monotonic() + 0.2

    async def connection() -> None:
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            due, path, body, headers = item
            status = None
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
                head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n{head}Content-Length: {len(body)}\r\n"
                    f"Connection: keep-alive\r\n\r\n".encode()
                    + body
                )
                status, close = await asyncio.wait_for(_read_response(reader), timeout=10)
                if close:
                    writer.close()
                    reader = writer = None
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                status = None
                if writer is not None:
                    writer.close()
                reader = writer = None
            answers.append((status, time.monotonic() - due))

    workers = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    for n, (path, body, headers) in enumerate(plan):
        due = started + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await queue.put((due, path, body, headers))
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)
    return {"answers": answers, "wall": time.monotonic() - started}


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ValueError("connection closed")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


# --- afterwards ----------------------------------------------------------------------------------


def _wait_processed(before_id: int, timeout: float = 300) -> dict:
    from django.db.models import Count

    from sync.models import InboxEvent

    deadline = time.monotonic() + timeout
    while True:
        counts = dict(InboxEvent.objects.filter(pk__gt=before_id).values_list("status").annotate(n=Count("id")))
        still = counts.get("received", 0) + counts.get("processing", 0)
        if not still or time.monotonic() > deadline:
            return {"open": still, **{str(k): v for k, v in counts.items()}}
        time.sleep(0.5)
