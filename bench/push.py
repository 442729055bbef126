"""API calls to push new invoices to Xero, against the floor.

Makes BENCH_COMPANIES (200) companies and BENCH_INVOICES (1,000) invoices of BENCH_LINES (3) product
rows in the sandbox portal through REST (before the app is installed, so no events: the push below is
the only thing that runs), installs and connects the app (`manage.py sandbox_setup`), then clicks
"Create / Edit on Xero" for all of them (1,000 a click, the button's maximum) and lets the real
worker push them. Counts every call the sandbox received from the click until all jobs finished.

Floor:
- Xero: ceil(invoices/50) invoice writes + ceil(companies/50) contact writes + 1 read (the lookup of
  existing contacts, one page of 1,000: the organisation may already have these customers).
- Bitrix24: the list pages the data fills (invoices, product rows, companies and their requisite
  addresses, 50 items a page), 50 commands a batch call, and 2 rounds at least (the companies are
  known only once the invoices are read). See bench/_harness.py bitrix24_read_floor.
Target: within 1.25x of the floor on both sides.

BENCH_OLD_INVOICES=1 runs it on a portal with Bitrix24's old invoices (crm.invoice.*, entity type 5):
the invoices are made with crm.invoice.add and PRODUCT_ROWS, the click names entity type 5, and the
Bitrix24 floor is one crm.invoice.get per invoice (crm.invoice.list returns no rows), 50 a batch call.

BENCH_XERO_WEBHOOKS=1 also points Xero's webhooks at the app, so the echo of every write (Xero
webhook -> pull job -> GET /Invoices?IDs=) is counted too; off by default, since that is the pull
engine's cost and not the push engine's.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter

import requests

from bench._harness import (
    BATCH,
    Bitrix24User,
    Stack,
    bitrix24_old_read_floor,
    bitrix24_read_floor,
    env_flag,
    env_int,
    push_click,
    spread,
    table,
    verdict,
    wait_push_jobs,
)

TARGET_RATIO = 1.25


def run() -> dict:
    invoices = env_int("BENCH_INVOICES", 1000)
    companies = env_int("BENCH_COMPANIES", 200)
    lines = env_int("BENCH_LINES", 3)
    webhooks = env_flag("BENCH_XERO_WEBHOOKS", False)
    old = env_flag("BENCH_OLD_INVOICES", False)

    with Stack() as stack:
        if old:
            requests.post(f"{stack.sandbox_url}/_sandbox/bitrix24/settings", json={"invoices": "old"}, timeout=10)
        admin = Bitrix24User(stack, stack.user())
        started = time.monotonic()
        company_ids = admin.companies(companies)
        make = admin.old_invoices if old else admin.invoices
        invoice_ids = make(spread(company_ids, invoices), lines=lines)
        print(
            f"   made {invoices} {'old ' if old else ''}invoices x {lines} rows for {companies} companies in "
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )
        portal = stack.setup(xero_webhooks=webhooks)
        mark = stack.last_call_id()
        started = time.monotonic()
        push_click(portal, invoice_ids, requested_by=admin.id, entity_type=5 if old else 31)
        jobs = wait_push_jobs(portal, invoices, timeout=600)
        if webhooks:
            _wait_quiet(portal)
        wall = time.monotonic() - started
        calls = stack.calls_since(mark)
        # The task logs its report just after the jobs are marked done: give it a moment.
        deadline = time.monotonic() + 10
        while True:
            worker_log = (stack.logs / "worker.log").read_text(errors="replace")
            if re.search(r"push of portal .*'claimed': [1-9]", worker_log) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        outcome = _outcome(portal, stack)

    xero = [c for c in calls if c["system"] == "xero"]
    b24 = [c for c in calls if c["system"] == "bitrix24"]
    xero_floor = math.ceil(invoices / BATCH) + math.ceil(companies / BATCH) + 1
    if old:
        b24_commands, b24_floor = bitrix24_old_read_floor(invoices, companies)
    else:
        b24_commands, b24_floor = bitrix24_read_floor(invoices, lines, companies)
    rows = []
    figures = {
        "xero_calls": len(xero),
        "xero_floor": xero_floor,
        "bitrix24_calls": len(b24),
        "bitrix24_floor": b24_floor,
    }
    for name, measured, floor in (("Xero calls", len(xero), xero_floor), ("Bitrix24 calls", len(b24), b24_floor)):
        ratio = measured / floor
        rows.append(
            (name, measured, f"{floor} (target <= {floor * TARGET_RATIO:g})", f"{ratio:.2f}x", verdict(ratio <= 1.25))
        )
    table(rows)
    print(
        f"   Xero floor: {math.ceil(invoices / BATCH)} invoice writes + {math.ceil(companies / BATCH)} contact writes + 1 contact lookup"
    )
    what = "crm.invoice.get commands + client list pages" if old else "list pages of 50"
    print(f"   Bitrix24 floor: {b24_commands} {what} in batch calls of 50 commands, >= 2 rounds")
    print(f"   Xero calls by endpoint:     {_by_endpoint(xero)}")
    print(f"   Bitrix24 calls by method:   {_by_endpoint(b24)}")
    print(f"   non-2xx answers:            {sum(1 for c in calls if (c['status'] or 0) >= 300)}")
    print(f"   jobs: {jobs}; outcome: {outcome}")
    print(f"   push passes (worker log):   {_passes(worker_log)}")
    print(f"   wall time click -> all jobs finished: {wall:.1f} s ({invoices / wall:.0f} invoices/s)")
    print(f"   Xero webhooks pointed at the app (echo counted): {'yes' if webhooks else 'no'}", flush=True)
    return figures


def _by_endpoint(calls: list[dict]) -> str:
    counts = Counter(f"{c['method']} {c['target']}" for c in calls)
    return ", ".join(f"{k}: {v}" for k, v in counts.most_common()) or "-"


def _outcome(portal, stack: Stack) -> dict:
    """What ended up where: links on our side, objects in the sandbox's Xero organisation (one
    /_sandbox/state read after the measured window)."""

    from sync.models import ContactLink, InvoiceLink

    org = requests.get(f"{stack.sandbox_url}/_sandbox/state", timeout=120).json()["xero"]["organisations"][0]
    return {
        "invoices linked": InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False).count(),
        "contacts linked": ContactLink.objects.filter(portal=portal).count(),
        "Xero invoices": len(org["invoices"]),
        "Xero contacts": len(org["contacts"]),
    }


def _passes(log: str) -> str:
    """Each push task logs its PushReport totals (one or more passes); tasks that found nothing to
    claim (coalesced dispatches arriving after the work was taken) are only counted."""
    import ast

    totals = []
    for line in log.splitlines():
        if "push of portal" in line:
            try:
                totals.append(ast.literal_eval(line.split("push of portal", 1)[1].split(":", 1)[1].strip()))
            except (ValueError, SyntaxError, IndexError):
                continue
    busy = [t for t in totals if t.get("claimed")]
    shown = " | ".join(
        f"claimed {t['claimed']}, created {t['created']}, Xero {t['xero_calls']}, Bitrix24 {t['bitrix24_calls']}"
        for t in busy
    )
    return f"{len(busy)} task(s) with work: {shown or '-'}; {len(totals) - len(busy)} found nothing to claim"


def _wait_quiet(portal, timeout: float = 120) -> None:
    """With webhooks on: until the echo (inbox rows, pull jobs) is processed too."""
    from sync.models import InboxEvent, SyncJob

    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        busy = (
            SyncJob.objects.filter(portal=portal, status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING]).exists()
            or InboxEvent.objects.exclude(status__in=["done", "failed", "ignored"]).exists()
        )
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 2:
            return
        time.sleep(0.2)
