"""Strict mode: every Accounting API exchange checked against Xero's OpenAPI description.

Off unless the sandbox is started with `SANDBOX_XERO_STRICT=1` (the test suite does). Each request to
`/xero/api.xro/2.0/...` and its answer are copied after the answer has gone out and validated in a
background thread (so no caller waits for it) against `xero_accounting.yaml` from Xero's
XeroAPI/Xero-OpenAPI (read from `../shared/spec/xero/` beside the checkout, or `SANDBOX_XERO_SPEC`;
never copied into the project), including the `/Date(...)/` format of fields the spec flags
`x-is-msdate`, which validators ignore. What breaks the spec is kept as a violation;
`GET /_sandbox/xero/violations` waits until every exchange is checked and hands them over (and
forgets them). Answers to injected faults are not checked, and neither are answers whose status the
spec does not describe for that operation (429, 5xx: Xero's own description leaves them out).

The spec loader and the checks are shared with the hand-written contract tests
(tests/sandbox/openapi.py re-exports them).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = Path(os.environ.get("SANDBOX_XERO_SPEC_DIR") or ROOT.parent / "shared" / "spec" / "xero")
SPEC_SERVER = "https://api.xero.com/api.xro/2.0"
MS_DATE = re.compile(r"^/Date\(-?\d+([+-]\d{4})?\)/$")
API_MARKER = "/xero/api.xro/2.0"


# --- the spec ------------------------------------------------------------------------------------
def spec_file(name: str) -> Path:
    return SPEC_DIR / name


@functools.cache
def load_spec(name: str) -> dict:
    """The spec as plain JSON data (PyYAML's datetimes turned into strings) with booleans patched.
    FileNotFoundError when the shared spec folder does not hold it."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with spec_file(name).open(encoding="utf-8") as handle:
        raw = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
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


@functools.cache
def openapi_for(name: str):
    """openapi-core's validator for the spec. The description itself is not re-validated on load
    (that takes seconds; tests/sandbox/test_xero_contract.py loads it the checked way)."""
    from openapi_core import Config, OpenAPI

    return OpenAPI.from_dict(load_spec(name), config=Config(spec_validator_cls=None))


def spec_url(url: str) -> str:
    """The sandbox's URL of an Accounting API call as the spec's server spells it."""
    _, found, rest = url.partition(API_MARKER)
    if not found:
        raise ValueError(f"{url} is not an Accounting API URL")
    return SPEC_SERVER + rest


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


def documented_statuses(spec: dict, method: str, url: str) -> set[str] | None:
    """The response codes the spec describes for the operation; None when no path matches."""
    path = urlparse(spec_url(url)).path[len(urlparse(SPEC_SERVER).path) :]
    for template, operations in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path, re.IGNORECASE) and method.lower() in operations:
            return set(operations[method.lower()]["responses"])
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


def validate_requests_exchange(openapi, response) -> None:
    """Raise if a `requests` response's request or the response itself breaks the spec."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    prepared = response.request.copy()
    prepared.url = spec_url(prepared.url)
    request = RequestsOpenAPIRequest(prepared)
    openapi.validate_request(request)
    openapi.validate_response(request, RequestsOpenAPIResponse(response))


# --- strict mode ---------------------------------------------------------------------------------
@dataclass
class Exchange:
    method: str
    url: str
    headers: dict
    body: bytes
    status: int
    response_headers: dict
    response_body: bytes


def _describe(exc: Exception) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    for inner in getattr(exc, "schema_errors", None) or getattr(exc.__cause__, "schema_errors", None) or []:
        where = "/".join(str(p) for p in getattr(inner, "absolute_path", []))
        parts.append(f"  at {where or '$'}: {getattr(inner, 'message', inner)}"[:400])
    return "\n".join(parts)[:2000]


def check_exchange(exchange: Exchange, spec_name: str = "xero_accounting.yaml") -> list[str]:
    """What in one exchange breaks the spec (empty when it keeps to it)."""
    import requests
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    spec = load_spec(spec_name)
    openapi = openapi_for(spec_name)
    where = f"{exchange.method} {urlparse(exchange.url).path.partition(API_MARKER)[2] or exchange.url}"
    statuses = documented_statuses(spec, exchange.method, exchange.url)
    if statuses is None:
        return [f"{where}: no such operation in Xero's OpenAPI description"]
    prepared = requests.Request(
        exchange.method, spec_url(exchange.url), headers=exchange.headers, data=exchange.body or None
    ).prepare()
    request = RequestsOpenAPIRequest(prepared)
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unsupported scheme type": Xero's OAuth2 scheme
        try:
            openapi.validate_request(request)
        except Exception as exc:  # every openapi-core validation error
            problems.append(f"{where} request: {_describe(exc)}")
        if str(exchange.status) not in statuses:
            return problems
        answer = requests.Response()
        answer.status_code = exchange.status
        answer._content = exchange.response_body
        answer.headers.update(exchange.response_headers)
        answer.request = prepared
        try:
            openapi.validate_response(request, RequestsOpenAPIResponse(answer))
        except Exception as exc:
            problems.append(f"{where} response {exchange.status}: {_describe(exc)}")
    if "json" in exchange.response_headers.get("Content-Type", ""):
        try:
            body = json.loads(exchange.response_body or b"null")
        except ValueError:
            body = None
        schema = response_schema(spec, exchange.method, exchange.url, exchange.status)
        problems += [f"{where} response: {p}" for p in ms_date_problems(spec, schema, body)]
    return problems


class StrictXero:
    """Checks exchanges in a background thread; keeps what broke the spec until taken."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Exchange] = queue.Queue()
        self._violations: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="xero-strict", daemon=True)
        self._thread.start()

    def submit(self, exchange: Exchange) -> None:
        self._queue.put(exchange)

    def take(self, timeout: float = 60.0) -> list[str]:
        """Wait until every exchange so far is checked; its violations (forgotten here)."""
        with self._queue.all_tasks_done:
            self._queue.all_tasks_done.wait_for(lambda: not self._queue.unfinished_tasks, timeout=timeout)
            pending = self._queue.unfinished_tasks
        with self._lock:
            out, self._violations = self._violations, []
        if pending:
            out.append(f"{pending} exchanges were still unchecked after {timeout:.0f}s")
        return out

    def _run(self) -> None:
        try:
            openapi_for("xero_accounting.yaml")  # load once, before the first exchange arrives
        except Exception:
            log.exception("strict mode: Xero's OpenAPI description could not be loaded")
        while True:
            exchange = self._queue.get()
            try:
                problems = check_exchange(exchange)
            except Exception as exc:
                problems = [f"{exchange.method} {exchange.url}: the check itself failed: {exc!r}"]
            try:
                if problems:
                    with self._lock:
                        self._violations.extend(problems)
            finally:
                self._queue.task_done()


def strict_from_env() -> StrictXero | None:
    if os.environ.get("SANDBOX_XERO_STRICT", "") not in ("1", "true", "yes"):
        return None
    if not spec_file("xero_accounting.yaml").is_file():
        log.warning("SANDBOX_XERO_STRICT is set but %s is missing: strict mode is off", SPEC_DIR)
        return None
    return StrictXero()
