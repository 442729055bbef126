"""Database queries and CPU per invoice of the push pass, in-process: the figure to develop against.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python scripts/push_cpu.py \
        [--invoices 200] [--per-pass 50] [--rounds 3] [--companies 25] [--profile]

The real measure is `python -m bench fairness` (a worker pool, 20 portals, the Xero throttle, against
the clock); on a shared machine its rates are noise. This one runs the sandbox and our web server
as the benches do (bench/_harness.py Stack, no worker), makes the invoices in the sandbox portal
before the app is installed (no events), then in this process clicks "Create / Edit on Xero" for
`--per-pass` invoices at a time and runs one push pass over them (sync.services.push
invoices_push_pending), as the backfill's passes run on a shared pool (PUSH_SHARED_CLAIM_LIMIT, 50).

A warm-up round first pushes one invoice of every company, so the measured rounds are the steady
state of a backfill (contacts linked; every invoice new to Xero). Each measured round pushes
`--invoices` fresh invoices and reports, per invoice: the SQL queries of this process
(CaptureQueriesContext), its CPU time, and the CPU of its PostgreSQL backend. The Xero throttle of
this process is lifted (the time waited is not CPU, and it would only make the run longer).
`--profile` prints where the CPU goes in one more round (cProfile by process_time).

A throwaway database (push_cpu_<name>) is created and dropped; Redis keys are the sandbox tenant's own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts._cpu import backend_cpu, production_settings, throwaway_database  # noqa: E402 - ROOT first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=200, help="fresh invoices per measured round")
    parser.add_argument("--per-pass", type=int, default=50, help="invoices per push pass")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--companies", type=int, default=25)
    parser.add_argument("--lines", type=int, default=2, help="product rows per invoice (the fairness bench's 2)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--queries", action="store_true", help="print the most frequent SQL of one pass")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")

    from bench._harness import OAUTH

    production_settings(**OAUTH, XERO_MINUTE_LIMIT="1000000", XERO_DAILY_LIMIT="1000000")
    with throwaway_database("push_cpu"):
        return _measure(args)


def _measure(args) -> int:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from bench._harness import Bitrix24User, Stack, push_click, spread
    from sync.models import InvoiceLink, SyncJob
    from sync.services.push import invoices_push_pending

    measured = args.invoices * (args.rounds + (1 if args.profile or args.queries else 0))
    with Stack(worker=False) as stack:
        admin = Bitrix24User(stack, stack.user())
        companies = admin.companies(args.companies, prefix="CPU Customer")
        warm_ids = admin.invoices(companies, lines=args.lines, seed=3)
        fresh = admin.invoices(spread(companies, measured), lines=args.lines, seed=5)
        portal = stack.setup(xero_webhooks=False)

        spent = {"cpu": 0.0, "pg": 0.0, "queries": 0}

        def push(ids: list[int], profile=None, listing: bool = False) -> None:
            """Click, then one pass per --per-pass invoices; only the passes are counted."""
            for start in range(0, len(ids), args.per_pass):
                chunk = ids[start : start + args.per_pass]
                push_click(portal, chunk, requested_by=admin.id)
                reset_queries()  # the log keeps 9,000: a pass's must all fit
                counted: list[str] = []
                # Counting through an execute wrapper costs next to nothing; Django's query log
                # (CaptureQueriesContext) would add its own CPU to every query, so it is used only
                # for --queries.
                logging = CaptureQueriesContext(connection) if listing else contextlib.nullcontext([])
                backend, started = backend_cpu(), time.process_time()
                with logging as captured, connection.execute_wrapper(_counter(counted)):
                    if profile is not None:
                        profile.enable()
                    report = invoices_push_pending(portal_id=portal.pk)
                    if profile is not None:
                        profile.disable()
                spent["cpu"] += time.process_time() - started
                spent["pg"] += backend_cpu() - backend
                spent["queries"] += len(counted)
                spent["last"] = [q["sql"] for q in captured]
                if report.created != len(chunk):
                    raise SystemExit(f"pass did not create every invoice: {report}")

        started = time.monotonic()
        push(warm_ids)  # contacts made and linked; imports, connections and the first SQL built
        print(f"warm-up: {len(warm_ids)} invoices, {args.companies} new contacts, {time.monotonic() - started:.1f} s")
        cpu, pg, queries = [], [], []
        for _ in range(args.rounds):
            ids, fresh = fresh[: args.invoices], fresh[args.invoices :]
            spent.update(cpu=0.0, pg=0.0, queries=0)
            push(ids)
            cpu.append(spent["cpu"] / len(ids) * 1000)
            pg.append(spent["pg"] / len(ids) * 1000)
            queries.append(spent["queries"] / len(ids))
        print(
            f"per invoice ({args.invoices} a round in passes of {args.per_pass}, {args.lines} rows, "
            f"{args.rounds} rounds): queries {statistics.median(queries):.1f} "
            f"(min {min(queries):.1f}); CPU min {min(cpu):.2f} ms, median {statistics.median(cpu):.2f} ms; "
            f"its PostgreSQL backend median {statistics.median(pg):.2f} ms"
        )
        linked = InvoiceLink.objects.filter(portal=portal, xero_invoice_id__isnull=False).count()
        jobs = Counter(SyncJob.objects.filter(portal=portal).values_list("status", flat=True))
        print(f"invoices linked to Xero {linked}; jobs {dict(jobs)}; load average {os.getloadavg()[0]:.1f}")
        if args.queries:
            ids, fresh = fresh[: args.per_pass], fresh[args.per_pass :]
            push(ids, listing=True)
            shapes = Counter(_shape(sql) for sql in spent["last"])
            print(f"queries of one pass of {len(ids)}: {len(spent['last'])}")
            for sql, n in shapes.most_common(40):
                print(f"{n:6d}  {sql[:200]}")
        if args.profile:
            import cProfile
            import pstats

            ids, fresh = fresh[: args.invoices], fresh[args.invoices :]
            profile = cProfile.Profile(time.process_time)
            push(ids, profile)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(50)
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    return 0


def _counter(counted: list[str]):
    def count(execute, sql, params, many, context):
        counted.append(sql)
        return execute(sql, params, many, context)

    return count


def _shape(sql: str) -> str:
    """A query with its literals blanked, so the same statement for many rows counts as one."""
    import re

    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r'"s\d+_x\d+"', "SP", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "N", sql)
    return re.sub(r"\((?:N|\?)(?:, (?:N|\?))+\)", "(…)", sql)


if __name__ == "__main__":
    sys.exit(main())
