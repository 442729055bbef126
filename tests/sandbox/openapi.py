"""Talking to the fake Xero like a client, and checking what it says against Xero's OpenAPI spec.

`XeroClient` connects through the sandbox's OAuth flow and keeps every response (with its request) so
a test can validate the exchanges. The spec helpers read Xero's official OpenAPI files from the shared
folder beside the checkout (never copied into the project), patch the string booleans that keep them
from validating (xero-api.md §12), and check the /Date(...)/ format that validators ignore.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from sandbox.xero import strict

SPEC_DIR = strict.SPEC_DIR
SPEC_SERVER = strict.SPEC_SERVER
MS_DATE = strict.MS_DATE

CLIENT_ID = "contract-tests"
CLIENT_SECRET = "contract-tests-secret"
REDIRECT_URI = "http://127.0.0.1:9/xero/callback"
SCOPES = (
    "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings "
    "accounting.invoices accounting.payments accounting.settings.read"
)


# --- a client of the fake ------------------------------------------------------------------------
class XeroClient:
    """Calls the fake Accounting API with a real token and tenant, as xero-python would."""

    def __init__(self, base_url: str, access_token: str, tenant_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_url = f"{self.base_url}/xero/api.xro/2.0"
        self.tenant_id = tenant_id
        self.http = requests.Session()
        self.http.headers.update(
            {"Authorization": f"Bearer {access_token}", "xero-tenant-id": tenant_id, "Accept": "application/json"}
        )
        self.exchanges: list[requests.Response] = []

    @classmethod
    def connect(cls, sandbox) -> XeroClient:
        """Authorize, exchange the code for tokens, and pick the first connected organisation."""
        base = sandbox.base_url
        authorize = requests.get(
            f"{base}/xero/identity/connect/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPES,
                "state": "contract",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert authorize.status_code in (302, 303), authorize.text
        code = parse_qs(urlparse(authorize.headers["Location"]).query)["code"][0]
        token = requests.post(
            f"{base}/xero/identity/connect/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=10,
        )
        assert token.status_code == 200, token.text
        access_token = token.json()["access_token"]
        connections = requests.get(
            f"{base}/xero/connections", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
        )
        assert connections.status_code == 200, connections.text
        client = cls(base, access_token, connections.json()[0]["tenantId"])
        client.connections = connections
        return client

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        response = self.http.request(method, f"{self.api_url}{path}", **kwargs)
        self.exchanges.append(response)
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)


# --- the spec (shared with the sandbox's strict mode, sandbox/xero/strict.py) ----------------------
def spec_path(name: str) -> Path:
    path = strict.spec_file(name)
    if not path.is_file():
        pytest.skip(
            f"Xero's OpenAPI spec {name} is not at {path}. Put XeroAPI/Xero-OpenAPI's files in shared/spec/xero/ "
            "beside the checkout to run the contract tests (the project does not keep a copy)."
        )
    return path


def load_spec(name: str) -> dict:
    """The spec as plain JSON data with Xero's string booleans patched (skips when it is absent)."""
    spec_path(name)
    return strict.load_spec(name)


spec_url = strict.spec_url
response_schema = strict.response_schema
ms_date_problems = strict.ms_date_problems
validate_exchange = strict.validate_requests_exchange
