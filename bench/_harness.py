"""What bench/push.py, bench/latency.py and bench/backfill.py share: the whole connector as real
processes against the sandbox, sample data made through Bitrix24 REST, and the figure tables.

`Stack` starts, on free ports and on the bench's throwaway database:
- the sandbox (`python -m sandbox --port N --quiet`), reset (limits off);
- our web server (`manage.py runserver --noreload`), where Bitrix24 events and Xero webhooks arrive;
- a Celery worker (`celery -A celery_app worker --concurrency=2`), the real task path;
and `Stack.setup()` runs `manage.py sandbox_setup` (install into the portal, connect Xero through
the OAuth code flow, point Xero webhooks at us, default stage map), exactly as the demo does.

Subprocesses run production-like: DEBUG off (so Django keeps no query log), with the bench
process's SECRET_KEY and FIELD_ENCRYPTION_KEY, so every process reads the same encrypted tokens.
Each is started in its own session and stopped by its process group, nothing else. Their output
goes to a temporary directory, named when something fails.
"""

from __future__ import annotations

import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests

from bench._forms import setup_accept_as_proposed

ROOT = Path(__file__).resolve().parent.parent
OAUTH = {
    "XERO_CLIENT_ID": "bench-xero-client",
    "XERO_CLIENT_SECRET": "bench-xero-secret",
    "BITRIX24_CLIENT_ID": "local.bench",
    "BITRIX24_CLIENT_SECRET": "bench-bitrix24-secret",
}
WEBHOOK_KEY = "bench-xero-webhook-key"
BATCH = 50  # Bitrix24: commands per batch call, items per list page; Xero: elements per write


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_flag(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in ("1", "true", "yes", "on")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return (
        f"postgres://{db.get('USER') or ''}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
        f"@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


class Stack:
    """Sandbox + web server + worker for the duration of a `with` (see the module docstring)."""

    def __init__(self, *, worker: bool = True, concurrency: int = 2, extra_env: dict[str, str] | None = None) -> None:
        self.with_worker = worker
        self.extra_env = extra_env or {}
        self.concurrency = concurrency
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs = Path(tempfile.mkdtemp(prefix="bench-"))
        self.sandbox_url = ""
        self.public_url = ""
        self.env: dict[str, str] = {}

    # --- lifecycle ---

    def __enter__(self) -> Stack:
        from django.conf import settings

        # A SIGTERM (`timeout`, Ctrl-C from a parent) unwinds through __exit__, so nothing is left running.
        self._sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            sandbox_port, web_port = free_port(), free_port()
            self.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
            self.public_url = f"http://127.0.0.1:{web_port}"
            self.env = {
                **os.environ,
                **OAUTH,
                "DJANGO_SETTINGS_MODULE": "connector.settings",
                "DATABASE_URL": database_url(),
                "SANDBOX_URL": self.sandbox_url,
                "PUBLIC_URL": self.public_url,
                "XERO_WEBHOOK_KEY": WEBHOOK_KEY,
                "DEBUG": "0",
                # Production settings need real keys: the bench process's own (bench/__main__.py makes
                # fresh ones per run), so it reads the tokens its subprocesses encrypted.
                "SECRET_KEY": settings.SECRET_KEY,
                "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
                # Plain HTTP on 127.0.0.1: no proxy in front to terminate TLS.
                "SECURE_SSL_REDIRECT": "0",
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
            # The bench process talks to the same sandbox and clients (polling, enqueueing).
            settings.SANDBOX_URL = self.sandbox_url
            settings.PUBLIC_URL = self.public_url
            settings.XERO_WEBHOOK_KEY = WEBHOOK_KEY
            for name, value in OAUTH.items():
                setattr(settings, name, value)

            self._start("sandbox", "-m", "sandbox", "--port", str(sandbox_port), "--quiet")
            self._wait(lambda: requests.post(f"{self.sandbox_url}/_sandbox/reset", timeout=2).ok, "sandbox")
            self._start("web", "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload")
            self._wait(lambda: requests.get(f"{self.public_url}/health/", timeout=2).status_code < 500, "web")
            if self.with_worker:
                self.start_worker()
            return self
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc) -> None:
        for name in reversed(list(self.procs)):
            self._stop(name)
        signal.signal(signal.SIGTERM, self._sigterm)

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.logs / f"{name}.log", "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            # The worker's main process alone: a warm shutdown lets its pool finish and ack.
            if name == "worker":
                os.kill(proc.pid, signal.SIGTERM)
            else:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self.procs.get(what)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}; see {self.logs / (what + '.log')}")
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start within {timeout}s; see {self.logs}")
            time.sleep(0.2)

    def start_worker(self) -> subprocess.Popen:
        proc = self._start(
            "worker",
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={self.concurrency}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"bench-{os.getpid()}-{time.monotonic_ns()}@%h",
        )
        log = self.logs / "worker.log"
        self._wait(lambda: b" ready." in log.read_bytes(), "worker")
        return proc

    @property
    def worker_pid(self) -> int:
        return self.procs["worker"].pid

    def setup(self, *, xero_webhooks: bool = True):
        """`manage.py sandbox_setup`: install, connect Xero, (Xero webhooks), stage map. -> Portal."""
        from accounts.models import Portal

        env = dict(self.env)
        if not xero_webhooks:
            env["XERO_WEBHOOK_KEY"] = ""  # sandbox_setup then leaves Xero's webhooks unpointed
        done = subprocess.run(
            [sys.executable, "manage.py", "sandbox_setup"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"sandbox_setup failed:\n{done.stdout}\n{done.stderr}")
        portal = Portal.objects.order_by("-pk").first()
        self.accept_setup()
        return portal

    def accept_setup(self) -> None:
        """The admin saves Setup as proposed (bench/_forms.py): automatic sync starts only then."""
        try:
            setup_accept_as_proposed(self.sandbox_url, self.public_url)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; see {self.logs / 'web.log'}") from None

    # --- sandbox ---

    def last_call_id(self) -> int:
        calls = requests.get(f"{self.sandbox_url}/_sandbox/calls", timeout=60).json()["calls"]
        return max((c["id"] for c in calls), default=0)

    def calls_since(self, mark: int) -> list[dict]:
        return requests.get(f"{self.sandbox_url}/_sandbox/calls", params={"since": mark}, timeout=60).json()["calls"]

    def user(self, name: str = "Bench Admin", admin: bool = True) -> dict:
        response = requests.post(
            f"{self.sandbox_url}/_sandbox/bitrix24/users", json={"name": name, "admin": admin}, timeout=10
        )
        response.raise_for_status()
        return response.json()


class CallWatcher:
    """The sandbox's call log, each call handed out once and only once it has finished.

    The log lists a call as soon as it starts (status and `finished` still empty), so a poller
    that moved its mark past every id it saw would pass over a call that was in flight at that
    poll, and never see it finish: the fairness bench counted such changes as 'not in Xero
    within 60 s' although their write had landed (4 of 842 in one run). The mark stays below the
    oldest call still in flight; calls after it that finished are handed out and remembered."""

    def __init__(self, fetch: Callable[[int], list[dict]], mark: int) -> None:
        self._fetch = fetch
        self._mark = mark
        self._given: set[int] = set()

    def finished(self) -> list[dict]:
        calls = self._fetch(self._mark)
        fresh = [c for c in calls if c["finished"] is not None and c["id"] not in self._given]
        in_flight = [c["id"] for c in calls if c["finished"] is None]
        self._given.update(c["id"] for c in fresh)
        if in_flight:
            self._mark = min(in_flight) - 1
        elif calls:
            self._mark = max(c["id"] for c in calls)
        self._given = {i for i in self._given if i > self._mark}
        return sorted(fresh, key=lambda c: c["id"])


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


# --- Bitrix24 sample data, through REST as a user ---------------------------------------------------


class Bitrix24User:
    """REST calls to the sandbox portal as one user (so the portal raises events like a person's)."""

    def __init__(self, stack: Stack, user: dict) -> None:
        self.base = f"{stack.sandbox_url}/bitrix24/rest/"
        self.token = user["access_token"]
        self.id = int(user["id"])
        self.http = requests.Session()

    def call(self, method: str, params: dict) -> object:
        body = self.http.post(f"{self.base}{method}.json", json={**params, "auth": self.token}, timeout=60).json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body}")
        return body["result"]

    def batch(self, cmd: dict[str, str]) -> dict:
        answer = self.call("batch", {"halt": 1, "cmd": cmd})
        if answer["result_error"]:
            raise RuntimeError(f"batch errors: {answer['result_error']}")
        return answer["result"]

    def companies(self, count: int, *, prefix: str = "Bench Company") -> list[int]:
        ids: list[int] = []
        for start in range(0, count, BATCH):
            cmd = {
                f"c{n}": f"crm.company.add?fields[TITLE]={quote(f'{prefix} {n + 1}')}"
                for n in range(start, min(count, start + BATCH))
            }
            ids.extend(int(v) for v in self.batch(cmd).values())
        return ids

    def invoices(self, company_ids: list[int], *, lines: int = 3, seed: int = 1) -> list[int]:
        """One invoice per entry of company_ids, each with `lines` product rows; 25 invoices per
        batch call (crm.item.add, then crm.item.productrow.set on `$result[...]`)."""
        rng = random.Random(seed)
        ids: list[int] = []
        per_call = BATCH // 2
        for start in range(0, len(company_ids), per_call):
            cmd: dict[str, str] = {}
            for n in range(start, min(len(company_ids), start + per_call)):
                cmd[f"a{n}"] = (
                    f"crm.item.add?entityTypeId=31&fields[title]={quote(f'Bench order {n + 1}')}"
                    f"&fields[companyId]={company_ids[n]}&fields[currencyId]=NZD"
                )
                cmd[f"r{n}"] = f"crm.item.productrow.set?ownerType=SI&ownerId=$result[a{n}][item][id]&" + _rows_query(
                    rng, lines
                )
            result = self.batch(cmd)
            ids.extend(
                int(result[f"a{n}"]["item"]["id"]) for n in range(start, min(len(company_ids), start + per_call))
            )
        return ids

    def old_invoices(self, company_ids: list[int], *, lines: int = 3, seed: int = 1) -> list[int]:
        """Old invoices (crm.invoice.add with PRODUCT_ROWS; the portal set to "invoices": "old"), one
        per entry of company_ids, 50 per batch call. Payer type 2 is CRM_COMPANY, payment method 6
        the sandbox's company invoice (crm.persontype.list / crm.paysystem.list)."""
        rng = random.Random(seed)
        ids: list[int] = []
        for start in range(0, len(company_ids), BATCH):
            cmd: dict[str, str] = {}
            for n in range(start, min(len(company_ids), start + BATCH)):
                rows = "&".join(
                    f"fields[PRODUCT_ROWS][{k}][PRODUCT_NAME]={quote(f'Product {rng.randint(1, 500)}')}"
                    f"&fields[PRODUCT_ROWS][{k}][PRICE]={rng.randint(5, 500)}.{rng.randint(0, 99):02d}"
                    f"&fields[PRODUCT_ROWS][{k}][QUANTITY]={rng.randint(1, 20)}"
                    for k in range(lines)
                )
                cmd[f"a{n}"] = (
                    f"crm.invoice.add?fields[ORDER_TOPIC]={quote(f'Bench order {n + 1}')}"
                    f"&fields[UF_COMPANY_ID]={company_ids[n]}&fields[PERSON_TYPE_ID]=2&fields[PAY_SYSTEM_ID]=6&{rows}"
                )
            result = self.batch(cmd)
            ids.extend(int(result[f"a{n}"]) for n in range(start, min(len(company_ids), start + BATCH)))
        return ids

    def invoice(self, company_id: int, *, lines: int = 3, title: str = "Latency order") -> int:
        """One invoice the way a person makes it: crm.item.add, then crm.item.productrow.set."""
        item = self.call(
            "crm.item.add",
            {"entityTypeId": 31, "fields": {"title": title, "companyId": company_id, "currencyId": "NZD"}},
        )
        invoice_id = int(item["item"]["id"])
        rows = [{"productName": f"Item {k + 1}", "price": f"{10 + k}.50", "quantity": k + 1} for k in range(lines)]
        self.call("crm.item.productrow.set", {"ownerType": "SI", "ownerId": invoice_id, "productRows": rows})
        return invoice_id


def _rows_query(rng: random.Random, lines: int) -> str:
    parts = []
    for k in range(lines):
        parts.append(f"productRows[{k}][productName]={quote(f'Product {rng.randint(1, 500)}')}")
        parts.append(f"productRows[{k}][price]={rng.randint(5, 500)}.{rng.randint(0, 99):02d}")
        parts.append(f"productRows[{k}][quantity]={rng.randint(1, 20)}")
    return "&".join(parts)


def spread(company_ids: list[int], invoices: int, seed: int = 7) -> list[int]:
    """The company of each invoice: every company gets at least one, the rest at random."""
    rng = random.Random(seed)
    owners = list(company_ids)[:invoices] + [rng.choice(company_ids) for _ in range(invoices - len(company_ids))]
    rng.shuffle(owners)
    return owners


# --- jobs and the worker ------------------------------------------------------------------------------


def push_click(portal, invoice_ids: list[int], requested_by: int | None, *, entity_type: int = 31) -> None:
    """What the "Create / Edit on Xero" button does, 1,000 invoices a click (its maximum)."""
    from sync.services.buttons import MAX_INVOICES_PER_CLICK, invoices_push_request

    for start in range(0, len(invoice_ids), MAX_INVOICES_PER_CLICK):
        invoices_push_request(
            portal=portal,
            invoice_ids=invoice_ids[start : start + MAX_INVOICES_PER_CLICK],
            requested_by=requested_by,
            entity_type=entity_type,
        )


def wait_push_jobs(portal, expected: int, *, timeout: float, on_tick=None) -> dict[str, int]:
    """Until `expected` PUSH_INVOICE jobs of the portal are finished (done/failed) and none is
    pending or running. -> counts by status."""
    from django.db.models import Count

    from sync.models import SyncJob

    deadline = time.monotonic() + timeout
    while True:
        counts = dict(
            SyncJob.objects.filter(portal=portal, kind=SyncJob.Kind.PUSH_INVOICE)
            .values_list("status")
            .annotate(n=Count("id"))
        )
        open_ = counts.get(SyncJob.Status.PENDING, 0) + counts.get(SyncJob.Status.RUNNING, 0)
        finished = counts.get(SyncJob.Status.DONE, 0) + counts.get(SyncJob.Status.FAILED, 0)
        if on_tick is not None:
            on_tick()
        if finished >= expected and not open_:
            return {str(k): v for k, v in counts.items()}
        if time.monotonic() > deadline:
            raise RuntimeError(f"push jobs not finished after {timeout:.0f}s: {counts}")
        time.sleep(0.2)


def failed_jobs_count() -> int:
    """Jobs and inbox rows that ended failed in the bench's database: a bench run that leaves any is
    a failed run, whatever its figures say (issue 17; bench/__main__.py checks it after each bench).
    A push job failed because its invoice is held (its total would differ in Xero: the invoice's
    outcome is `held`, with the reason in words) is not one: that is the connector doing its job,
    and `bench money` holds ~800 of its corpus on purpose."""
    from sync.models import InboxEvent, InvoiceOutcome, SyncJob

    held = {
        (portal_id, f"{entity_type}:{invoice_id}")
        for portal_id, entity_type, invoice_id in InvoiceOutcome.objects.filter(
            state=InvoiceOutcome.State.HELD
        ).values_list("portal_id", "bitrix24_entity_type", "bitrix24_id")
    }
    failed_jobs = SyncJob.objects.filter(status=SyncJob.Status.FAILED).values_list("portal_id", "kind", "target")
    return (
        sum(
            1
            for portal_id, kind, target in failed_jobs
            if kind != SyncJob.Kind.PUSH_INVOICE or (portal_id, target) not in held
        )
        + InboxEvent.objects.filter(status=InboxEvent.Status.FAILED).count()
    )


def process_group(pgid: int) -> list[int]:
    """Live processes in a process group (the worker: its main process and pool children)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # fields after "comm)": state, ppid, pgrp, ...
            pids.append(int(entry))
    return pids


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB ({} when it is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        return {}
    return out


# --- figures ------------------------------------------------------------------------------------------


def bitrix24_read_floor(invoices: int, lines: int, new_clients: int) -> tuple[int, int]:
    """(commands, batch calls) that reading this data cannot go below: list pages of 50 (invoices,
    product rows, the new clients and their requisite addresses), 50 commands a batch call, and
    two rounds at least when there are new clients (they are known only once the invoices are read)."""
    commands = math.ceil(invoices / BATCH) + math.ceil(invoices * lines / BATCH) + 2 * math.ceil(new_clients / BATCH)
    rounds = 2 if new_clients else 1
    return commands, max(rounds, math.ceil(commands / BATCH))


def bitrix24_old_read_floor(invoices: int, new_clients: int) -> tuple[int, int]:
    """The same for old invoices (crm.invoice.*): crm.invoice.list returns no rows, so each invoice
    is one crm.invoice.get (rows included); then the new clients and their addresses."""
    commands = invoices + 2 * math.ceil(new_clients / BATCH)
    rounds = 2 if new_clients else 1
    return commands, max(rounds, math.ceil(commands / BATCH))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(rows: list[tuple[str, object, object, str, str]]) -> None:
    """Print rows of (figure, measured, floor/target, ratio, verdict)."""
    head = ("figure", "measured", "floor/target", "ratio", "verdict")
    cells = [head, *[tuple(str(c) for c in row) for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for n, row in enumerate(cells):
        print("   " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip(), flush=True)
        if n == 0:
            print("   " + "  ".join("-" * w for w in widths), flush=True)


def verdict(ok: bool) -> str:
    return "within target" if ok else "MISSES target"


class SandboxProcess:
    """The sandbox as its own process on a free port, for the duration of a `with`."""

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(port), "--quiet"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.post(f"{url}/_sandbox/reset", timeout=2).raise_for_status()
                return url
            except requests.RequestException:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
