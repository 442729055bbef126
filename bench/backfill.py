"""Peak memory of the worker while it pushes a 10,000-invoice backfill to Xero.

Makes BENCH_BACKFILL_INVOICES (10,000) invoices of 3 product rows for BENCH_BACKFILL_COMPANIES
(2,000) companies in the sandbox portal through REST (before the app is installed: no events),
installs and connects the app, then clicks "Create / Edit on Xero" 1,000 invoices at a time (the
button's maximum) until all are queued, and lets the real worker (celery, prefork, concurrency 2)
push them through push_invoices_task. Meanwhile every BENCH_SAMPLE_MS (200) ms the bench reads
VmRSS of every process of the worker's process group from /proc, and at the end VmHWM (the kernel's
peak RSS of each process over its life). Target: under 300 MB for the worker process that runs the
tasks (a pool child; the RSS includes pages shared with the parent after the fork).

Xero's minute and day limits are raised, both in the sandbox's counting (what it reports in
X-MinLimit-Remaining) and in the app's own throttle (XERO_MINUTE_LIMIT, XERO_DAILY_LIMIT), unless
BENCH_BACKFILL_THROTTLED=1: at 60 calls/min the ~250 Xero calls of the backfill take over four
minutes of waiting, during which a task holds the memory it holds anyway. The sandbox's limits
stay off, as after a reset. Xero webhooks are not pointed at the app (BENCH_XERO_WEBHOOKS=1 to
include the pull engine's echo reads in the same worker).
"""

from __future__ import annotations

import threading
import time

import requests

from bench._harness import (
    Bitrix24User,
    Stack,
    env_flag,
    env_int,
    memory_kb,
    process_group,
    push_click,
    spread,
    table,
    verdict,
    wait_push_jobs,
)

TARGET_MB = 300
UNLIMITED = 1_000_000


def run() -> dict:
    invoices = env_int("BENCH_BACKFILL_INVOICES", 10_000)
    companies = env_int("BENCH_BACKFILL_COMPANIES", 2_000)
    lines = env_int("BENCH_LINES", 3)
    sample_s = env_int("BENCH_SAMPLE_MS", 200) / 1000
    throttled = env_flag("BENCH_BACKFILL_THROTTLED", False)
    webhooks = env_flag("BENCH_XERO_WEBHOOKS", False)
    extra = {} if throttled else {"XERO_MINUTE_LIMIT": str(UNLIMITED), "XERO_DAILY_LIMIT": str(UNLIMITED)}

    with Stack(extra_env=extra) as stack:
        if not throttled:
            limits = {"minute": UNLIMITED, "day": UNLIMITED, "app_minute": UNLIMITED}
            requests.post(f"{stack.sandbox_url}/_sandbox/xero/limits", json=limits, timeout=10).raise_for_status()
        admin = Bitrix24User(stack, stack.user())
        started = time.monotonic()
        company_ids = admin.companies(companies)
        invoice_ids = admin.invoices(spread(company_ids, invoices), lines=lines)
        print(
            f"   made {invoices} invoices x {lines} rows for {companies} companies in {time.monotonic() - started:.1f} s"
        )
        portal = stack.setup(xero_webhooks=webhooks)
        main = stack.worker_pid
        sampler = _Sampler(main, sample_s)
        idle = sampler.sample()
        sampler.start()
        started = time.monotonic()
        try:
            push_click(portal, invoice_ids, requested_by=admin.id)
            jobs = wait_push_jobs(portal, invoices, timeout=900)
        finally:
            sampler.stop()
        wall = time.monotonic() - started
        hwm = {pid: memory_kb(pid).get("VmHWM", 0) for pid in process_group(main)}
        linked = _linked(portal)

    children_hwm = max((kb for pid, kb in hwm.items() if pid != main), default=0)
    children_seen = max((kb for pid, kb in sampler.peak_rss.items() if pid != main), default=0)
    child_peak_mb = max(children_hwm, children_seen) / 1024
    main_mb = max(hwm.get(main, 0), sampler.peak_rss.get(main, 0)) / 1024
    idle_child_mb = max((kb for pid, kb in idle.items() if pid != main), default=0) / 1024
    table(
        [
            (
                "peak RSS of a worker pool process (MB)",
                f"{child_peak_mb:.0f}",
                f"< {TARGET_MB}",
                f"{child_peak_mb / TARGET_MB:.2f}x",
                verdict(child_peak_mb < TARGET_MB),
            ),
            ("peak RSS of the worker's main process (MB)", f"{main_mb:.0f}", "-", "-", "-"),
            ("peak RSS of the whole worker, summed (MB)", f"{sampler.peak_total / 1024:.0f}", "-", "-", "-"),
        ]
    )
    print(f"   pool process RSS when idle, before the backfill: {idle_child_mb:.0f} MB")
    print(f"   worker processes seen: {len(sampler.peak_rss)} (pool children are not recycled unless they die)")
    print(f"   jobs: {jobs}; invoices linked to Xero: {linked}")
    print(f"   wall time click -> all jobs finished: {wall:.1f} s ({invoices / wall:.0f} invoices/s)")
    print(f"   Xero minute/day limits raised (sandbox counting and app throttle): {'no' if throttled else 'yes'}")
    print(f"   Xero webhooks pointed at the app: {'yes' if webhooks else 'no'}", flush=True)
    return {"child_peak_mb": child_peak_mb, "main_mb": main_mb, "total_mb": sampler.peak_total / 1024}


class _Sampler(threading.Thread):
    """RSS of every process of the worker's group, every `interval` seconds."""

    def __init__(self, pgid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pgid = pgid
        self.interval = interval
        self.peak_rss: dict[int, int] = {}
        self.peak_total = 0
        self._stop_event = threading.Event()

    def sample(self) -> dict[int, int]:
        now = {}
        for pid in process_group(self.pgid):
            kb = memory_kb(pid)
            if kb:
                now[pid] = kb["VmRSS"]
                self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), kb["VmRSS"], kb["VmHWM"])
        self.peak_total = max(self.peak_total, sum(now.values()))
        return now

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        self.sample()


def _linked(portal) -> int:
    from sync.models import InvoiceLink

    return InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False).count()
