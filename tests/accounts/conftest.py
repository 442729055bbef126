"""Personas for the accounts tests: our web server (live_server) installed into the sandbox portal.

`acme` is the sandbox's portal with the app installed through the control API, exactly as Bitrix24
installs it: the installer POST and ONAPPINSTALL reach our live server over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from accounts.models import Portal

BITRIX24_CLIENT_ID = "local.accounts-tests"
BITRIX24_CLIENT_SECRET = "accounts-tests-secret"


@pytest.fixture
def app_url(live_server, settings, sandbox) -> str:
    """Our server's public URL, as the sandbox (and Xero's redirect) must reach it."""
    settings.PUBLIC_URL = live_server.url
    settings.SANDBOX_URL = sandbox.base_url
    settings.XERO_CLIENT_ID = "sandbox-client"
    settings.XERO_CLIENT_SECRET = "sandbox-secret"
    # Installs are verified against our client id (app.info); the marketplace knows it from the start.
    settings.BITRIX24_CLIENT_ID = BITRIX24_CLIENT_ID
    settings.BITRIX24_CLIENT_SECRET = BITRIX24_CLIENT_SECRET
    sandbox.bitrix24_settings(client_id=BITRIX24_CLIENT_ID, client_secret=BITRIX24_CLIENT_SECRET)
    return live_server.url


def install(sandbox, app_url: str) -> dict:
    return sandbox.bitrix24_install(
        app_url=f"{app_url}/bitrix24/app/",
        install_url=f"{app_url}/bitrix24/install/",
        event_url=f"{app_url}/bitrix24/events/",
    )


@pytest.fixture
def acme(sandbox, app_url) -> Portal:
    installed = install(sandbox, app_url)
    assert installed["install_status"] == 200, installed
    return Portal.objects.get(member_id=installed["member_id"])


@dataclass
class Frame:
    """A Bitrix24 user signed in from the app frame: `token` is the ?ft= the pages carry."""

    response: requests.Response
    token: str
    http: requests.Session

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.http.get(url, params={"ft": self.token}, timeout=30, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.http.post(url, params={"ft": self.token}, timeout=30, **kwargs)


def open_frame(sandbox, user_id: int, placement: str = "DEFAULT", options: dict | None = None, **overrides) -> Frame:
    """POST what Bitrix24 POSTs into the app's iframe (form fields can be overridden to forge)."""
    request = sandbox.bitrix24_frame(user_id, placement=placement, options=options)
    form = {**request["form"], **overrides}
    http = requests.Session()
    response = http.post(request["url"], data=form, timeout=30)
    token = parse_qs(urlparse(response.url).query).get("ft", [""])[0]
    return Frame(response=response, token=token, http=http)


@pytest.fixture
def admin_frame(sandbox, acme) -> Frame:
    frame = open_frame(sandbox, 1)
    assert frame.response.status_code == 200, frame.response.text
    return frame


@pytest.fixture
def clerk(sandbox) -> dict:
    """A sales clerk: not a Bitrix24 admin."""
    return sandbox.bitrix24_user("Sam Clerk", admin=False)
