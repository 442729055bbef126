"""Talking to the fake Xero like a client, and checking what it says against Xero's OpenAPI spec.

`XeroClient` connects through the sandbox's OAuth flow and keeps every response (with its request) so
a test can validate the exchanges. The spec helpers read Xero's official OpenAPI files from the shared
folder beside the checkout (never copied into the project), patch the string booleans that keep them
from validating (xero-api.md §12), and check the /Date(...)/ format that validators ignore.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import yaml

SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "xero"
SPEC_SERVER = "https://api.xero.com/api.xro/2.0"
MS_DATE = re.compile(r"^/Date\(-?\d+([+-]\d{4})?\)/$")

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


# --- the spec ------------------------------------------------------------------------------------
def spec_path(name: str) -> Path:
    path = SPEC_DIR / name
    if not path.is_file():
        pytest.skip(
            f"Xero's OpenAPI spec {name} is not at {path}. Put XeroAPI/Xero-OpenAPI's files in shared/spec/xero/ "
            "beside the checkout to run the contract tests (the project does not keep a copy)."
        )
    return path


@functools.cache
def load_spec(name: str) -> dict:
    """The spec as plain JSON data (PyYAML's datetimes turned into strings) with booleans patched."""
    with spec_path(name).open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    spec = json.loads(json.dumps(raw, default=str))
    _patch_string_booleans(spec)
    return spec


def _patch_string_booleans(node) -> None:
    """Xero writes boolean defaults and examples as "true"/"false" strings, which no validator accepts."""
    if isinstance(node, dict):
        if node.get("type") == "boolean":
            for field in ("default", "example"):
                if node.get(field) in ("true", "false"):
                    node[field] = node[field] == "true"
        for value in node.values():
            _patch_string_booleans(value)
    elif isinstance(node, list):
        for value in node:
            _patch_string_booleans(value)


def spec_url(url: str) -> str:
    """The sandbox's URL of an Accounting API call as the spec's server spells it."""
    marker = "/xero/api.xro/2.0"
    _, found, rest = url.partition(marker)
    assert found, f"{url} is not an Accounting API URL"
    return SPEC_SERVER + rest


def validate_exchange(openapi, response: requests.Response) -> None:
    """Raise if the request or the response breaks the spec."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    prepared = response.request.copy()
    prepared.url = spec_url(prepared.url)
    request = RequestsOpenAPIRequest(prepared)
    openapi.validate_request(request)
    openapi.validate_response(request, RequestsOpenAPIResponse(response))


# --- /Date(...)/ ---------------------------------------------------------------------------------
def response_schema(spec: dict, method: str, url: str, status: int) -> dict | None:
    path = urlparse(spec_url(url)).path[len(urlparse(SPEC_SERVER).path) :]
    for template, operations in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            responses = operations[method.lower()]["responses"]
            answer = responses.get(str(status)) or responses.get("default") or {}
            answer = _resolve(spec, answer)
            return answer.get("content", {}).get("application/json", {}).get("schema")
    return None


def ms_date_problems(spec: dict, schema: dict | None, value, where: str = "$") -> list[str]:
    """Every field flagged x-is-msdate(-time) in the spec whose value is not /Date(ms[+hhmm])/."""
    if schema is None or value is None:
        return []
    schema = _resolve(spec, schema)
    problems = []
    for part in schema.get("allOf", []):
        problems += ms_date_problems(spec, part, value, where)
    flagged = schema.get("x-is-msdate") or schema.get("x-is-msdate-time")
    if flagged and isinstance(value, str) and not MS_DATE.match(value):
        problems.append(f"{where} = {value!r} is not /Date(ms)/")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                problems += ms_date_problems(spec, properties[key], item, f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += ms_date_problems(spec, schema["items"], item, f"{where}[{index}]")
    return problems


def _resolve(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node
