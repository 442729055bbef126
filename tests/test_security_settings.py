"""Secure by default (issue 8, points 2 and 8): DEBUG off unless asked for; production refuses
placeholder or missing secrets and a missing Bitrix24 client id; the encryption key is never derived
from SECRET_KEY; ALLOWED_HOSTS comes from PUBLIC_URL; `check --deploy` is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FERNET_KEY = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
PRODUCTION = {
    "SECRET_KEY": "k3Yq-8vZ_" * 7,
    "FIELD_ENCRYPTION_KEY": FERNET_KEY,
    "BITRIX24_CLIENT_ID": "app.connector.example",
    "PUBLIC_URL": "https://connector.example.com",
}
SHOW = (
    "import django, json; from django.conf import settings; django.setup(); "
    "print(json.dumps({'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS, "
    "'key': settings.FIELD_ENCRYPTION_KEY}))"
)


def _env(overrides: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**keep, "DJANGO_SETTINGS_MODULE": "connector.settings", **overrides}


def _python(code: str, overrides: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(overrides), capture_output=True, text=True, timeout=60
    )


def test_debug_is_off_when_nothing_says_otherwise():
    result = _python(SHOW, PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert '"debug": false' in result.stdout


def test_without_debug_and_without_secrets_it_refuses_to_start():
    result = _python(SHOW, {})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_the_placeholder_secret_key_from_env_example_is_refused():
    result = _python(SHOW, {**PRODUCTION, "SECRET_KEY": "change-me-to-a-long-random-string"})
    assert result.returncode != 0
    assert "placeholder" in result.stderr


def test_a_short_secret_key_is_refused():
    result = _python(SHOW, {**PRODUCTION, "SECRET_KEY": "x" * 20})
    assert result.returncode != 0 and "too short" in result.stderr


def test_the_development_encryption_key_is_refused_in_production():
    dev = _python(SHOW, {"DEBUG": "1"})
    assert dev.returncode == 0, dev.stderr
    dev_key = dev.stdout.split('"key": "')[1].split('"')[0]
    result = _python(SHOW, {**PRODUCTION, "FIELD_ENCRYPTION_KEY": dev_key})
    assert result.returncode != 0 and "placeholder" in result.stderr


def test_the_encryption_key_is_never_derived_from_the_secret_key():
    one = _python(SHOW, {"DEBUG": "1", "SECRET_KEY": "a" * 60})
    two = _python(SHOW, {"DEBUG": "1", "SECRET_KEY": "b" * 60})
    assert one.returncode == two.returncode == 0
    assert one.stdout.split('"key"')[1] == two.stdout.split('"key"')[1]


def test_an_invalid_encryption_key_is_refused_with_directions():
    result = _python(SHOW, {**PRODUCTION, "FIELD_ENCRYPTION_KEY": "not-a-key"})
    assert result.returncode != 0 and "Fernet" in result.stderr


def test_production_refuses_to_start_without_the_bitrix24_client_id():
    result = _python(SHOW, {k: v for k, v in PRODUCTION.items() if k != "BITRIX24_CLIENT_ID"})
    assert result.returncode != 0
    assert "BITRIX24_CLIENT_ID is not set" in result.stderr


def test_allowed_hosts_come_from_public_url():
    result = _python(SHOW, PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert '"hosts": ["connector.example.com"]' in result.stdout


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_env(PRODUCTION),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_dockerfile_never_turns_debug_on():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DEBUG=1" not in dockerfile.replace(" ", "") and "DEBUG=true" not in dockerfile.replace(" ", "").lower()
