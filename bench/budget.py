"""A day of typical traffic against the Xero budget: Xero calls for 5,000 invoice changes in 8 hours.

The connector runs as in production (bench/_harness.py Stack: web server, Celery worker pool of 2,
the sandbox's rate limits on, the app's client throttle on). The day is compressed in time by
BENCH_BUDGET_SCALE (k, default 60: 8 hours in 8 minutes), and everything that reads a clock is
scaled together:
- the sandbox's limits (`/_sandbox/limits` time_scale k: Xero's minute is 1 s, its day 24 min,
  Bitrix24's bucket drains k times faster; its token lifetimes shrink by k too);
- the app's throttle (RATE_LIMIT_TIME_SCALE k) and its debounce (PUSH_QUIET_S and PUSH_MAX_WAIT_S
  divided by k), so a burst, a quiet moment and the bound mean what they mean in a real day;
- the traffic generator's pacing (every gap divided by k).
What compression cannot scale: the time a pass takes (reading Bitrix24, mapping, the HTTP calls).
A 0.3 s pass stands for 0.3 k s of the day (18 s at k 60), so changes pile up behind a running pass
more than they would in a real day: coalescing is somewhat easier than in reality and the count is
a lower bound. A smaller k (BENCH_BUDGET_SCALE=16: 30 minutes) narrows that gap.

The day (BENCH_BUDGET_CHANGES, 5,000 changes, over BENCH_BUDGET_HOURS, 8): before install,
BENCH_BUDGET_INVOICES (600) invoices over 150 companies exist (no events); then
- BENCH_BUDGET_BURSTS (3) imports of 300 new invoices each (add + rows, batch calls of 50, as
  bench/burst.py), at 1/8, 4/8 and 7/8 of the day: 900 changes;
- the rest are single edits (a new price on an invoice's rows, one REST call and its event) on
  random invoices, arriving as a Poisson stream whose rate follows a working day (busier in the
  morning and after lunch).
The organisation is on Xero's Starter tier: the sandbox allows it 1,000 calls a day (its
X-DayLimit-Remaining says so, which is how the app learns it), and XERO_DAILY_RESERVE is 100, a
tenth kept for clicks. The app then paces automatic pushes when the day's budget would not last
(sync/services/xero_budget.py); without that, the throttle would stop automatic calls at 900 and the
day's later changes would wait for the next day.

Counted: the Xero API calls (api.xro, not the identity server's token refreshes) the sandbox
logged from the first change until every push job is finished. Target: < 1,000. Also printed: by
endpoint, and how long changes waited (queued -> done, in day time) — what the pacing costs.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from urllib.parse import quote

import requests

from bench._harness import BATCH, Bitrix24User, Stack, _rows_query, env_int, spread, table, verdict

TARGET_CALLS = 1000
STARTER_DAY_LIMIT = 1000
STARTER_RESERVE = 100


class DayUser(Bitrix24User):
    """A person working through the day: their token outlives an hour of the compressed day only
    if they sign in again (the sandbox's token lifetimes shrink with time_scale), as Bitrix24's
    own pages do."""

    sandbox_url = ""

    def call(self, method: str, params: dict) -> object:
        try:
            return super().call(method, params)
        except RuntimeError as exc:
            if "expired_token" not in str(exc):
                raise
            fresh = requests.post(f"{self.sandbox_url}/_sandbox/bitrix24/tokens", json={"user": self.id}, timeout=10)
            self.token = fresh.json()["access_token"]
            return super().call(method, params)


def run() -> dict:
    scale = float(env_int("BENCH_BUDGET_SCALE", 60))
    changes = env_int("BENCH_BUDGET_CHANGES", 5000)
    hours = float(env_int("BENCH_BUDGET_HOURS", 8))
    existing = env_int("BENCH_BUDGET_INVOICES", 600)
    bursts = env_int("BENCH_BUDGET_BURSTS", 3)
    # BENCH_BUDGET_DAY_LIMIT=5000 PUSH_BUDGET_HORIZON_H=0: the same day without the pacing (what the
    # rest of the coalescing alone spends), on a tier whose limit it cannot reach.
    day_limit = env_int("BENCH_BUDGET_DAY_LIMIT", STARTER_DAY_LIMIT)
    burst_size = 300
    day_s = hours * 3600 / scale  # real seconds the compressed day lasts
    env = {
        "RATE_LIMIT_TIME_SCALE": str(scale),
        "PUSH_QUIET_S": str(0.8 / scale),
        "PUSH_MAX_WAIT_S": str(30.0 / scale),
        "PUSH_BURST_RATE": str(5.0 * scale),
        "PUSH_BURST_MAX_WAIT_S": str(90.0 / scale),
        # A Starter-tier organisation (xero-api.md §9: 1,000 calls a day); its operator keeps a tenth
        # for people's clicks, as the default 500 of 5,000 does.
        "XERO_DAILY_RESERVE": str(STARTER_RESERVE),
    }
    rng = random.Random(5)
    with Stack(extra_env=env) as stack:
        clerk = DayUser(stack, stack.user("Day Clerk"))
        clerk.sandbox_url = stack.sandbox_url
        company_ids = clerk.companies(150, prefix="Day Customer")
        invoice_ids = clerk.invoices(spread(company_ids, existing), lines=2, seed=9)
        portal = stack.setup(xero_webhooks=False)
        requests.post(
            f"{stack.sandbox_url}/_sandbox/xero/limits", json={"day": day_limit}, timeout=10
        ).raise_for_status()
        requests.post(
            f"{stack.sandbox_url}/_sandbox/limits", json={"enabled": True, "time_scale": scale}, timeout=10
        ).raise_for_status()
        singles = changes - bursts * burst_size
        plan = sorted(_single_times(rng, singles, day_s))
        burst_at = [day_s * (1 + 3 * n) / 8 for n in range(bursts)]
        mark = stack.last_call_id()
        started = time.monotonic()
        made_singles = made_bursts = 0
        price = 1000
        late = 0.0
        events = [(t, "single") for t in plan] + [(t, "burst") for t in burst_at]
        events.sort()
        for when, kind in events:
            wait = started + when - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                late = max(late, -wait)
            if kind == "burst":
                invoice_ids += _import(clerk, rng, company_ids, burst_size, made_bursts)
                made_bursts += 1
            else:
                price += 1
                clerk.call(
                    "crm.item.productrow.set",
                    {
                        "ownerType": "SI",
                        "ownerId": rng.choice(invoice_ids),
                        "productRows": [{"productName": "Service", "price": f"{price}.00", "quantity": 1}],
                    },
                )
                made_singles += 1
        traffic_s = time.monotonic() - started
        _wait_idle(portal)
        calls = stack.calls_since(mark)
        done_s = time.monotonic() - started
        waits = _push_waits(portal)

    xero = [c for c in calls if c["system"] == "xero" and "api.xro" in c["path"]]
    writes = sum(1 for c in xero if c["method"] in ("PUT", "POST") and c["target"] == "/Invoices")
    refused = sum(1 for c in xero if (c["status"] or 0) == 429)
    rows = [
        (
            "Xero API calls for the day",
            len(xero),
            f"< {TARGET_CALLS}",
            f"{len(xero) / TARGET_CALLS:.2f}x",
            verdict(len(xero) < TARGET_CALLS),
        ),
        ("changes per Xero call", f"{changes / max(1, len(xero)):.1f}", "> 5", "-", "-"),
    ]
    table(rows)
    print(
        f"   day: {made_singles} single edits + {made_bursts} imports of {burst_size} over {hours:g} h, compressed "
        f"{scale:g}x into {traffic_s:.0f} s (generator at most {late:.1f} s behind its plan); all pushed "
        f"{done_s - traffic_s:.0f} s after the last change"
    )
    print(f"   Xero invoice writes {writes}, other calls {len(xero) - writes}, 429 answers {refused}")
    print(f"   Xero calls by endpoint: {_by_endpoint(xero)}")
    print(
        f"   change -> Xero (every push job, real s): p50 {waits[0]:.1f}, p95 {waits[1]:.1f}, max {waits[2]:.1f}; x{scale:g}"
        f" = day time at most (a pass's own time is not compressed) (organisation: {day_limit}"
        f" calls a day, {STARTER_RESERVE} kept for clicks)"
    )
    return {
        "xero_calls": len(xero),
        "invoice_writes": writes,
        "contact_calls": sum(1 for c in xero if c["target"] == "/Contacts"),
        "push_wait_p95_s": round(waits[1], 1),
        "ok": len(xero) < TARGET_CALLS,
    }


def _push_waits(portal) -> tuple[float, float, float]:
    """(p50, p95, max) of queued -> done of the day's push jobs, in real seconds: what budget pacing
    costs in latency."""
    from sync.models import SyncJob

    spans = sorted(
        (done - queued).total_seconds()
        for queued, done in SyncJob.objects.filter(
            portal=portal, kind=SyncJob.Kind.PUSH_INVOICE, status=SyncJob.Status.DONE
        ).values_list("created_at", "updated_at")
    ) or [0.0]
    pick = lambda q: spans[min(len(spans) - 1, int(q * len(spans)))]  # noqa: E731
    return pick(0.5), pick(0.95), spans[-1]


def _by_endpoint(calls: list[dict]) -> str:
    counts = Counter(f"{c['method']} {c['target']}" for c in calls)
    return ", ".join(f"{k}: {v}" for k, v in counts.most_common()) or "-"


def _single_times(rng: random.Random, count: int, day_s: float) -> list[float]:
    """Arrival times of `count` single edits over the day: a working day's shape (busier 9-12 and
    13-16 than the first hour and the lunch hour), drawn by inverse transform of the intensity."""
    weights = [0.6, 1.2, 1.4, 1.1, 0.5, 1.2, 1.3, 0.7]  # per hour of an 8-hour day
    total = sum(weights)
    times = []
    for _ in range(count):
        u = rng.random() * total
        hour = 0
        while u > weights[hour]:
            u -= weights[hour]
            hour += 1
        times.append((hour + u / weights[hour]) * day_s / len(weights))
    return times


def _import(clerk: Bitrix24User, rng: random.Random, company_ids: list[int], size: int, n: int) -> list[int]:
    """An import into Bitrix24: `size` invoices added (batch calls of 50), then their rows."""
    ids: list[int] = []
    for start in range(0, size, BATCH):
        cmd = {
            f"a{k}": (
                f"crm.item.add?entityTypeId=31&fields[title]={quote(f'Import {n + 1} order {k + 1}')}"
                f"&fields[companyId]={rng.choice(company_ids)}&fields[currencyId]=NZD"
            )
            for k in range(start, min(size, start + BATCH))
        }
        result = _batch(clerk, cmd)
        ids += [int(result[f"a{k}"]["item"]["id"]) for k in range(start, min(size, start + BATCH))]
    for start in range(0, size, BATCH):
        cmd = {
            f"r{k}": f"crm.item.productrow.set?ownerType=SI&ownerId={ids[k]}&" + _rows_query(rng, 2)
            for k in range(start, min(size, start + BATCH))
        }
        _batch(clerk, cmd)
    return ids


def _batch(user: Bitrix24User, cmd: dict[str, str]) -> dict:
    while True:
        try:
            return user.batch(cmd)
        except RuntimeError as exc:
            if "QUERY_LIMIT_EXCEEDED" not in str(exc):
                raise
            time.sleep(0.05)


def _wait_idle(portal, timeout: float = 600) -> None:
    """Until the inbox is drained and no push job is pending or running (twice in a row, 1 s apart)."""
    from sync.models import InboxEvent, SyncJob

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        busy = (
            SyncJob.objects.filter(
                portal=portal,
                kind=SyncJob.Kind.PUSH_INVOICE,
                status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING],
            ).exists()
            or InboxEvent.objects.filter(status__in=[InboxEvent.Status.RECEIVED, InboxEvent.Status.PROCESSING]).exists()
        )
        quiet = 0 if busy else quiet + 1
        if quiet >= 3:
            return
        time.sleep(1)
    raise RuntimeError(f"push not idle after {timeout:.0f} s")
