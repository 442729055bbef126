"""CPU per delivery of the two inbound endpoints, in-process: the figure to develop against.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python scripts/ingest_cpu.py [--requests 200] [--rounds 7] [--profile]

The real measure is `python -m bench ingest` (gunicorn, a worker, a load client, against the clock);
on a shared machine its rate is noise. This one calls the production WSGI application
(connector.wsgi, production settings: DEBUG off) directly, one request after another, through
the whole middleware chain onto PostgreSQL and Redis, and reports the CPU time of this process per
request (the minimum and median over rounds: other processes only ever add to it) and the CPU of
the PostgreSQL backend serving it. A Celery message is sent for the inbox now and then, as in
production (coalesced per 200 ms window); at this sequential rate that is a larger share than
under a burst. `--profile` prints where the time goes (cProfile, by CPU time).

A throwaway database (ingest_cpu_<name>) is created and dropped; Redis keys are the portal's own.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts._cpu import backend_cpu, production_settings, throwaway_database  # noqa: E402 - ROOT first

KEY = "ingest-cpu-webhook-key"
TOKEN = "ingest-cpu-application-token"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per round and endpoint")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")

    production_settings(
        BITRIX24_CLIENT_ID=os.environ.get("BITRIX24_CLIENT_ID", "local.ingest-cpu"), XERO_WEBHOOK_KEY=KEY
    )
    with throwaway_database("ingest_cpu"):
        return _measure(args)


def _measure(args) -> int:
    from accounts.models import Portal, XeroConnection
    from connector.wsgi import application
    from sync.models import InboxEvent, SyncSettings

    portal = Portal.objects.create(
        member_id=uuid.uuid4().hex,
        domain="cpu.bitrix24.com",
        client_endpoint="https://cpu.bitrix24.com/rest/",
        application_token=TOKEN,
    )
    tenant = str(uuid.uuid4())
    XeroConnection.objects.create(portal=portal, tenant_id=tenant, tenant_name="CPU Ltd")
    SyncSettings.objects.create(portal=portal, setup_completed=True)
    base_ts = int(time.time()) - 10**6

    def environ(path: str, body: bytes, content_type: str, **headers: str) -> dict:
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1:8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            **headers,
        }

    def bitrix24(n: int) -> dict:
        form = [
            ("event", "ONCRMDYNAMICITEMUPDATE"),
            ("event_handler_id", "1"),
            ("data[FIELDS][ID]", str(n % 20 + 1)),
            ("data[FIELDS][ENTITY_TYPE_ID]", "31"),
            ("ts", str(base_ts + n)),
            ("auth[domain]", portal.domain),
            ("auth[client_endpoint]", portal.client_endpoint),
            ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
            ("auth[member_id]", portal.member_id),
            ("auth[application_token]", TOKEN),
        ]
        return environ("/bitrix24/events/", urlencode(form).encode(), "application/x-www-form-urlencoded")

    def xero(n: int) -> dict:
        resource = str(uuid.UUID(int=n % 20 + 1))
        event = {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource}",
            "resourceId": resource,
            "eventDateUtc": f"2026-01-01T00:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}",
            "eventType": "UPDATE",
            "eventCategory": "INVOICE",
            "tenantId": tenant,
            "tenantType": "ORGANISATION",
        }
        body = json.dumps(
            {"events": [event], "firstEventSequence": n, "lastEventSequence": n, "entropy": "CPU"},
            separators=(",", ":"),
        ).encode()
        signature = base64.b64encode(hmac.new(KEY.encode(), body, hashlib.sha256).digest()).decode()
        return environ("/xero/webhooks/", body, "application/json", HTTP_X_XERO_SIGNATURE=signature)

    def call(env: dict) -> None:
        answered: list[str] = []
        body = application(env, lambda status, headers, exc_info=None: answered.append(status))
        b"".join(body)
        body.close()
        if not answered[0].startswith("200"):
            raise SystemExit(f"{env['PATH_INFO']} answered {answered[0]}")

    counter = iter(range(10**9))
    for _ in range(30):  # warm: imports, connections, the first SQL built
        call(bitrix24(next(counter)))
        call(xero(next(counter)))
    cpu: dict[str, list[float]] = {"bitrix24": [], "xero": []}
    postgres = dict.fromkeys(cpu, 0.0)
    for _ in range(args.rounds):
        for name, make in (("bitrix24", bitrix24), ("xero", xero)):
            backend, started = backend_cpu(), time.process_time()
            for _ in range(args.requests):
                call(make(next(counter)))
            cpu[name].append((time.process_time() - started) / args.requests * 1000)
            postgres[name] += backend_cpu() - backend
    for name, values in cpu.items():
        pg = postgres[name] / (args.rounds * args.requests) * 1000
        print(
            f"{name:9s} CPU per request: min {min(values):.2f} ms, median {statistics.median(values):.2f} ms; "
            f"its PostgreSQL backend {pg:.2f} ms"
        )
    print(f"rows stored {InboxEvent.objects.count()}; load average {os.getloadavg()[0]:.1f}")
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(args.requests):
            call(bitrix24(next(counter)))
            call(xero(next(counter)))
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
