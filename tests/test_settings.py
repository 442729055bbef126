"""Settings come from the environment: an embedded default with nothing set, production refuses to
start without its secrets and says which one is missing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOW = (
    "import django, json; from django.conf import settings; django.setup(); "
    "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'], 'broker': settings.CELERY_BROKER_URL}))"
)


def _run(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEY",
            "DEBUG",
            "SANDBOX_URL",
            "BITRIX24_CLIENT_ID",
            "PUBLIC_URL",
            "ALLOWED_HOSTS",
        }
    }
    env["DJANGO_SETTINGS_MODULE"] = "connector.settings"
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_in_development_with_nothing_else_it_runs_on_sqlite_and_a_filesystem_broker():
    result = _run({"DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.sqlite3"' in result.stdout
    assert '"broker": "filesystem://"' in result.stdout


def test_with_database_and_redis_urls_it_runs_on_postgresql_and_redis():
    result = _run(
        {"DEBUG": "1", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    )
    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout
    assert '"broker": "redis://127.0.0.1:6379/0"' in result.stdout


def test_production_refuses_to_start_without_secret_key_and_names_it():
    result = _run({"DEBUG": "false", "FIELD_ENCRYPTION_KEY": "x" * 44})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_refuses_to_start_without_the_field_encryption_key_and_names_it():
    result = _run({"DEBUG": "false", "SECRET_KEY": "s" * 50, "BITRIX24_CLIENT_ID": "app.x"})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY is not set" in result.stderr


def test_production_starts_with_both_secrets():
    key = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
    result = _run(
        {"DEBUG": "false", "SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEY": key, "BITRIX24_CLIENT_ID": "app.x"}
    )
    assert result.returncode == 0, result.stderr
