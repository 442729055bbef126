"""A burst as an import into Bitrix24 makes it: API calls against the floor, and time to the last invoice.

The connector runs as in production (bench/_harness.py Stack: web server, Celery worker, the app
installed and Xero connected by `sandbox_setup`), with **the sandbox's real rate limits on** (Xero
60/min and 5 in flight per tenant, Bitrix24's leaky bucket) and the app's own throttle on. Then an
importer, as a Bitrix24 user over REST, does what an import into Bitrix24 does:

1. BENCH_COMPANIES (200) companies (`crm.company.add`, batch calls of 50);
2. BENCH_INVOICES (1,000) invoices with `crm.item.add`, 50 commands a batch call — every add fires
   ONCRMDYNAMICITEMADD at the app while the invoice still has no rows;
3. their BENCH_LINES (3) rows each with `crm.item.productrow.set`, 50 a batch call — every set fires
   ONCRMDYNAMICITEMUPDATE.

Counted: every call the sandbox received from the first invoice write until all invoices are in
Xero with their rows, less the importer's own calls (it counts them); split by system. Floors as
bench/push.py: Xero ceil(invoices/50) invoice writes + ceil(companies/50) contact writes + 1 lookup;
Bitrix24 the list pages the data fills in batch calls of 50 commands, 2 rounds.
Targets: <= 1.5x the floor on each side, last invoice in Xero <= 60 s after the last event.
BENCH_XERO_WEBHOOKS=1 points Xero's webhooks at the app too (the echo reads are then counted).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from urllib.parse import quote

import requests

from bench._harness import (
    BATCH,
    Bitrix24User,
    Stack,
    _rows_query,
    bitrix24_read_floor,
    env_flag,
    env_int,
    spread,
    table,
    verdict,
)

TARGET_RATIO = 1.5
TARGET_LAST_S = 60.0


class CountingUser(Bitrix24User):
    """The importer: a Bitrix24 user whose own REST calls are counted (the sandbox's call log does
    not say who called, so the connector's calls are the total less these)."""

    calls = 0

    def call(self, method: str, params: dict) -> object:
        self.calls += 1
        return super().call(method, params)


def run() -> dict:
    invoices = env_int("BENCH_INVOICES", 1000)
    companies = env_int("BENCH_COMPANIES", 200)
    lines = env_int("BENCH_LINES", 3)
    webhooks = env_flag("BENCH_XERO_WEBHOOKS", False)

    with Stack() as stack:
        portal = stack.setup(xero_webhooks=webhooks)
        requests.post(f"{stack.sandbox_url}/_sandbox/limits", json={"enabled": True, "time_scale": 1.0}, timeout=10)
        importer = CountingUser(stack, stack.user("Import Robot"))
        company_ids = importer.companies(companies, prefix="Imported Customer")
        owners = spread(company_ids, invoices)
        mark = stack.last_call_id()
        importer.calls = 0
        started = time.monotonic()
        invoice_ids: list[int] = []
        for start in range(0, invoices, BATCH):
            cmd = {
                f"a{n}": (
                    f"crm.item.add?entityTypeId=31&fields[title]={quote(f'Imported order {n + 1}')}"
                    f"&fields[companyId]={owners[n]}&fields[currencyId]=NZD"
                )
                for n in range(start, min(invoices, start + BATCH))
            }
            result = _batch(importer, cmd)
            invoice_ids += [int(result[f"a{n}"]["item"]["id"]) for n in range(start, min(invoices, start + BATCH))]
        rng = random.Random(3)
        for start in range(0, invoices, BATCH):
            cmd = {
                f"r{n}": f"crm.item.productrow.set?ownerType=SI&ownerId={invoice_ids[n]}&" + _rows_query(rng, lines)
                for n in range(start, min(invoices, start + BATCH))
            }
            _batch(importer, cmd)
        last_write = time.time()
        import_s = time.monotonic() - started
        print(f"   import: {invoices} invoices x {lines} rows in {import_s:.1f} s ({importer.calls} calls)", flush=True)
        last_event = _wait_events_delivered(stack, last_write)
        done_at = _wait_in_xero(stack, portal, invoice_ids, lines)
        calls = stack.calls_since(mark)
        importer_calls = importer.calls

    xero = [c for c in calls if c["system"] == "xero"]
    b24_total = sum(1 for c in calls if c["system"] == "bitrix24")
    b24 = b24_total - importer_calls
    xero_floor = math.ceil(invoices / BATCH) + math.ceil(companies / BATCH) + 1
    _, b24_floor = bitrix24_read_floor(invoices, lines, companies)
    xero_writes = max((c["finished"] or 0) for c in xero if c["method"] in ("PUT", "POST") and "Invoices" in c["path"])
    last_s = xero_writes - last_event
    rows = []
    for name, measured, floor in (("Xero calls", len(xero), xero_floor), ("Bitrix24 calls", b24, b24_floor)):
        ratio = measured / floor
        rows.append(
            (name, measured, f"{floor} (<= {floor * TARGET_RATIO:g})", f"{ratio:.2f}x", verdict(ratio <= TARGET_RATIO))
        )
    rows.append(
        (
            "last event -> last invoice in Xero",
            f"{last_s:.1f} s",
            f"<= {TARGET_LAST_S:.0f} s",
            "",
            verdict(last_s <= TARGET_LAST_S),
        )
    )
    table(rows)
    print(f"   Xero calls by endpoint:   {_by_endpoint(xero)}")
    print(f"   non-2xx answers to the app: {sum(1 for c in xero if (c['status'] or 0) >= 300)} (Xero)")
    print(f"   all invoices in Xero {done_at - started:.1f} s after the first import write")
    ok = all(r[-1] == verdict(True) for r in rows)
    return {
        "xero_calls": len(xero),
        "xero_floor": xero_floor,
        "bitrix24_calls": b24,
        "bitrix24_floor": b24_floor,
        "last_event_to_xero_s": round(last_s, 1),
        "ok": ok,
    }


def _batch(user: Bitrix24User, cmd: dict[str, str]) -> dict:
    """A batch call, waiting out Bitrix24's leaky bucket (QUERY_LIMIT_EXCEEDED) as an importer must."""
    while True:
        try:
            return user.batch(cmd)
        except RuntimeError as exc:
            if "QUERY_LIMIT_EXCEEDED" not in str(exc):
                raise
            time.sleep(0.5)


def _wait_events_delivered(stack: Stack, after: float, timeout: float = 120) -> float:
    """Unix time of the last event delivery to the app (the sandbox's delivery log), once no new
    delivery has appeared for a second."""
    deadline = time.monotonic() + timeout
    last, seen = after, -1
    while time.monotonic() < deadline:
        state = requests.get(f"{stack.sandbox_url}/_sandbox/state", timeout=60).json()["bitrix24"]
        deliveries = state.get("app", {}).get("deliveries", []) or state.get("deliveries", [])
        times = [d.get("time") or d.get("at") or 0 for d in deliveries]
        if len(times) == seen:
            return max([last, *times])
        seen = len(times)
        time.sleep(1.0)
    return last


def _wait_in_xero(stack: Stack, portal, invoice_ids: list[int], lines: int, timeout: float = 900) -> float:
    """Until every invoice is linked and its Xero invoice has all its rows; monotonic time then."""
    from sync.models import InvoiceLink

    deadline = time.monotonic() + timeout
    want = {str(i) for i in invoice_ids}
    while True:
        linked = set(
            InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False).values_list(
                "bitrix24_id", flat=True
            )
        )
        if want <= {str(i) for i in linked}:
            org = requests.get(f"{stack.sandbox_url}/_sandbox/state", timeout=120).json()["xero"]["organisations"][0]
            complete = sum(1 for inv in org["invoices"] if len(inv.get("LineItems") or []) == lines)
            if complete >= len(want):
                return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all invoices in Xero after {timeout:.0f}s ({len(linked)} linked)")
        time.sleep(1.0)


def _by_endpoint(calls: list[dict]) -> str:
    counts = Counter(f"{c['method']} {c['target']}" for c in calls)
    return ", ".join(f"{k}: {v}" for k, v in counts.most_common()) or "-"
