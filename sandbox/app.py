"""The sandbox's WSGI application: both fakes, the control API, and the call log around them."""

from __future__ import annotations

import time
from urllib.parse import unquote_plus

from flask import Flask, g, jsonify, request

from sandbox import control
from sandbox.core import Sandbox
from sandbox.xero.strict import API_MARKER, Exchange, strict_from_env


def _classify(path: str) -> tuple[str, str] | None:
    """(system, target) of an API call, or None for control/portal pages that are not logged."""
    if path.startswith("/xero/"):
        rest = path[len("/xero") :]
        if rest.startswith("/api.xro/2.0"):
            rest = rest[len("/api.xro/2.0") :]
        return "xero", rest
    if path.startswith("/bitrix24/rest/") or path.startswith("/bitrix24/oauth/"):
        tail = path.rsplit("/", 1)[-1] if not path.endswith("/") else path.rstrip("/").rsplit("/", 1)[-1]
        if tail.endswith(".json"):
            tail = tail[: -len(".json")]
        return "bitrix24", tail
    return None


def create_app(base_url: str = "") -> Flask:
    from sandbox.bitrix24 import Bitrix24World
    from sandbox.bitrix24 import create_blueprint as bitrix24_blueprint
    from sandbox.xero import XeroWorld
    from sandbox.xero import create_blueprint as xero_blueprint

    sandbox = Sandbox(base_url=base_url.rstrip("/"))
    sandbox.strict = strict_from_env()  # Xero exchanges checked against the OpenAPI description
    sandbox.xero = XeroWorld(sandbox)
    sandbox.bitrix24 = Bitrix24World(sandbox)
    sandbox.reset()

    app = Flask("sandbox")
    app.config["SANDBOX"] = sandbox
    app.json.sort_keys = False

    @app.before_request
    def log_and_inject_faults():
        if not sandbox.base_url:
            sandbox.base_url = request.host_url.rstrip("/")
        classified = _classify(request.path)
        if classified is None:
            return None
        system, target = classified
        key = request.headers.get("xero-tenant-id", "") if system == "xero" else ""
        g.call = sandbox.call_started(system, request.method, request.path, target, key)
        query = unquote_plus(request.query_string.decode("utf-8", "replace"))
        fault = sandbox.take_fault(system, request.method, request.path, target, query)
        if fault is not None:
            g.call.fault = True
            if fault.after:
                g.after_fault = fault  # the handler runs (the write happens); the answer is lost
                return None
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.status:
                world = sandbox.xero if system == "xero" else sandbox.bitrix24
                return world.fault_response(fault)
        return None

    @app.after_request
    def finish_call(response):
        fault = g.pop("after_fault", None)
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            world = sandbox.xero if fault.system == "xero" else sandbox.bitrix24
            response = world.fault_response(fault)
        call = g.get("call")
        if sandbox.strict is not None and call is not None and not call.fault and API_MARKER in request.path:
            sandbox.strict.submit(
                Exchange(
                    method=request.method,
                    url=request.url,
                    headers=dict(request.headers),
                    body=request.get_data(),
                    status=response.status_code,
                    response_headers=dict(response.headers),
                    response_body=response.get_data(),
                )
            )
        call = g.pop("call", None)
        if call is not None:
            sandbox.call_finished(call, response.status_code)
        return response

    @app.teardown_request
    def finish_call_on_error(exc):
        call = g.pop("call", None)
        if call is not None:
            sandbox.call_finished(call, 500)

    @app.errorhandler(404)
    def not_found(exc):
        return jsonify({"error": "NOT_FOUND", "error_description": f"No sandbox route for {request.path}"}), 404

    app.register_blueprint(control.create_blueprint(sandbox))
    app.register_blueprint(xero_blueprint(sandbox))
    app.register_blueprint(bitrix24_blueprint(sandbox))
    return app
