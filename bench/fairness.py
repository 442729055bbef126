"""Portals don't starve each other: one portal's backfill beside many portals' everyday changes.

The connector runs as in production (bench/_harness.py Stack: web server, one Celery worker pool
with --concurrency=2, the app's client throttle on) for BENCH_FAIRNESS_PORTALS (20) portals, each
with its own Xero organisation (tenant):

- portal 1 runs a backfill: BENCH_FAIRNESS_BACKFILL (10,000) invoices (BENCH_FAIRNESS_LINES, 2
  rows each, over 500 companies) made before the app was installed, so no events, then pushed by
  "Create / Edit on Xero" clicks (1,000 a click, the button's maximum), as a user starting a
  backfill does;
- portals 2..N each change one invoice (a new price on its rows), wait until the change is in Xero,
  then wait BENCH_FAIRNESS_GAP_S (3-7, uniformly drawn) seconds and change it again, until the
  backfill is done (or BENCH_FAIRNESS_MAX_S, 480, passed: the figures are of that window).

How N portals are hosted: the sandbox serves ONE Bitrix24 portal per process, and the connector
reaches the one SANDBOX_URL, so the N portals are N installs of the app on the same sandbox
portal: `sandbox_setup` installs it once; the bench then copies that install's rows (Portal with
its own member_id, XeroConnection to its own Xero organisation, the stage maps and settings) N-1
times. The sandbox's Xero does host many organisations: they are added before the OAuth consent,
which connects them all (as a Xero user ticking every organisation), so every copy's tokens reach
its own tenant. Each portal's change is sent to the app as the event Bitrix24 delivers (form-
encoded, member_id and application_token in `auth[...]`) by the bench, right after the REST write
that makes the change; the sandbox's own delivery (for the original member_id, which no install
keeps) is refused by the app. Every portal has its own throttle buckets (Bitrix24 per member_id,
Xero per tenant) in the app; the sandbox's own limits stay off (its Bitrix24 leaky bucket would be
one for all N portals, which no real deployment has) — the app's throttle keeps Xero's 60/min per
tenant, and the bench checks the backfill's tenant never got more than 60 in any rolling minute.

Measured: for each change, from the return of the REST write to the `finished` time of the first
invoice write (PUT/POST /Invoices, 200) to that portal's tenant logged by the sandbox after it (same
clock). The backfill's Xero call rate: its tenant's calls from the first click to its last invoice,
per minute, and the busiest rolling minute. Targets: the small portals' p95 < 3 s; the backfill
never over its tenant's limit in any rolling minute (its rate is printed against the limit: at the
batching floor it is bound by the time its passes take, not by the limit, see run()).
"""

from __future__ import annotations

import math
import os
import random
import time
from urllib.parse import urlencode

import requests

from bench._harness import (
    Bitrix24User,
    CallWatcher,
    Stack,
    env_int,
    median,
    percentile,
    push_click,
    spread,
    table,
    verdict,
)
from bench.ingest import _event_template

TARGET_P95_S = 3.0
MINUTE_LIMIT = 60


def run() -> dict:
    portals = env_int("BENCH_FAIRNESS_PORTALS", 20)
    backfill = env_int("BENCH_FAIRNESS_BACKFILL", 10_000)
    lines = env_int("BENCH_FAIRNESS_LINES", 2)
    max_s = env_int("BENCH_FAIRNESS_MAX_S", 480)
    gap = tuple(float(v) for v in os.environ.get("BENCH_FAIRNESS_GAP_S", "3-7").split("-"))
    rng = random.Random(14)
    # Latency on a shared machine says as much about the machine as about the scheduling: the load
    # average at the start and the end is part of the figures.
    load_start = os.getloadavg()[0]

    with Stack() as stack:
        for n in range(2, portals + 1):
            requests.post(
                f"{stack.sandbox_url}/_sandbox/xero/organisations", json={"name": f"Small Org {n}"}, timeout=10
            ).raise_for_status()
        clerk = Bitrix24User(stack, stack.user("Backfill Clerk"))
        made = time.monotonic()
        company_ids = clerk.companies(min(500, backfill), prefix="Backfill Customer")
        big_ids = clerk.invoices(spread(company_ids, backfill), lines=lines, seed=5)
        small_company = clerk.companies(1, prefix="Small Customer")[0]
        small_ids = [clerk.invoice(small_company, lines=1, title=f"Small order {n}") for n in range(2, portals + 1)]
        print(f"   made {backfill} backfill invoices before install in {time.monotonic() - made:.0f} s", flush=True)

        big = stack.setup(xero_webhooks=False)
        form = _event_template(stack)
        installs = _copies(big, portals)  # [(portal, tenant_id)], the backfill's first
        event_auth = {k: v for k, v in form[2:]}
        admin_id = int(stack.user("Backfill Admin")["id"])

        mark = stack.last_call_id()
        started = time.time()
        push_click(installs[0][0], big_ids, admin_id)
        print(f"   clicked: {backfill} invoices of portal 1 queued", flush=True)

        # Small portals: state per portal = (invoice, next change at, change made at or None).
        state = {
            tenant: {"portal": portal, "invoice": small_ids[n], "next": time.time() + rng.uniform(*gap), "at": None}
            for n, (portal, tenant) in enumerate(installs[1:])
        }
        latencies: list[float] = []
        measured: list[tuple[object, float, float]] = []  # (portal, change made at, in Xero at)
        misses: list[tuple[object, float]] = []
        missed = 0
        watcher = CallWatcher(stack.calls_since, mark)
        big_tenant = installs[0][1]
        big_done_at = None
        price = 100
        while time.time() - started < max_s:
            now = time.time()
            for s in state.values():
                if s["at"] is None and now >= s["next"]:
                    price += 1
                    clerk.call(
                        "crm.item.productrow.set",
                        {
                            "ownerType": "SI",
                            "ownerId": s["invoice"],
                            "productRows": [{"productName": "Service", "price": f"{price}.00", "quantity": 1}],
                        },
                    )
                    s["at"] = time.time()
                    _send_event(stack, form, event_auth, s["portal"].member_id, s["invoice"])
                elif s["at"] is not None and now - s["at"] > 60:
                    missed += 1  # counted as infinitely late; start again
                    misses.append((s["portal"], s["at"]))
                    s["at"], s["next"] = None, now + rng.uniform(*gap)
            for call in watcher.finished():
                if call["system"] != "xero" or call["target"] != "/Invoices" or call["method"] not in ("PUT", "POST"):
                    continue
                s = state.get(call["key"])
                landed = s is not None and s["at"] is not None and (call["status"] or 0) == 200
                if landed and call["finished"] and call["finished"] > s["at"]:
                    latencies.append(call["finished"] - s["at"])
                    measured.append((s["portal"], s["at"], call["finished"]))
                    s["at"], s["next"] = None, time.time() + rng.uniform(*gap)
            if big_done_at is None and _all_pushed(installs[0][0], backfill):
                big_done_at = time.time()
                break
            time.sleep(0.1)
        calls = stack.calls_since(mark)
        big_calls = [c for c in calls if c["system"] == "xero" and c["key"] == big_tenant]
        small_xero = sum(1 for c in calls if c["system"] == "xero" and c["key"] != big_tenant)
        jobs = _job_counts(installs[0][0])
        failed_jobs = _failed_jobs()
        parts = _latency_parts(stack, measured)
        for portal, at in misses:
            _explain_miss(portal, at)

    every = latencies + [math.inf] * missed
    p50 = median(every) if every else math.inf
    p95 = percentile(every, 95) if every else math.inf
    span = ((big_done_at or time.time()) - started) / 60
    rate = len(big_calls) / span if span else 0
    busiest = _busiest_minute([c["started"] for c in big_calls])
    # The backfill may use its tenant's whole minute budget, never more. Whether it reaches it
    # depends on what it has to send: at the batching floor (50 invoices a write) 10,000 invoices
    # are ~210 calls, and on 2 shared cores a 1,000-invoice pass takes longer to read and map than
    # its ~22 calls take at 60/min, so the rate is printed, and only "never over" is a verdict.
    at_limit = busiest <= MINUTE_LIMIT
    rows = [
        ("small portals: p50 change -> Xero (s)", f"{p50:.2f}", "-", "-", "-"),
        (
            "small portals: p95 change -> Xero (s)",
            f"{p95:.2f}",
            f"< {TARGET_P95_S:g}",
            f"{p95 / TARGET_P95_S:.2f}x",
            verdict(p95 < TARGET_P95_S),
        ),
        (
            "backfill: Xero calls / min",
            f"{rate:.1f}",
            f"{MINUTE_LIMIT} (its tenant's limit)",
            f"{rate / MINUTE_LIMIT:.2f}x",
            "-",
        ),
        ("backfill: busiest rolling minute", busiest, f"{MINUTE_LIMIT}, never over", "-", verdict(at_limit)),
        ("changes not in Xero within 60 s", missed, "0", "-", verdict(not missed)),
        ("failed push jobs", failed_jobs, "0", "-", verdict(not failed_jobs)),
        (
            "backfill done (min)",
            f"{span:.1f}" if big_done_at else f"not in {max_s} s",
            "-",
            "-",
            "-",
        ),
    ]
    table(rows)
    print(
        f"   {portals} portals on one worker pool (concurrency 2); {len(latencies)} changes measured, "
        f"{missed} not in Xero within 60 s; gap {gap[0]:g}-{gap[1]:g} s per portal"
    )
    print(f"   backfill: {backfill} invoices x {lines} rows, {len(big_calls)} Xero calls; jobs {jobs}")
    print(f"   small portals' Xero calls: {small_xero}")
    for name, values in parts.items():
        if values:
            print(
                f"   latency part {name}: p50 {percentile(values, 50):.2f} p95 {percentile(values, 95):.2f} "
                f"max {max(values):.2f} s (of {len(values)} changes)"
            )
    print(f"   worker log: {stack.logs}; failed push jobs: {failed_jobs}")
    if latencies:
        ordered = sorted(latencies)
        print(f"   latencies, deciles: {' '.join(f'{percentile(ordered, q):.2f}' for q in range(10, 101, 10))}")
    # Issue 17: a bench fails when any job failed, and a change that never reached Xero is a failure too.
    ok = p95 < TARGET_P95_S and at_limit and not missed and not failed_jobs and big_done_at is not None
    return {
        "p50_s": round(p50, 3),
        "p95_s": round(p95, 3),
        "missed": missed,
        "failed_jobs": failed_jobs,
        "backfill_calls_per_min": round(rate, 1),
        "busiest_minute": busiest,
        "load_avg_1min": f"{load_start:.1f} -> {os.getloadavg()[0]:.1f}",
        "ok": ok,
    }


def _copies(big, count: int) -> list[tuple[object, str]]:
    """The install of the sandbox portal copied count-1 times, each to its own Xero organisation.
    -> [(portal, tenant_id)], the original first (renamed too: the sandbox's own event deliveries,
    for its member_id, then reach no install and are refused)."""
    from accounts.models import Portal, XeroConnection
    from sync.models import StageMapping, SyncSettings, XeroStatusMapping

    orgs = [o["tenant_id"] for o in requests.get(_sandbox_url() + "/_sandbox/xero/organisations", timeout=10).json()]
    connection = XeroConnection.objects.get(portal=big)
    others = [t for t in orgs if t != connection.tenant_id][: count - 1]
    original_member = big.member_id
    big.member_id = f"{original_member}-1"
    big.save(update_fields=["member_id"])
    out = [(big, connection.tenant_id)]
    stages = list(StageMapping.objects.filter(portal=big))
    statuses = list(XeroStatusMapping.objects.filter(portal=big))
    settings_row = SyncSettings.objects.get(portal=big)
    for n, tenant in enumerate(others, start=2):
        portal = Portal.objects.get(pk=big.pk)
        portal.pk, portal.id = None, None
        portal.member_id = f"{original_member}-{n}"
        portal.save()
        copy = XeroConnection.objects.get(pk=connection.pk)
        copy.pk, copy.id = None, None
        copy.portal, copy.tenant_id, copy.tenant_name = portal, tenant, f"Small Org {n}"
        copy.connection_id = f"{connection.connection_id}-{n}"
        copy.save()
        for row in [*stages, *statuses, settings_row]:
            row.pk, row.id = None, None
            row.portal = portal
            row.save()
        out.append((portal, tenant))
    return out


def _sandbox_url() -> str:
    from django.conf import settings

    return settings.SANDBOX_URL


def _send_event(stack: Stack, form, auth: dict[str, str], member_id: str, invoice_id: int) -> None:
    pairs = [
        *form[:2],
        ("data[FIELDS][ID]", str(invoice_id)),
        ("data[FIELDS][ENTITY_TYPE_ID]", "31"),
        ("ts", str(int(time.time()))),
        *[(k, member_id if k == "auth[member_id]" else v) for k, v in auth.items()],
    ]
    # The shared machine's PostgreSQL may refuse a connection now and then (too many clients): the
    # delivery is tried again, as the bench must get its change to the app to time it.
    for _ in range(10):
        response = requests.post(
            f"{stack.public_url}/bitrix24/events/",
            data=urlencode(pairs),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        if response.status_code < 300:
            return
        time.sleep(0.3)
    raise RuntimeError(f"event refused: {response.status_code} {response.text[:200]}")


def _all_pushed(portal, expected: int) -> bool:
    from sync.models import SyncJob

    jobs = SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE)
    return (
        not jobs.filter(status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING]).exists()
        and jobs.filter(status__in=[SyncJob.Status.DONE, SyncJob.Status.FAILED]).count() >= expected
    )


def _job_counts(portal) -> dict:
    from django.db.models import Count

    from sync.models import SyncJob

    rows = (
        SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE)
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {str(status): n for status, n in rows}


def _busiest_minute(times: list[float]) -> int:
    times = sorted(times)
    peak, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + 60:
            j += 1
        peak = max(peak, j - i)
    return peak


def _failed_jobs() -> int:
    from sync.models import SyncJob

    return SyncJob.objects.filter(kind=SyncJob.Kind.PUSH_INVOICE, status=SyncJob.Status.FAILED).count()


def _latency_parts(stack: Stack, measured: list[tuple[object, float, float]]) -> dict[str, list[float]]:
    """What each small portal's change->Xero time is made of, from the inbox row (web: the event
    stored; inbox: the job made), the push task that wrote it (its start, from the worker's log
    line `push of portal N: {... took_s}`): 'queue' is job made -> that task started (debounce
    wait and waiting for a free worker), 'work' is task start -> the write finished in Xero."""
    import json
    from datetime import datetime

    from sync.models import InboxEvent

    starts: dict[int, list[float]] = {}
    for line in (stack.logs / "worker.log").read_text(errors="replace").splitlines():
        if '"push of portal' not in line:
            continue
        try:
            record = json.loads(line)
            took = float(record["message"].rsplit("'took_s': ", 1)[1].rstrip("}"))
            portal_id = int(record["message"].split()[3].rstrip(":"))
        except (ValueError, KeyError, IndexError):
            continue
        end = datetime.fromisoformat(record["timestamp"]).timestamp()
        starts.setdefault(portal_id, []).append(end - took)
    parts: dict[str, list[float]] = {"web": [], "inbox": [], "queue": [], "work": []}
    for portal, at, landed in measured:
        row = (
            InboxEvent.objects.filter(portal=portal, received_at__gte=_aware(at - 1))
            .order_by("received_at")
            .values_list("received_at", "processed_at")
            .first()
        )
        if row is None or row[1] is None:
            continue
        received, processed = row[0].timestamp(), row[1].timestamp()
        began = max((t for t in starts.get(portal.pk, []) if processed - 0.05 <= t < landed), default=None)
        if began is None:
            continue
        parts["web"].append(received - at)
        parts["inbox"].append(processed - received)
        parts["queue"].append(began - processed)
        parts["work"].append(landed - began)
    return parts


def _aware(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)


def _explain_miss(portal, at: float) -> None:
    """Print what became of a change that was not in Xero within 60 s: its inbox row, the portal's
    push jobs and sync log entries since then."""
    from sync.models import InboxEvent, SyncJob, SyncLogEntry

    since = _aware(at - 1)
    print(f"   MISSED: portal {portal.pk} change at {_aware(at).isoformat()}", flush=True)
    for row in InboxEvent.objects.filter(portal=portal, received_at__gte=since).order_by("received_at")[:3]:
        print(f"     inbox {row.pk} {row.status} recv {row.received_at} done {row.processed_at} {row.error!r}")
    for job in SyncJob.objects.filter(portal=portal, updated_at__gte=since).order_by("created_at")[:5]:
        print(
            f"     job {job.pk} {job.status} att {job.attempts} created {job.created_at} "
            f"nb {job.not_before} upd {job.updated_at} holder {job.holder!r} {job.last_error[:200]!r}"
        )
    for entry in SyncLogEntry.objects.filter(portal=portal, created_at__gte=since).order_by("created_at")[:5]:
        print(f"     log {entry.created_at} {entry.outcome} {entry.message[:200]!r}")
