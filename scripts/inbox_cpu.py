"""CPU per inbox row of the worker's processing, in-process: the figure to develop against.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python scripts/inbox_cpu.py [--rows 200] [--calls 5] [--rounds 5] [--profile]

`python -m bench ingest` charges the Celery worker and the PostgreSQL backends for every request;
on a shared machine those figures are noise. This one stores inbox rows shaped as the bench sends
them (bench/ingest.py `_plan`): half Bitrix24 invoice events about INVOICES invoices, half Xero
INVOICE.UPDATE webhooks for linked invoices whose eventDateUtc is older than the link's
xero_updated_at (echoes: each writes an echo_dropped sync-log entry). Then it runs
`inbox_process_portal(portal_id)` in-process, as the worker's task does, `--rows` rows at a time
(the rows one task finds waiting), and reports the CPU of this process per row (minimum and median
over rounds: other processes only ever add to it) and of its PostgreSQL backend (read from /proc).
Between rounds the pending jobs are marked done, as the push worker would take them, so each round
both inserts jobs and hurries pending ones. Celery messages go to REDIS_URL's broker as in
production (coalesced; nobody consumes them here). `--profile` prints where the time goes
(cProfile, by CPU time).

A throwaway database (inbox_cpu_<name>) is created and dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts._cpu import backend_cpu, production_settings, throwaway_database  # noqa: E402 - ROOT first

INVOICES = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="rows waiting per inbox_process_portal call")
    parser.add_argument("--calls", type=int, default=5, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")

    production_settings(BITRIX24_CLIENT_ID=os.environ.get("BITRIX24_CLIENT_ID", "local.inbox-cpu"))
    with throwaway_database("inbox_cpu"):
        return _measure(args)


class _Rows:
    """Inbox rows as the web side stores them (sync.services.inbox_record), numbered on."""

    def __init__(self, portal, tenant: str, xero_ids: list[str]) -> None:
        self.portal, self.tenant, self.xero_ids = portal, tenant, xero_ids
        self.n = 0
        self.base_ts = int(time.time()) - 10**6
        self.start = datetime.now(UTC) - timedelta(hours=1)  # older than every link's state: echoes

    def store(self, count: int) -> None:
        from sync.models import InboxEvent

        rows = []
        for _ in range(count):
            n, self.n = self.n, self.n + 1
            rows.append(InboxEvent(portal=self.portal, **(self._bitrix24(n) if n % 2 == 0 else self._xero(n))))
        InboxEvent.objects.bulk_create(rows)

    def _bitrix24(self, n: int) -> dict:
        invoice, ts = (n // 2) % INVOICES + 1, self.base_ts + n
        name = "ONCRMDYNAMICITEMUPDATE"
        return {
            "source": "bitrix24",
            "dedupe_key": f"b24:{self.portal.pk}:{name}:31:{invoice}:{ts}:1",
            "event_type": name,
            "payload": {
                "event": name,
                "entity_type_id": 31,
                "id": invoice,
                "ts": ts,
                "handler_id": 1,
                "user_id": 1,
                "data": {"FIELDS": {"ID": invoice, "ENTITY_TYPE_ID": 31}},
            },
        }

    def _xero(self, n: int) -> dict:
        resource = self.xero_ids[n % len(self.xero_ids)]
        when = (self.start + timedelta(milliseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        event = {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource}",
            "resourceId": resource,
            "eventDateUtc": when,
            "eventType": "UPDATE",
            "eventCategory": "INVOICE",
            "tenantId": self.tenant,
            "tenantType": "ORGANISATION",
        }
        return {
            "source": "xero",
            "dedupe_key": f"xero:{resource}:{when}:{n}",
            "event_type": "INVOICE.UPDATE",
            "payload": event,
            "headers": {"body_sha256": uuid.uuid4().hex},
        }


def _portal():
    """A portal past Setup with a Xero connection and INVOICES pushed invoices (links with a state)."""
    from django.utils import timezone

    from sync.models import InvoiceLink, XeroStatus
    from tests.factories import PortalFactory, SyncSettingsFactory, XeroConnectionFactory

    portal = PortalFactory(domain="inbox-cpu.bitrix24.com", application_token="inbox-cpu-application-token")
    connection = XeroConnectionFactory(portal=portal)
    SyncSettingsFactory(portal=portal)
    xero_ids = [str(uuid.uuid4()) for _ in range(INVOICES)]
    InvoiceLink.objects.bulk_create(
        InvoiceLink(
            portal=portal,
            bitrix24_entity_type=31,
            bitrix24_id=n + 1,
            xero_invoice_id=xero_id,
            xero_invoice_number=f"INV-{n + 1:04d}",
            last_xero_status=XeroStatus.AUTHORISED,
            xero_updated_at=timezone.now(),
        )
        for n, xero_id in enumerate(xero_ids)
    )
    return portal, connection.tenant_id, xero_ids


def _measure(args) -> int:
    from sync.models import InboxEvent, SyncJob, SyncLogEntry
    from sync.services.inbox import inbox_process_portal

    portal, tenant, xero_ids = _portal()
    rows = _Rows(portal, tenant, xero_ids)

    def call() -> None:
        rows.store(args.rows)
        counts = inbox_process_portal(portal.pk)
        if counts != {"done": args.rows}:
            raise SystemExit(f"inbox_process_portal returned {counts}, expected {args.rows} done")

    def jobs_taken() -> None:  # what the push and pull workers would have done meanwhile
        SyncJob.objects.filter(portal=portal, status=SyncJob.Status.PENDING).update(status=SyncJob.Status.DONE)

    for _ in range(3):  # warm: imports, connections, the first SQL built
        call()
    jobs_taken()
    cpu: list[float] = []
    postgres = 0.0
    for _ in range(args.rounds):
        spent = pg = 0.0
        for _ in range(args.calls):
            rows.store(args.rows)  # stored outside the measure: the web side's work
            backend, started = backend_cpu(), time.process_time()
            counts = inbox_process_portal(portal.pk)
            spent += time.process_time() - started
            pg += backend_cpu() - backend
            if counts != {"done": args.rows}:
                raise SystemExit(f"inbox_process_portal returned {counts}, expected {args.rows} done")
        jobs_taken()
        cpu.append(spent / (args.calls * args.rows) * 1000)
        postgres += pg
    measured = args.rounds * args.calls * args.rows
    print(
        f"inbox CPU per row ({args.rows} rows a call, {measured} rows): process min {min(cpu):.3f} ms, "
        f"median {statistics.median(cpu):.3f} ms; its PostgreSQL backend {postgres / measured * 1000:.3f} ms"
    )
    echoes = SyncLogEntry.objects.filter(portal=portal, outcome=SyncLogEntry.Outcome.ECHO_DROPPED).count()
    print(
        f"rows {InboxEvent.objects.count()} (waiting {InboxEvent.objects.filter(status='received').count()}); "
        f"echo entries {echoes}; jobs {SyncJob.objects.count()}; load average {os.getloadavg()[0]:.1f}"
    )
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile(time.process_time)
        for _ in range(args.calls):
            rows.store(args.rows)
            profile.enable()
            inbox_process_portal(portal.pk)
            profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
