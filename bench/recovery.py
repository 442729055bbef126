"""Recovery after `kill -9` of a worker in the middle of a push (issue 9), over BENCH_RECOVERY_RUNS (10).

The whole connector runs as in production (bench/_harness.py Stack: web server, Celery worker,
sandbox). The bench plays Celery beat's sweeper itself: it calls `jobs_requeue_stuck` every
CELERY_BEAT_SCHEDULE["sweep-stuck"] seconds, as beat would, and runs nothing else of the engine.

Each run: BENCH_RECOVERY_INVOICES (20) new invoices of 5 companies are pushed with the button's
path; the sandbox holds Xero's next POST /Invoices for 3 s, so the worker is killed (SIGKILL to its
whole process group, as the OOM killer would) with a create in flight and its jobs `running`. A new
worker is started at once. Measured: from the restart to the moment every invoice of the run is in
Xero (linked) and every job is finished. Checked: 0 duplicates (each Bitrix24 invoice is exactly one
Xero invoice), no job failed.

What the recovery waits for: the killed pass's heartbeat key to expire (ALIVE_TTL_S, 15 s) and its
per-invoice locks (20 s), then the next sweep. Target: every run within 60 s.
The bench exits non-zero when a run misses the target, leaves a duplicate, or a job failed.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import requests

from bench._harness import Bitrix24User, Stack, env_int, median, push_click, table, verdict

TARGET_S = 60.0
GIVE_UP_S = 150.0


def run() -> dict:
    from django.conf import settings

    runs = env_int("BENCH_RECOVERY_RUNS", 10)
    count = env_int("BENCH_RECOVERY_INVOICES", 20)
    sweep_s = float(settings.CELERY_BEAT_SCHEDULE["sweep-stuck"]["schedule"])
    times: list[float] = []
    problems: list[str] = []
    with Stack() as stack:
        portal = stack.setup(xero_webhooks=False)
        rep = Bitrix24User(stack, stack.user("Rita Sales", admin=True))
        for n in range(runs):
            company_ids = rep.companies(5, prefix=f"Recovery {n} Customer")
            ids = rep.invoices([company_ids[i % 5] for i in range(count)], lines=2, seed=n)
            took, trouble = _one_run(stack, portal, rep, ids, sweep_s)
            times.append(took)
            problems += [f"run {n + 1}: {t}" for t in trouble]
            print(f"   run {n + 1}: {took:.1f} s{' — ' + '; '.join(trouble) if trouble else ''}", flush=True)
    worst = max(times)
    table(
        [
            (
                "recovery after kill -9, median",
                f"{median(times):.1f} s",
                f"{TARGET_S:.0f} s",
                "",
                verdict(median(times) <= TARGET_S),
            ),
            ("recovery after kill -9, worst", f"{worst:.1f} s", f"{TARGET_S:.0f} s", "", verdict(worst <= TARGET_S)),
            ("duplicates / failed jobs", len(problems), 0, "", verdict(not problems)),
        ]
    )
    for line in problems:
        print(f"   {line}", flush=True)
    if worst > TARGET_S or problems:
        sys.exit(1)
    return {"median_s": median(times), "worst_s": worst, "runs": runs}


def _one_run(stack: Stack, portal, rep: Bitrix24User, ids: list[int], sweep_s: float) -> tuple[float, list[str]]:
    from sync.models import InvoiceLink, SyncJob
    from sync.services.jobs import jobs_requeue_stuck

    requests.post(
        f"{stack.sandbox_url}/_sandbox/faults",
        json={"system": "xero", "match": "POST /Invoices", "delay_s": 3, "times": 1},
        timeout=10,
    ).raise_for_status()
    push_click(portal, ids, rep.id)
    deadline = time.monotonic() + 60
    while (
        not SyncJob.objects.filter(
            portal=portal, target__in=[f"31:{i}" for i in ids], status=SyncJob.Status.RUNNING
        ).exists()
        or not InvoiceLink.objects.filter(portal=portal, bitrix24_id__in=ids, xero_invoice_id__isnull=True).exists()
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("the push never got a create in flight")
        time.sleep(0.05)
    time.sleep(0.5)  # inside the held POST
    os.killpg(stack.worker_pid, signal.SIGKILL)
    stack.procs.pop("worker").wait(timeout=10)
    restarted = time.monotonic()
    stack.start_worker()
    next_sweep = time.monotonic()  # beat's phase is arbitrary: sweep now, then every sweep_s
    targets = [f"31:{i}" for i in ids]
    while True:
        if time.monotonic() >= next_sweep:
            jobs_requeue_stuck()
            next_sweep += sweep_s
        linked = InvoiceLink.objects.filter(portal=portal, bitrix24_id__in=ids, xero_invoice_id__isnull=False).count()
        open_jobs = SyncJob.objects.filter(
            portal=portal, target__in=targets, status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING]
        ).exists()
        if linked == len(ids) and not open_jobs:
            took = time.monotonic() - restarted
            break
        if time.monotonic() - restarted > GIVE_UP_S:
            took = time.monotonic() - restarted
            return took, [f"not recovered after {GIVE_UP_S:.0f} s ({linked}/{len(ids)} linked)"]
        time.sleep(0.1)
    trouble = []
    tenant = portal.xero_connection.tenant_id
    state = requests.get(f"{stack.sandbox_url}/_sandbox/state", timeout=60).json()
    org = next(o for o in state["xero"]["organisations"] if o["tenant_id"] == tenant)
    numbers = [inv["InvoiceNumber"] for inv in org["invoices"] if inv["InvoiceNumber"] in {f"INV-{i}" for i in ids}]
    if len(numbers) != len(ids) or len(set(numbers)) != len(numbers):
        trouble.append(f"{len(numbers)} Xero invoices for {len(ids)} Bitrix24 invoices")
    failed = SyncJob.objects.filter(portal=portal, target__in=targets, status=SyncJob.Status.FAILED).count()
    if failed:
        trouble.append(f"{failed} jobs failed")
    return took, trouble
