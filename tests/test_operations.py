"""What an operator relies on: /health/, /ready/, /metrics (web and worker), log lines with ids."""

from __future__ import annotations

import json
import logging
import re
import socket

import pytest

from connector import logcontext

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- probes ------------------------------------------------------------------------------------------


def test_health_says_alive_and_nothing_more(client):
    answer = client.get("/health/")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_ready_checks_database_migrations_and_redis(client):
    answer = client.get("/ready/")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"status": "ok", "database": "ok", "migrations": "ok", "redis": "ok"}


def test_ready_names_what_is_down_without_the_error_text(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    answer = client.get("/ready/")
    assert answer.status_code == 503
    body = answer.json()
    assert body["down"] == ["redis"] and body["redis"] == "down" and body["database"] == "ok"
    assert "refused" not in answer.content.decode().lower() and "127.0.0.1" not in answer.content.decode()


# --- the metrics endpoint ----------------------------------------------------------------------------


def test_metrics_are_off_without_a_token_and_refused_with_a_wrong_one(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    answer = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert answer.status_code == 200
    assert "connector_job_oldest_pending_age_seconds" in answer.content.decode()


# --- log lines -----------------------------------------------------------------------------------------


def test_each_line_carries_the_ids_of_what_it_is_about_as_json(settings):
    from pythonjsonlogger.json import JsonFormatter

    stream_records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            stream_records.append(self.format(record))

    handler = Capture()
    handler.addFilter(logcontext.ContextFilter())
    config = settings.LOGGING["formatters"]["json"]
    handler.setFormatter(
        JsonFormatter(config["format"], rename_fields=config["rename_fields"], timestamp=config["timestamp"])
    )
    log = logging.getLogger("tests.ops.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        tokens = logcontext.set_values(request_id="req-1")
        with logcontext.bind(portal=7, invoice=42, job=9):
            log.warning("pushed")
        logcontext.reset(tokens)
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream_records)
    assert inside | {"timestamp": ""} == {
        "level": "WARNING",
        "logger": "tests.ops.json",
        "message": "pushed",
        "request_id": "req-1",
        "portal": "7",
        "invoice": "42",
        "job": "9",
        "task": "",
        "pid": inside["pid"],
        "timestamp": "",
    }
    assert outside["portal"] == outside["invoice"] == outside["request_id"] == ""


def test_production_logs_json_with_both_filters_and_development_plain(settings):
    from connector import settings as project_settings

    handler = project_settings.LOGGING["handlers"]["console"]
    # The redaction filter (security) and the context filter (ids) both sit on the one handler.
    assert set(handler["filters"]) == {"log_context", "redact_secrets"}
    assert {"json", "plain"} <= set(project_settings.LOGGING["formatters"])


def test_a_request_gets_an_id_echoed_back(client):
    answer = client.get("/health/", HTTP_X_REQUEST_ID="abc-123")
    assert answer["X-Request-ID"] == "abc-123"
    generated = client.get("/health/", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_a_celery_task_binds_the_ids_its_arguments_name():
    class Task:
        name = "sync.tasks.push.push_invoices_task"

        def run(self, portal_id, job_id=None):
            pass

    values = logcontext.celery_task_context(Task(), "tid-1", (3,), {"job_id": 5})
    assert values == {"request_id": "tid-1", "task": Task.name, "portal": "3", "job": "5"}


# --- set-up files ---------------------------------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _dotenv(path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_env_example_copied_to_env_runs_in_development_and_is_not_the_test_database():
    import os
    import subprocess
    import sys

    example = ROOT / ".env.example"
    values = _dotenv(example)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | values
    show = (
        "import django, json; from django.conf import settings; django.setup(); "
        "print(json.dumps([settings.DEBUG, settings.DATABASES['default']['ENGINE']]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", show],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "connector.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, "django.db.backends.sqlite3"]
    makefile = (ROOT / "Makefile").read_text()
    test_database = re.search(r"TEST_DATABASE_URL \?= (\S+)", makefile).group(1)
    mentioned = re.findall(r"DATABASE_URL=(\S+)", example.read_text())
    assert mentioned and test_database not in mentioned


def test_every_setting_read_from_the_environment_is_in_env_example():
    settings_source = (ROOT / "connector" / "settings.py").read_text()
    names = set(re.findall(r'env\.(?:str|int|bool|float|list|db|path)\(\s*"([A-Z0-9_]+)"', settings_source))
    names |= set(re.findall(r'_required_in_production\(\s*"([A-Z0-9_]+)"', settings_source))
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert names - documented == set()


def _run_demo_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_demo", ROOT / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_creates_a_missing_postgresql_database_whatever_its_name_or_says_why_not():
    import os
    import uuid
    from urllib.parse import quote

    import psycopg
    from psycopg import sql

    run_demo = _run_demo_module()
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    name = f"ops demo-{uuid.uuid4().hex[:8]}"
    try:
        run_demo.postgres_database_ensure(f"{base}/{quote(name)}")
        run_demo.postgres_database_ensure(f"{base}/{quote(name)}")  # there already: nothing to do
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    with pytest.raises(SystemExit, match=r"make run: PostgreSQL at .* is not usable: .*refused"):
        run_demo.postgres_database_ensure(f"postgres://postgres@127.0.0.1:{_free_port()}/x")
