"""Personas and helpers for the Bitrix24 client tests: a portal installed by an admin of the
sandbox portal, its invoices, and a look at the sandbox's call log.

Import the fixtures into a test module (`from tests.integrations.bitrix24_fixtures import ...`);
tests/integrations/conftest.py belongs to another part of the suite.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from accounts.models import Portal
from sandbox.client import SandboxClient
from tests.factories import PortalFactory

CLIENT_ID = "app.connector.test"
CLIENT_SECRET = "connector-test-secret"


def portal_from_token_data(data: dict) -> Portal:
    """A Portal row the way the install flow stores one, from a sandbox user's token data."""
    return PortalFactory(
        member_id=data["member_id"],
        domain=data["domain"],
        client_endpoint=data["client_endpoint"],
        server_endpoint=data.get("server_endpoint", ""),
        access_token=data["access_token"],
        refresh_token=data["refresh_token"],
        token_expires_at=dt.datetime.fromtimestamp(data["expires"], dt.UTC),
        scope="crm,placement,user,catalog",
    )


@pytest.fixture
def b24_app(settings, sandbox):
    """Our app's OAuth credentials, known to the portal's OAuth server from the start (as the
    marketplace knows an app's), so app.info names our client id."""
    settings.BITRIX24_CLIENT_ID = CLIENT_ID
    settings.BITRIX24_CLIENT_SECRET = CLIENT_SECRET
    sandbox.bitrix24_settings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def acme_admin(sandbox: SandboxClient) -> dict:
    """The portal admin who installed the app: {"id", "access_token", "refresh_token", ...}."""
    return sandbox.bitrix24_user("Ada Admin", admin=True, invoices="all")


@pytest.fixture
def acme_portal(db, b24_app, acme_admin) -> Portal:
    return portal_from_token_data(acme_admin)


def add_invoices(sandbox: SandboxClient, admin_token: str, count: int, *, assigned_to: int | None = None) -> list[int]:
    """`count` new invoices, added through the sandbox's own batch (hand-written command strings,
    so the seeding does not depend on the code under test). Returns their ids."""
    ids: list[int] = []
    for start in range(0, count, 50):
        cmd = {}
        for n in range(start, min(start + 50, count)):
            command = f"crm.item.add?entityTypeId=31&fields[title]=Invoice%20{n}&fields[opportunity]={100 + n}"
            if assigned_to is not None:
                command += f"&fields[assignedById]={assigned_to}"
            cmd[f"i{n}"] = command
        answer = sandbox.bitrix24_rest("batch", {"halt": 1, "cmd": cmd}, auth=admin_token)
        assert not answer["result"]["result_error"], answer["result"]["result_error"]
        ids.extend(answer["result"]["result"][f"i{n}"]["item"]["id"] for n in range(start, min(start + 50, count)))
    return ids


def last_call_id(sandbox: SandboxClient) -> int:
    calls = sandbox.calls()
    return calls[-1]["id"] if calls else 0


def bitrix24_calls_since(sandbox: SandboxClient, since: int) -> list[dict]:
    return sandbox.calls(since=since, system="bitrix24")


def rest_calls(calls: list[dict]) -> list[str]:
    """The REST method names called, in order (OAuth-server calls left out)."""
    return [c["target"] for c in calls if c["path"].startswith("/bitrix24/rest/")]


def oauth_token_calls(calls: list[dict]) -> list[dict]:
    return [c for c in calls if c["path"].rstrip("/").endswith("/bitrix24/oauth/token")]


@dataclass
class Received:
    path: str
    query: dict[str, str]
    form: dict[str, str]


class AppReceiver:
    """Our app's URLs as the sandbox portal sees them: a real HTTP server on 127.0.0.1 that answers
    200 and keeps every POST (installer page, events, frames) for the test to parse."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                path, _, query = self.path.partition("?")
                receiver.received.append(
                    Received(path, dict(parse_qsl(query)), dict(parse_qsl(body, keep_blank_values=True)))
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, path: str, *, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.received if r.path == path]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"nothing was POSTed to {path} within {timeout}s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_receiver():
    receiver = AppReceiver()
    yield receiver
    receiver.close()


class MovedPortal:
    """A portal's old address after a domain change: every request answers 302 to the same path
    on the new address, as Bitrix24 does (§2.1). Counts the requests it receives."""

    def __init__(self, new_base: str) -> None:
        self.hits = 0
        moved = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                moved.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(302)
                self.send_header("Location", new_base.rstrip("/") + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
