"""`make run`: the whole connector against the sandbox, on one machine, until Ctrl-C.

Starts the sandbox (fake Bitrix24 + Xero), the web server, a Celery worker and beat; installs the
app into the sandbox portal and connects the sandbox Xero organisation (manage.py sandbox_setup
--seed); prints the URLs to open.

Which database and broker (printed at start):

- `EMBEDDED=1` (`make run EMBEDDED=1`): SQLite and kombu's filesystem broker under `.run/`
  (git-ignored, removed by `make clean`), whatever else is set or running.
- Otherwise `DATABASE_URL` / `REDIS_URL` when set (environment or `.env`); a PostgreSQL database
  that does not exist yet is created, whatever its name; if that is impossible the demo stops
  and says why.
- Otherwise PostgreSQL (database `connector_demo`) and Redis (db 0) when they answer on their
  standard local ports; the embedded mode for whichever does not.

Ports: `WEB_PORT` (default 8000) and `SANDBOX_PORT` (default 8090). A default port that is taken
is replaced by a free one; a port you set that is taken stops the demo.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RUN_DIR = Path(os.environ.get("EMBEDDED_DIR") or ROOT / ".run")
DEMO_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/connector_demo"
DEMO_REDIS_URL = "redis://127.0.0.1:6379/0"
# A second sandbox user who sees only their own invoices: open the portal as them to see
# Bitrix24's permissions at work.
DEMO_DEFAULTS = {
    "XERO_CLIENT_ID": "demo-xero-client",
    "XERO_CLIENT_SECRET": "demo-xero-secret",
    "XERO_WEBHOOK_KEY": "demo-xero-webhook-key",
    "BITRIX24_CLIENT_ID": "app.demo.connector",
    "BITRIX24_CLIENT_SECRET": "demo-bitrix24-secret",
    "METRICS_TOKEN": "demo-metrics-token",
}
SALES_USER = {"name": "Sam Sales (own invoices only)", "admin": False, "invoices": "own"}


class DemoError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"make run: {message}")


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _port(env: dict[str, str], name: str, default: int) -> int:
    """The port to listen on: the one set in `name` (which must be free), else the default or a free one."""
    if env.get(name):
        port = int(env[name])
        if _port_open(port):
            raise DemoError(f"{name}={port} is taken by another program; choose another port")
        return port
    if not _port_open(default):
        return default
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(f"  port {default} is taken; using {port} (set {name} to choose)")
    return port


def _read_dotenv(env: dict[str, str]) -> None:
    """The values of .env that the environment does not set (settings read .env the same way)."""
    path = ROOT / ".env"
    if not path.exists():
        return
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().removeprefix("export ").strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    for key, value in values.items():
        env.setdefault(key, value)


def postgres_database_ensure(url: str) -> None:
    """Create the database named in `url` when PostgreSQL answers and it is missing. Raises
    DemoError with the reason (server down, authentication, no right to create) otherwise."""
    import psycopg
    from psycopg import sql

    parsed = urlparse(url)
    name = unquote(parsed.path.lstrip("/"))
    if not name:
        raise DemoError(f"DATABASE_URL {_safe(url)} names no database")
    params = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": unquote(parsed.username or "") or None,
        "password": unquote(parsed.password or "") or None,
        "connect_timeout": 3,
    }
    try:
        with psycopg.connect(dbname=name, **params):
            return
    except psycopg.OperationalError as exc:
        if f'database "{name}" does not exist' not in str(exc):
            raise DemoError(f"PostgreSQL at {_safe(url)} is not usable: {_first_line(exc)}") from None
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"  created PostgreSQL database {name}")
    except psycopg.Error as exc:
        raise DemoError(
            f"database {name} does not exist and could not be created ({_first_line(exc)}). "
            f"Create it yourself (createdb {name}), point DATABASE_URL at another one, or run `make run EMBEDDED=1`."
        ) from None


def _redis_check(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise DemoError(
            f"Redis at {_safe(url)} does not answer ({exc}); start it or run `make run EMBEDDED=1`"
        ) from None


def _safe(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def demo_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every demo process runs with (see the module's docstring)."""
    env = dict(os.environ if base is None else base)
    _read_dotenv(env)
    embedded = env.get("EMBEDDED", "").lower() in {"1", "true", "yes", "on"}
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    env["EMBEDDED_DIR"] = str(RUN_DIR)
    if embedded:
        env["DATABASE_URL"] = f"sqlite:///{RUN_DIR / 'db.sqlite3'}"
        env["REDIS_URL"] = ""  # set and empty: a REDIS_URL in .env is not read either
    else:
        if not env.get("DATABASE_URL"):
            if _port_open(5432):
                try:
                    postgres_database_ensure(DEMO_DATABASE_URL)
                    env["DATABASE_URL"] = DEMO_DATABASE_URL
                except DemoError as exc:
                    print(f"  {exc.code}; using SQLite instead")
            if not env.get("DATABASE_URL"):
                env["DATABASE_URL"] = f"sqlite:///{RUN_DIR / 'db.sqlite3'}"
        elif env["DATABASE_URL"].startswith(("postgres://", "postgresql://", "pgsql://")):
            postgres_database_ensure(env["DATABASE_URL"])
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = DEMO_REDIS_URL if _port_open(6379) else ""
        else:
            _redis_check(env["REDIS_URL"])
    if not env["REDIS_URL"]:
        env.setdefault("BROKER_DIR", str(RUN_DIR / "broker"))
    sandbox_port = _port(env, "SANDBOX_PORT", 8090)
    web_port = _port(env, "WEB_PORT", 8000)
    # The demo always talks to its own sandbox, and is reached on its own port.
    env["SANDBOX_URL"] = f"http://127.0.0.1:{sandbox_port}"
    env["PUBLIC_URL"] = f"http://127.0.0.1:{web_port}"
    # A demo on the local sandbox: development mode (plain HTTP, development keys), whatever .env says.
    env["DEBUG"] = "1"
    # Metrics of the web server and the worker added up on /metrics (prometheus-client's
    # multiprocess mode; the folder is emptied at each start).
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = RUN_DIR / "prometheus"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    # Empty values (as .env.example has them) count as unset.
    for name, value in DEMO_DEFAULTS.items():
        if not env.get(name):
            env[name] = value
    env["PYTHONUNBUFFERED"] = "1"
    env["_SANDBOX_PORT"] = str(sandbox_port)
    env["_WEB_PORT"] = str(web_port)
    return env


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"{' '.join(map(str, proc.args[:4]))} exited with {proc.returncode}; see the log above")
        try:
            with urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.3)
    raise DemoError(f"{url} did not answer within {timeout}s")


def _sandbox_sales_user(sandbox_url: str) -> int | None:
    """The sales user's id, created on the first run (the sandbox keeps its state while it runs)."""
    try:
        with urlopen(f"{sandbox_url}/_sandbox/bitrix24/users", timeout=5) as response:
            users = json.load(response)["users"]
        for user in users:
            if user.get("name") == SALES_USER["name"]:
                return int(user["id"])
        request = Request(
            f"{sandbox_url}/_sandbox/bitrix24/users",
            data=json.dumps(SALES_USER).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urlopen(request, timeout=5) as response:
            return int(json.load(response)["id"])
    except Exception as exc:  # the demo still runs; only the second user is missing
        print(f"  (could not create the sandbox sales user: {exc})")
        return None


ADMIN_SCRIPT = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
django.setup()
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
user.is_staff = user.is_superuser = True
user.set_password(os.environ["_ADMIN_PASSWORD"])
user.save()
"""


def describe(env: dict[str, str]) -> tuple[str, str]:
    database = env["DATABASE_URL"]
    if database.startswith("sqlite"):
        db_text = f"SQLite {database.removeprefix('sqlite:///')} (embedded)"
    else:
        parsed = urlparse(database)
        db_text = f"PostgreSQL database {unquote(parsed.path.lstrip('/'))} on {parsed.hostname}:{parsed.port or 5432}"
    if env["REDIS_URL"]:
        parsed = urlparse(env["REDIS_URL"])
        broker = f"Redis db {parsed.path.lstrip('/') or '0'} on {parsed.hostname}:{parsed.port or 6379}"
    else:
        broker = f"filesystem broker in {env['BROKER_DIR']} (embedded: one worker process)"
    return db_text, broker


def main() -> int:
    env = demo_environment()
    db_text, broker = describe(env)
    print(f"Demo on {db_text} and {broker}", flush=True)

    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    admin_password = secrets.token_urlsafe(9)
    subprocess.run([PY, "-c", ADMIN_SCRIPT], cwd=ROOT, env={**env, "_ADMIN_PASSWORD": admin_password}, check=True)

    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([PY, *args], cwd=ROOT, env=env, start_new_session=True)
        procs.append(proc)
        return proc

    def stop_all(*_):
        # The main process of each (Celery's warm shutdown stops its pool children itself); the
        # whole group only if it does not stop in time.
        for proc in reversed(procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        sandbox = start("-m", "sandbox", "--port", env["_SANDBOX_PORT"], "--quiet")
        _wait_http(f"{env['SANDBOX_URL']}/_sandbox/state", sandbox)
        web = start("manage.py", "runserver", f"127.0.0.1:{env['_WEB_PORT']}", "--noreload")
        _wait_http(f"{env['PUBLIC_URL']}/health/", web)
        concurrency = "2" if env.get("REDIS_URL") else "1"
        start("-m", "celery", "-A", "celery_app", "worker", "--loglevel=INFO", f"--concurrency={concurrency}")
        start(
            "-m", "celery", "-A", "celery_app", "beat", "--loglevel=INFO", "--schedule", str(RUN_DIR / "beat-schedule")
        )
        subprocess.run([PY, "manage.py", "sandbox_setup", "--seed"], cwd=ROOT, env=env, check=True)
        sales_user = _sandbox_sales_user(env["SANDBOX_URL"])

        portal = f"{env['SANDBOX_URL']}/bitrix24/portal/"
        print()
        print("=" * 78)
        print("  The connector is running.")
        print(f"  Open the app in the sandbox Bitrix24 portal (admin):  {portal}?user=1")
        if sales_user:
            print(f"  ... as a sales user who sees only their invoices:   {portal}?user={sales_user}")
        print(f"  Django admin (user admin, password {admin_password}):  {env['PUBLIC_URL']}/admin/")
        print(f"  Sandbox state (both fakes, as JSON):                 {env['SANDBOX_URL']}/_sandbox/state")
        print(f"  Readiness / metrics:  {env['PUBLIC_URL']}/ready/   and")
        print(f"    curl -H 'Authorization: Bearer {env['METRICS_TOKEN']}' {env['PUBLIC_URL']}/metrics")
        print(f"  Database: {db_text}")
        print(f"  Broker:   {broker}")
        print("  Ctrl-C stops everything this command started.")
        print("=" * 78, flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        dead = [p for p in procs if p.poll() is not None]
        print(
            f"A process stopped ({' '.join(map(str, dead[0].args[:4]))}, exit {dead[0].returncode}); stopping the rest."
        )
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
