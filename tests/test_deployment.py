"""The production image and compose file refer only to what exists, and keep the image lean.

Docker's engine is not available everywhere the suite runs (it is not on the CI machine), so these
tests read the files and check every file, module and command they name; where `docker` answers,
the image is also built and run once.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> list[str]:
    command = service.get("command", [])
    return command if isinstance(command, list) else command.split()


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_compose_runs_web_worker_beat_postgres_and_redis_with_healthchecks_and_restarts(compose):
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    for name in (*APP_SERVICES, "postgres", "redis"):
        assert services[name].get("restart") in ("unless-stopped", "always", "on-failure"), name
    for name in ("web", "worker", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    # The web healthcheck uses the readiness probe; the app services wait for healthy backends.
    assert services["web"]["healthcheck"]["test"][-2:] == ["connector.probe", "ready"]
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DEBUG"] == "false"
    # Workers scale out: no fixed container name, no published port.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    assert "--scale worker=" in (ROOT / "docker-compose.yml").read_text()


def test_compose_refers_only_to_files_modules_and_commands_that_exist(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").is_file(), name
        if "env_file" in service:
            # .env is the operator's copy of .env.example
            assert service["env_file"] == ".env" and (ROOT / ".env.example").is_file()
        command = _command(service)
        if not command:
            continue
        program = command[0]
        if program == "python":
            if command[1] == "-m":
                assert _module_exists(command[2]), command
            else:
                assert (ROOT / command[1]).is_file(), command
        elif program == "gunicorn":
            config = command[command.index("--config") + 1]
            assert (ROOT / config).is_file(), command
            module, _, attribute = command[-1].partition(":")
            assert _module_exists(module) and attribute == "application", command
        elif program == "celery":
            assert command[1] == "-A" and (ROOT / f"{command[2]}.py").is_file(), command
            assert command[3] in ("worker", "beat"), command
        else:
            assert name in ("postgres", "redis") and program == "redis-server", command
    for name in ("web", "worker"):
        test = compose["services"][name]["healthcheck"]["test"]
        text = " ".join(test)
        if "connector.probe" in text:
            assert _module_exists("connector.probe")
        if "celery -A" in text:
            assert "celery -A celery_app inspect ping" in text


def test_the_dockerfile_builds_a_lean_non_root_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", dockerfile, re.M | re.I)
    assert len(stages) >= 2, "multi-stage build"
    assert re.search(r"^USER\s+(?!root\b|0\b)\w+", dockerfile, re.M), "non-root user"
    assert "requirements.txt" in dockerfile and "requirements-dev" not in dockerfile
    assert "collectstatic" in dockerfile
    assert re.search(r'CMD \["gunicorn", "--config", "gunicorn.conf.py"', dockerfile)
    # Everything COPY takes from the context exists, and the context leaves the dev-only parts out.
    for source in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+$", dockerfile, re.M):
        assert (ROOT / source).exists(), source
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"sandbox", "tests", "bench", "scripts", "requirements-dev.txt", ".env", ".venv"} <= ignored


def test_runtime_requirements_leave_the_sandbox_and_dev_tools_out():
    runtime = (ROOT / "requirements.txt").read_text().lower()
    for dev_only in ("flask", "pytest", "ruff", "mypy", "playwright", "hypothesis", "factory-boy"):
        assert not re.search(rf"^{dev_only}\b", runtime, re.M), dev_only
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert dev.startswith("-r requirements.txt") and re.search(r"^Flask==", dev, re.M)
    # Everything the web server and the workers load works without Flask (or the sandbox).
    script = (
        "import sys, django; django.setup(); import connector.urls, celery_app; "
        "celery_app.app.loader.import_default_modules(); "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sandbox', 'werkzeug')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "connector.settings", "DEBUG": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_gunicorn_reads_its_config_and_loads_the_app():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "connector.settings", "DEBUG": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--check-config",
            "--config",
            "gunicorn.conf.py",
            "connector.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(
    not _docker_available(), reason="no Docker engine on this machine (the file checks above still ran)"
)
def test_the_image_builds_and_runs_as_a_non_root_user_without_flask():
    tag = "bitrix24-xero-connector:test"
    subprocess.run(["docker", "build", "-t", tag, "."], cwd=ROOT, check=True, timeout=900)
    user = subprocess.run(["docker", "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, check=True)
    assert user.stdout.strip() != "0"
    flask = subprocess.run(["docker", "run", "--rm", tag, "python", "-c", "import flask"], capture_output=True)
    assert flask.returncode != 0
