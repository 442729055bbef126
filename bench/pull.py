""" "Update from Xero" over 10,000 linked invoices of which 300 changed: API calls, time, memory.

Starts its own sandbox, connects a Bitrix24 portal (a token pair from the sandbox's control API) and
a Xero organisation (OAuth code flow), then builds the world in bulk, outside the measurement:
10,000 AUTHORISED invoices in Xero (control route, 1,000 a request), 10,000 Bitrix24 invoices on
"Sent to client" (REST `batch`, 50 a request, sent straight to the sandbox rather than through our
throttled client), and 10,000 InvoiceLinks as the push engine leaves them (bulk_create). The
watermark is set, then 300 invoices change in Xero (2/3 paid, 1/3 voided), and statuses_pull_recent
runs once, as the button runs it.

Printed: Xero and Bitrix24 calls the pull made (from /_sandbox/calls) against the targets (<= 3 and
<= 8), stages moved, wall time, and the process's peak RSS before and after the pull (setup
included; with BENCH_PULL_TRACEMALLOC=1 also the pull's own peak Python allocation).

The overlap is set to 1 s here (XERO_PULL_OVERLAP_S; 120 s in production): the 10,000 invoices were
created seconds before the watermark, and a 2-minute overlap would re-read all of them, which in
production it does only for the invoices changed in the 2 minutes before the previous pass.

Knobs (environment): BENCH_PULL_INVOICES (10000), BENCH_PULL_CHANGED (300), BENCH_PULL_TRACEMALLOC (0).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
import tracemalloc
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests

from bench._harness import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
REDIRECT_URI = "http://127.0.0.1:8000/xero/callback/"
XERO_TARGET, BITRIX24_TARGET = 3, 8
SENT, PAID, DECLINED = "DT31_3:S", "DT31_3:P", "DT31_3:D"


def run() -> dict:
    from django.conf import settings

    total = int(os.environ.get("BENCH_PULL_INVOICES", 10_000))
    changed = int(os.environ.get("BENCH_PULL_CHANGED", 300))
    settings.XERO_CLIENT_ID = settings.XERO_CLIENT_ID or "bench-client"
    settings.XERO_CLIENT_SECRET = settings.XERO_CLIENT_SECRET or "bench-secret"
    settings.XERO_PULL_OVERLAP_S = 1

    with SandboxProcess() as sandbox_url:
        settings.SANDBOX_URL = sandbox_url
        figures = _bench(sandbox_url, total, changed)
    for name, value in figures.items():
        print(f"   {name:46s} {value}", flush=True)
    return figures


def _bench(sandbox_url: str, total: int, changed: int) -> dict:
    from django.utils import timezone

    from sync.models import SyncSettings, Trigger
    from sync.services.pull import statuses_pull_recent
    from sync.services.stages import stage_map_refresh

    started = time.monotonic()
    portal, admin_token = _portal(sandbox_url)
    _connect_xero(portal)
    stage_map_refresh(portal=portal)
    xero_rows = _xero_invoices(sandbox_url, total)
    bitrix24_ids = _bitrix24_invoices(portal.client_endpoint, admin_token, total)
    _links(portal, bitrix24_ids, xero_rows)
    # If-Modified-Since has whole seconds: the watermark is the next second, and the changes wait for it.
    mark = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=1)
    SyncSettings.objects.update_or_create(portal=portal, defaults={"xero_modified_since": mark})
    time.sleep(max(0.0, (mark - timezone.now()).total_seconds()) + 0.05)
    step = max(1, total // changed)
    picked = [xero_rows[i * step]["InvoiceID"] for i in range(changed)]
    for n, invoice_id in enumerate(picked):
        if n % 3 == 2:
            _control(sandbox_url, f"/_sandbox/xero/invoices/{invoice_id}/status", {"status": "VOIDED"})
        else:
            _control(sandbox_url, f"/_sandbox/xero/invoices/{invoice_id}/pay", {})
    setup_s = time.monotonic() - started
    since = _last_call(sandbox_url)

    rss_before = _peak_rss_mib()
    # tracemalloc slows allocation-heavy code severalfold: only on request, and then the wall time
    # printed includes its cost.
    traced = os.environ.get("BENCH_PULL_TRACEMALLOC") == "1"
    if traced:
        tracemalloc.start()
    clock = time.monotonic()
    report = statuses_pull_recent(portal=portal, trigger=Trigger.BUTTON)
    wall = time.monotonic() - clock
    peak = tracemalloc.get_traced_memory()[1] if traced else None
    tracemalloc.stop()

    calls = requests.get(f"{sandbox_url}/_sandbox/calls", params={"since": since}, timeout=60).json()["calls"]
    xero = [c for c in calls if c["system"] == "xero" and not c["path"].startswith("/xero/identity")]
    bitrix24 = [c for c in calls if c["system"] == "bitrix24" and c["target"] != "token"]
    states = _bitrix24_stages(portal.client_endpoint, admin_token, [bitrix24_ids[i * step] for i in range(changed)])
    return {
        "linked invoices / changed in Xero": f"{total} / {changed}",
        "setup (not measured) seconds": round(setup_s, 1),
        f"Xero calls (target <= {XERO_TARGET})": f"{len(xero)}: {', '.join(sorted({c['method'] + ' ' + c['target'] for c in xero}))}",
        f"Bitrix24 calls (target <= {BITRIX24_TARGET})": f"{len(bitrix24)}: {', '.join(sorted({c['target'] for c in bitrix24}))}",
        "invoices read / stages moved / failed": f"{report.fetched} / {report.moved} / {report.failed}",
        "Bitrix24 stages now Paid / Declined": f"{states.count(PAID)} / {states.count(DECLINED)}",
        "wall seconds of the pull": round(wall, 2),
        "peak RSS before / after the pull (MiB)": f"{rss_before} / {_peak_rss_mib()}",
        "peak Python allocation during the pull (MiB)": round(peak / 2**20, 1)
        if peak
        else "(BENCH_PULL_TRACEMALLOC=1)",
    }


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- the world, in bulk ------------------------------------------------------------------------------


def _portal(sandbox_url: str):
    """A Portal holding the sandbox admin's token pair (what an installation stores)."""
    from accounts.models import Portal

    tokens = _control(sandbox_url, "/_sandbox/bitrix24/tokens", {"user": 1})
    portal = Portal.objects.create(
        member_id=tokens["member_id"],
        domain=tokens["domain"],
        client_endpoint=tokens["client_endpoint"],
        server_endpoint=tokens["server_endpoint"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        token_expires_at=dt.datetime.fromtimestamp(tokens["expires"], dt.UTC),
        installed_by_user_id=1,
    )
    return portal, tokens["access_token"]


def _connect_xero(portal) -> None:
    from accounts.models import XeroConnection
    from integrations.xero.oauth import xero_authorize_url, xero_connections, xero_exchange_code

    response = requests.get(
        xero_authorize_url(state="bench", redirect_uri=REDIRECT_URI), allow_redirects=False, timeout=10
    )
    code = parse_qs(urlparse(response.headers["Location"]).query)["code"][0]
    tokens = xero_exchange_code(code=code, redirect_uri=REDIRECT_URI)
    tenant = xero_connections(tokens.access_token, tokens.extra.get("auth_event_id"))[0]
    XeroConnection.objects.create(
        portal=portal,
        tenant_id=tenant["tenantId"],
        tenant_name=tenant.get("tenantName", ""),
        connection_id=tenant.get("id", ""),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
        scope=tokens.scope,
    )


def _xero_invoices(sandbox_url: str, total: int) -> list[dict]:
    rows: list[dict] = []
    for start in range(0, total, 1000):
        answer = _control(
            sandbox_url,
            "/_sandbox/xero/invoices",
            {
                "Invoices": [
                    {
                        "Type": "ACCREC",
                        "Contact": {"Name": "Bench Customer Ltd"},
                        "Status": "AUTHORISED",
                        "LineItems": [
                            {"Description": "Widget", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}
                        ],
                    }
                    for _ in range(min(1000, total - start))
                ]
            },
        )
        if answer["failed"]:
            raise RuntimeError(f"the sandbox refused {answer['failed']} invoices")
        rows.extend(answer["Invoices"])
    return rows


def _bitrix24_invoices(client_endpoint: str, token: str, total: int) -> list[int]:
    from integrations.bitrix24.php_query import batch_command

    ids: list[int] = []
    for start in range(0, total, 50):
        cmd = {
            f"a{n}": batch_command(
                "crm.item.add", {"entityTypeId": 31, "fields": {"title": f"Bench {start + n}", "stageId": SENT}}
            )
            for n in range(min(50, total - start))
        }
        answer = _rest(client_endpoint, "batch", {"halt": 1, "cmd": cmd}, token)
        ids.extend(int(answer["result"][key]["item"]["id"]) for key in cmd)
    return ids


def _bitrix24_stages(client_endpoint: str, token: str, ids: list[int]) -> list[str]:
    from integrations.bitrix24.php_query import batch_command

    stages: list[str] = []
    for start in range(0, len(ids), 50):
        cmd = {f"g{i}": batch_command("crm.item.get", {"entityTypeId": 31, "id": i}) for i in ids[start : start + 50]}
        answer = _rest(client_endpoint, "batch", {"halt": 1, "cmd": cmd}, token)
        stages.extend(answer["result"][key]["item"]["stageId"] for key in cmd)
    return stages


def _links(portal, bitrix24_ids: list[int], xero_rows: list[dict]) -> None:
    from sync.mappers.canonical import invoice_pull_fingerprint
    from sync.models import InvoiceLink

    synced = invoice_pull_fingerprint("AUTHORISED", 0, stage_id=SENT)
    InvoiceLink.objects.bulk_create(
        (
            InvoiceLink(
                portal=portal,
                bitrix24_id=bitrix24_id,
                xero_invoice_id=row["InvoiceID"],
                xero_invoice_number=row["InvoiceNumber"],
                last_xero_status="AUTHORISED",
                last_bitrix24_stage_id=SENT,
                last_pulled_hash=synced,
            )
            for bitrix24_id, row in zip(bitrix24_ids, xero_rows, strict=True)
        ),
        batch_size=2000,
    )


# --- HTTP helpers -----------------------------------------------------------------------------------


def _control(sandbox_url: str, path: str, body: dict) -> dict:
    response = requests.post(f"{sandbox_url}{path}", json=body, timeout=120)
    response.raise_for_status()
    return response.json()


def _rest(client_endpoint: str, method: str, params: dict, token: str) -> dict:
    response = requests.post(
        f"{client_endpoint.rstrip('/')}/{method}.json", json={**params, "auth": token}, timeout=120
    )
    answer = response.json()
    if "error" in answer or answer.get("result", {}).get("result_error"):
        raise RuntimeError(f"{method}: {str(answer)[:300]}")
    return answer["result"]


def _last_call(sandbox_url: str) -> int:
    calls = requests.get(f"{sandbox_url}/_sandbox/calls", timeout=60).json()["calls"]
    return calls[-1]["id"] if calls else 0
