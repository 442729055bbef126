"""How close the shared Xero throttle runs to Xero's 60 calls/min without a single 429.

Starts its own sandbox (`python -m sandbox`) with the real limits on and a compressed clock, connects
an organisation through the OAuth code flow, then makes N real client calls (get_organisations)
from several worker processes, each with several threads, all sharing the throttle through Redis.
Prints the achieved rate in Xero (sandbox) minutes against the allowed 60/min, the most calls in
flight, and how many 429s Xero answered; then the bare cost of one xero_slot round trip.

Knobs (environment): BENCH_XERO_CALLS (300), BENCH_PROCESSES (4), BENCH_THREADS (3),
BENCH_TIME_SCALE (20: a Xero minute lasts 3 s), BENCH_XERO_LATENCY_S (0.1: how long Xero takes to
answer, injected by the sandbox, so that the concurrency limit is exercised).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests

from bench._harness import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
REDIRECT_URI = "http://127.0.0.1:8000/xero/callback/"


def run() -> dict:
    from django.conf import settings

    calls = int(os.environ.get("BENCH_XERO_CALLS", 300))
    processes = int(os.environ.get("BENCH_PROCESSES", 4))
    threads = int(os.environ.get("BENCH_THREADS", 3))
    scale = float(os.environ.get("BENCH_TIME_SCALE", 20))
    latency = float(os.environ.get("BENCH_XERO_LATENCY_S", 0.1))
    settings.XERO_CLIENT_ID = settings.XERO_CLIENT_ID or "bench-client"
    settings.XERO_CLIENT_SECRET = settings.XERO_CLIENT_SECRET or "bench-secret"

    with SandboxProcess() as sandbox_url:
        settings.SANDBOX_URL = sandbox_url
        connection = _connect()
        requests.post(f"{sandbox_url}/_sandbox/limits", json={"enabled": True, "time_scale": scale}, timeout=10)
        # Xero takes its time (BENCH_XERO_LATENCY_S real seconds a call), so concurrency matters.
        fault = {"system": "xero", "match": "GET /Organisation", "times": calls * 2, "delay_s": latency}
        requests.post(f"{sandbox_url}/_sandbox/faults", json=fault, timeout=10)
        started = time.monotonic()
        tallies = _run_workers(connection.pk, calls, processes, threads, scale)
        wall = time.monotonic() - started
        log = requests.get(f"{sandbox_url}/_sandbox/calls", params={"system": "xero"}, timeout=30).json()["calls"]

    tenant_calls = [c for c in log if c["key"] == connection.tenant_id]
    times = sorted(c["sandbox_time"] for c in tenant_calls)
    per_minute = [0] * (int((times[-1] - times[0]) // 60) + 1)
    for t in times:
        per_minute[int((t - times[0]) // 60)] += 1
    full = per_minute[:-1] or per_minute
    figures = {
        "calls": len(tenant_calls),
        "processes x threads": f"{processes} x {threads}",
        "calls in each Xero minute from the first": per_minute,
        "calls/min over the full minutes (allowed 60)": round(sum(full) / len(full), 1),
        "max calls in any rolling minute (allowed 60)": _max_per_minute(times),
        "max in flight (allowed 5)": _max_in_flight(tenant_calls),
        "429 from Xero": sum(1 for c in tenant_calls if c["status"] == 429),
        "throttle waits handed back (RateLimitedError)": sum(t["waited_out"] for t in tallies),
        "errors": sum(len(t["errors"]) for t in tallies),
        "wall seconds": round(wall, 1),
        "xero_slot round trip (ms, Redis, uncontended)": _slot_cost_ms(),
    }
    for name, value in figures.items():
        print(f"   {name:48s} {value}", flush=True)
    return figures


# --- the parts ---------------------------------------------------------------------------------


def _connect():
    """A Portal and its XeroConnection, made through the sandbox's OAuth code flow."""
    from accounts.models import Portal, XeroConnection
    from integrations.xero.oauth import xero_authorize_url, xero_connections, xero_exchange_code

    response = requests.get(
        xero_authorize_url(state="bench", redirect_uri=REDIRECT_URI), allow_redirects=False, timeout=10
    )
    code = parse_qs(urlparse(response.headers["Location"]).query)["code"][0]
    tokens = xero_exchange_code(code=code, redirect_uri=REDIRECT_URI)
    tenant = xero_connections(tokens.access_token, tokens.extra.get("auth_event_id"))[0]
    portal = Portal.objects.create(
        member_id=f"bench-{secrets.token_hex(6)}", domain="bench.bitrix24.com", client_endpoint="https://bench/rest/"
    )
    return XeroConnection.objects.create(
        portal=portal,
        tenant_id=tenant["tenantId"],
        tenant_name=tenant.get("tenantName", ""),
        connection_id=tenant.get("id", ""),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
        scope=tokens.scope,
    )


def _run_workers(pk: int, calls: int, processes: int, threads: int, scale: float) -> list[dict]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "connector.settings",
        "DATABASE_URL": (
            f"postgres://{db.get('USER') or ''}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
            f"@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        ),
        "SANDBOX_URL": settings.SANDBOX_URL,
        "RATE_LIMIT_TIME_SCALE": str(scale),
        "XERO_CLIENT_ID": settings.XERO_CLIENT_ID,
        "XERO_CLIENT_SECRET": settings.XERO_CLIENT_SECRET,
    }
    shares = [calls // processes + (i < calls % processes) for i in range(processes)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.throttle", "--worker", str(pk), str(n), str(threads)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in shares
    ]
    # Start together: importing Django and xero-python takes seconds, many sandbox minutes.
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a bench worker failed to start")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    tallies = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"a bench worker failed with exit code {proc.returncode}")
        tallies.append(json.loads(out.strip().splitlines()[-1]))
    return tallies


def _worker(pk: int, calls: int, threads: int) -> None:
    """One worker process: `calls` client calls over `threads` threads, as Celery tasks would."""
    import django

    django.setup()
    from django.db import connection as db

    from accounts.models import XeroConnection
    from integrations.common.errors import RateLimitedError
    from integrations.xero.client import XeroClient

    tally = {"ok": 0, "xero_429": 0, "waited_out": 0, "errors": []}
    guard = threading.Lock()

    def caller(n: int) -> None:
        client = XeroClient(XeroConnection.objects.get(pk=pk))
        done = 0
        while done < n:
            try:
                client.organisation_get()
                outcome = "ok"
            except RateLimitedError as exc:
                outcome = "xero_429" if exc.status == 429 else "waited_out"
                time.sleep(exc.retry_after or 0.1)  # what a task's countdown would do
            except Exception as exc:  # noqa: BLE001 - counted and reported by the bench
                outcome = repr(exc)
            with guard:
                if outcome in tally:
                    tally[outcome] += 1
                else:
                    tally["errors"].append(outcome)
            done += outcome != "waited_out"
        db.close()

    shares = [calls // threads + (i < calls % threads) for i in range(threads)]
    workers = [threading.Thread(target=caller, args=(n,)) for n in shares]
    print("ready", flush=True)
    sys.stdin.readline()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps(tally), flush=True)


def _slot_cost_ms(rounds: int = 500) -> float:
    from integrations.common.throttle import xero_slot

    tenant = f"bench-overhead-{secrets.token_hex(4)}"
    from django.test import override_settings

    with override_settings(XERO_MINUTE_LIMIT=10**9, XERO_DAILY_LIMIT=10**9, XERO_APP_MINUTE_LIMIT=10**9):
        started = time.perf_counter()
        for _ in range(rounds):
            with xero_slot(tenant):
                pass
        return round((time.perf_counter() - started) / rounds * 1000, 3)


def _max_in_flight(calls: list[dict]) -> int:
    events = sorted([(c["started"], 1) for c in calls] + [(c["finished"], -1) for c in calls if c["finished"]])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _max_per_minute(times: list[float]) -> int:
    peak, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + 60:
            j += 1
        peak = max(peak, j - i)
    return peak


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("run benches with `python -m bench throttle`")
