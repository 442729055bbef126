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

Every DUPLICATE_EVERY-th request re-sends an earlier delivery byte for byte (both services retry
and redeliver), so "stored once and processed" means: every distinct delivery answered 2xx has
exactly one inbox row (none lost, none twice), and every row is processed (done or ignored) by the
worker afterwards. Targets: >= 500 requests/s sustained, p99 < 100 ms, 0 lost, 0 stored twice.

The machine the benches run on is shared, so the rate is noisy; the CPU the run cost is not, or
much less: the CPU time of the gunicorn workers, the PostgreSQL backends of the bench's database,
the Celery worker (until every row is processed) and the load client itself, per request, and what
that implies on two otherwise idle cores (2 s of CPU a second over web + PostgreSQL + worker; the
client and the sandbox are not part of the service).
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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from bench._harness import WEBHOOK_KEY, Bitrix24User, Stack, env_int, free_port, percentile, table, verdict

TARGET_RPS = 500
TARGET_P99_MS = 100.0
CONNECTIONS = 64
DUPLICATE_EVERY = 20  # 5% of the requests redeliver an earlier delivery


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
        ours = _ours(requests_plan)
        print(f"   sending {len(requests_plan)} requests at {rate}/s to {base} (gunicorn)", flush=True)
        cpu = CpuMeter(stack)
        result = asyncio.run(_load(base, requests_plan, rate))
        cpu.client_done()
        stored = InboxEvent.objects.filter(ours, pk__gt=before).count()
        processed = _wait_processed(before_id=before)
        spent = cpu.spent()
        load = os.getloadavg()

    answers = result["answers"]
    ok = [lat for (status, lat), _ in zip(answers, requests_plan, strict=True) if _accepted(status)]
    delivered = {
        delivery for (status, _), (_, _, _, delivery) in zip(answers, requests_plan, strict=True) if _accepted(status)
    }
    refused = [status for status, _ in answers if not _accepted(status)]
    achieved = len(answers) / result["wall"]
    p50, p99 = percentile(ok, 50) * 1000, percentile(ok, 99) * 1000
    lost, twice = max(0, len(delivered) - stored), max(0, stored - len(delivered))
    per_request = {name: 1000 * value / len(answers) for name, value in spent.items()}
    service_ms = per_request["web"] + per_request["postgres"] + per_request["worker"]
    table(
        [
            ("requests/s achieved", f"{achieved:.0f}", f">= {TARGET_RPS}", "", verdict(achieved >= TARGET_RPS)),
            ("latency p50", f"{p50:.1f} ms", "", "", ""),
            ("latency p99", f"{p99:.1f} ms", f"< {TARGET_P99_MS:.0f} ms", "", verdict(p99 < TARGET_P99_MS)),
            ("non-2xx / errors", len(refused), "0", "", verdict(not refused)),
            ("2xx delivery without an inbox row", lost, "0", "", verdict(lost == 0)),
            ("delivery stored twice", twice, "0", "", verdict(twice == 0)),
            ("rows not processed", processed["open"], "0", "", verdict(processed["open"] == 0)),
        ]
    )
    print(
        f"   sent {len(answers)} ({len(answers) - len({d for *_, d in requests_plan})} redeliveries) in "
        f"{result['wall']:.1f} s; inbox rows stored {stored}; {processed}"
    )
    print(
        "   CPU per request: "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_request.items())
        + f"; service (web + postgres + worker) {service_ms:.2f} ms -> {2000 / service_ms:.0f} requests/s "
        f"on 2 idle cores; load average during the run {load[0]:.1f}"
    )
    return {
        "gunicorn": f"{os.environ.get('WEB_CONCURRENCY', '2')} workers x {os.environ.get('GUNICORN_THREADS', '8')} threads",
        "rps": round(achieved),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "errors": len(refused),
        "lost": lost,
        "stored_twice": twice,
        "unprocessed": processed["open"],
        "cpu_ms_per_request": {name: round(ms, 2) for name, ms in per_request.items()},
        "rps_on_2_idle_cores": round(2000 / service_ms),
        "load_average": round(load[0], 1),
        "ok": achieved >= TARGET_RPS
        and p99 < TARGET_P99_MS
        and not refused
        and lost == 0
        and twice == 0
        and not processed["open"],
    }


def _accepted(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


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


def _ours(plan) -> Any:
    """The inbox rows of the plan's deliveries, not of what the sandbox sends meanwhile (the push
    of the invoices raises events and webhooks of its own): the Bitrix24 events by their `ts`
    (hours before now, one a delivery) and the Xero webhooks by their body's SHA-256, which the
    inbox keeps."""
    from django.db.models import Q

    stamps = [int(parse_qs(body.decode())["ts"][0]) for path, body, _, _ in plan if path == "/bitrix24/events/"]
    shas = {hashlib.sha256(body).hexdigest() for path, body, _, _ in plan if path == "/xero/webhooks/"}
    return Q(source="bitrix24", payload__ts__gte=min(stamps), payload__ts__lte=max(stamps)) | Q(
        source="xero", headers__body_sha256__in=sorted(shas)
    )


def _plan(count: int, invoice_ids, xero_ids, event_form, tenant_id) -> list[tuple[str, bytes, dict[str, str], int]]:
    """(path, body, headers, delivery) per request, alternating a Bitrix24 event and a Xero webhook;
    every DUPLICATE_EVERY-th request is an earlier delivery again (same bytes, same delivery)."""
    base_ts = int(time.time()) - 10 * count  # distinct, plausible send times
    start = datetime.now(UTC) - timedelta(hours=1)
    plan: list[tuple[str, bytes, dict[str, str], int]] = []
    for n in range(count):
        if n % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
            plan.append(plan[n - DUPLICATE_EVERY // 2])  # a redelivery of a recent one, same kind
            continue
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
                (
                    "/bitrix24/events/",
                    urlencode(pairs).encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    n,
                )
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
            plan.append(
                ("/xero/webhooks/", body, {"Content-Type": "application/json", "x-xero-signature": signature}, n)
            )
    return plan


# --- the load ------------------------------------------------------------------------------------


async def _load(base: str, plan, rate: int) -> dict:
    parsed = urlparse(base)
    queue: asyncio.Queue = asyncio.Queue()
    # Each request's (status, latency), in the plan's order.
    answers: list[tuple[int | None, float]] = [(None, 0.0)] * len(plan)
    started = time.monotonic() + 0.2

    async def connection() -> None:
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            n, due, path, body, headers = item
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
            answers[n] = (status, time.monotonic() - due)

    workers = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    for n, (path, body, headers, _) in enumerate(plan):
        due = started + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await queue.put((n, due, path, body, headers))
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


# --- what the run cost ----------------------------------------------------------------------------

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, *, with_children: bool = False) -> float:
    """CPU seconds (user + system) of a process, and of its reaped children when asked (gunicorn
    recycles workers: a worker that exited during the run is counted through its master)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks * _TICK_S


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class CpuMeter:
    """CPU seconds spent from now on by the web server (gunicorn's master and workers), the Celery
    worker, the PostgreSQL backends serving the bench's database and this process (the client)."""

    def __init__(self, stack: Stack) -> None:
        self.roots = {"web": stack.procs["gunicorn"].pid, "worker": stack.procs["worker"].pid}
        self.start = {name: self._tree(pid) for name, pid in self.roots.items()}
        self.backends_start = self._backends()
        self.client_start = time.process_time()
        self.client = 0.0

    @staticmethod
    def _tree(pid: int) -> dict[int, float]:
        return {pid: _proc_cpu(pid, with_children=True)} | {child: _proc_cpu(child) for child in _children(pid)}

    @staticmethod
    def _backends() -> dict[int, float]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {pid: _proc_cpu(pid) for (pid,) in cursor.fetchall()}

    def client_done(self) -> None:
        self.client = time.process_time() - self.client_start

    def spent(self) -> dict[str, float]:
        out = {}
        for name, pid in self.roots.items():
            now, then = self._tree(pid), self.start[name]
            # A child that exited is in its master's reaped-children time, whole: less what it had
            # already spent before the run.
            out[name] = sum(cpu - then.get(p, 0.0) for p, cpu in now.items()) - sum(
                cpu for p, cpu in then.items() if p not in now
            )
        backends = self._backends()
        out["postgres"] = sum(cpu - self.backends_start.get(pid, 0.0) for pid, cpu in backends.items())
        out["client"] = self.client
        return out


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
