"""`make run`: the whole connector against the sandbox, on one machine, until Ctrl-C.

Starts the sandbox (fake Bitrix24 + Xero), the web server, a Celery worker and beat; installs the
app into the sandbox portal and connects the sandbox Xero organisation (manage.py sandbox_setup
--seed); prints the URL to open. Uses PostgreSQL and Redis when they answer on their standard local
ports (or DATABASE_URL / REDIS_URL when set), otherwise the embedded default (SQLite + a filesystem
broker) that needs no server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port(preferred: int) -> int:
    if not _port_open(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_postgres_database(url: str) -> bool:
    """Create the demo database if PostgreSQL answers and it does not exist yet."""
    try:
        import psycopg
    except ImportError:
        return False
    name = url.rsplit("/", 1)[-1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return True
    except Exception as exc:
        print(f"  (PostgreSQL not usable: {exc}); falling back to SQLite")
        return False


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # A demo on the local sandbox: development mode (plain HTTP, development keys). DEBUG defaults
    # to off, so the demo asks for it explicitly.
    env.setdefault("DEBUG", "1")
    if "DATABASE_URL" not in env and _port_open(5432):
        url = "postgres://postgres@127.0.0.1:5432/connector_demo"
        if _ensure_postgres_database(url):
            env["DATABASE_URL"] = url
    if "REDIS_URL" not in env and _port_open(6379):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    sandbox_port = _free_port(int(env.get("SANDBOX_PORT", 8090)))
    web_port = _free_port(int(env.get("WEB_PORT", 8000)))
    env.setdefault("SANDBOX_URL", f"http://127.0.0.1:{sandbox_port}")
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{web_port}")
    env.setdefault("XERO_CLIENT_ID", "demo-xero-client")
    env.setdefault("XERO_CLIENT_SECRET", "demo-xero-secret")
    env.setdefault("XERO_WEBHOOK_KEY", "demo-xero-webhook-key")
    env.setdefault("BITRIX24_CLIENT_ID", "app.demo.connector")
    env.setdefault("BITRIX24_CLIENT_SECRET", "demo-bitrix24-secret")
    env["PYTHONUNBUFFERED"] = "1"
    env["_SANDBOX_PORT"] = str(sandbox_port)
    env["_WEB_PORT"] = str(web_port)
    return env


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(proc.args[:4])} exited with {proc.returncode}; see the log above")
        try:
            with urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def main() -> int:
    env = _environment()
    mode = "PostgreSQL" if env.get("DATABASE_URL", "").startswith("postgres") else "SQLite (embedded)"
    broker = "Redis" if env.get("REDIS_URL") else "filesystem broker (embedded, single worker process)"
    print(f"Demo on {mode} and {broker}")

    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([PY, *args], cwd=ROOT, env=env, start_new_session=True)
        procs.append(proc)
        return proc

    def stop_all(*_):
        for proc in reversed(procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        sandbox = start("-m", "sandbox", "--port", env["_SANDBOX_PORT"], "--quiet")
        _wait_http(f"{env['SANDBOX_URL']}/_sandbox/state", sandbox)
        web = start("manage.py", "runserver", f"127.0.0.1:{env['_WEB_PORT']}", "--noreload")
        _wait_http(f"{env['PUBLIC_URL']}/health/", web)
        concurrency = "2" if env.get("REDIS_URL") else "1"
        start("-m", "celery", "-A", "celery_app", "worker", "--loglevel=INFO", f"--concurrency={concurrency}")
        start("-m", "celery", "-A", "celery_app", "beat", "--loglevel=INFO", "--schedule", str(ROOT / ".beat-schedule"))
        subprocess.run([PY, "manage.py", "sandbox_setup", "--seed"], cwd=ROOT, env=env, check=True)

        portal = f"{env['SANDBOX_URL']}/bitrix24/portal/?user=1"
        print()
        print("=" * 72)
        print("  The connector is running.")
        print(f"  Open the app inside the sandbox Bitrix24 portal:  {portal}")
        print(f"  The connector itself:                              {env['PUBLIC_URL']}/health/")
        print(f"  Sandbox state (both fakes, as JSON):               {env['SANDBOX_URL']}/_sandbox/state")
        print("  Ctrl-C stops everything this command started.")
        print("=" * 72, flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        dead = [p for p in procs if p.poll() is not None]
        print(f"A process stopped ({' '.join(dead[0].args[:4])}, exit {dead[0].returncode}); stopping the rest.")
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
