"""The system-independent part of the control API (/_sandbox/...). Each fake adds its own routes
(/_sandbox/xero/..., /_sandbox/bitrix24/...) in its blueprint."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from sandbox.core import OUTBOUND, Fault, Sandbox


def _bad_request(message: str):
    return jsonify({"error": "bad_request", "message": message}), 400


def create_blueprint(sandbox: Sandbox) -> Blueprint:
    bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

    @bp.post("/reset")
    def reset():
        sandbox.reset()
        return jsonify({"ok": True})

    @bp.post("/quiesce")
    def quiesce():
        """Reset, then wait (up to 15 s) until no event or webhook is still on its way to the app:
        a test's teardown calls it so nothing reaches the app while its database is wiped."""
        from sandbox.bitrix24.event_delivery import wait_delivered

        sandbox.reset()
        idle = wait_delivered(timeout=15) and OUTBOUND.wait_idle(timeout=15)
        return jsonify({"ok": True, "idle": idle})

    @bp.post("/faults")
    def add_fault():
        body = request.get_json(silent=True) or {}
        system = body.get("system")
        match = str(body.get("match", "")).strip()
        if system not in ("xero", "bitrix24"):
            return _bad_request('"system" must be "xero" or "bitrix24"')
        if not match:
            return _bad_request('"match" is required, e.g. "PUT /Invoices" or "POST crm.item.list"')
        method, _, target = match.partition(" ")
        if not target:
            method, target = "*", method
        try:
            status = int(body["status"]) if body.get("status") is not None else None
            times = int(body.get("times", 1))
            delay_s = float(body.get("delay_s", 0))
        except (TypeError, ValueError):
            return _bad_request('"status", "times" and "delay_s" must be numbers')
        if status is None and not delay_s:
            return _bad_request('a fault needs a "status", a "delay_s", or both')
        after = body.get("after", False)
        if not isinstance(after, bool):
            return _bad_request('"after" must be true or false')
        if after and status is None:
            return _bad_request('a fault with "after": true needs the "status" its answer fails with')
        try:
            retry_after = float(body["retry_after"]) if body.get("retry_after") is not None else None
        except (TypeError, ValueError):
            return _bad_request('"retry_after" must be a number')
        location = body.get("location")
        if location is not None and not (isinstance(location, str) and status and 300 <= status < 400):
            return _bad_request('"location" goes with a 3xx "status" and must be a URL')
        fault = Fault(
            system,
            method.upper(),
            target,
            status,
            times,
            delay_s,
            body.get("body"),
            after,
            query=str(body.get("query") or ""),
            retry_after=retry_after,
            location=location,
        )
        with sandbox.lock:
            sandbox.faults.append(fault)
        return jsonify({"ok": True, "faults": len(sandbox.faults)})

    @bp.delete("/faults")
    def clear_faults():
        with sandbox.lock:
            sandbox.faults.clear()
        return jsonify({"ok": True})

    @bp.post("/limits")
    def set_limits():
        body = request.get_json(silent=True) or {}
        if "enabled" in body and not isinstance(body["enabled"], bool):
            return _bad_request('"enabled" must be true or false')
        try:
            scale = float(body.get("time_scale", sandbox.clock.scale))
            if scale <= 0:
                raise ValueError
        except (TypeError, ValueError):
            return _bad_request('"time_scale" must be a positive number')
        with sandbox.lock:
            if "enabled" in body:
                sandbox.limits_enabled = body["enabled"]
            sandbox.clock.set_scale(scale)
            for world in (sandbox.xero, sandbox.bitrix24):
                world.limits_changed()
        return jsonify({"enabled": sandbox.limits_enabled, "time_scale": sandbox.clock.scale})

    @bp.post("/delivery")
    def set_delivery():
        """How Bitrix24 events and Xero webhooks travel: {"delay_s": 0.2, "duplicates": 1,
        "reorder": true} (sandbox/core.py DELIVERY_DEFAULTS; back to on time, once, in order after a reset)."""
        body = request.get_json(silent=True) or {}
        try:
            delay = float(body.get("delay_s", sandbox.delivery["delay_s"]))
            duplicates = body.get("duplicates", sandbox.delivery["duplicates"])
            if delay < 0 or isinstance(duplicates, bool) or not isinstance(duplicates, int) or duplicates < 0:
                raise ValueError
        except (TypeError, ValueError):
            return _bad_request('"delay_s" must be a number >= 0 and "duplicates" an integer >= 0')
        reorder = body.get("reorder", sandbox.delivery["reorder"])
        if not isinstance(reorder, bool):
            return _bad_request('"reorder" must be true or false')
        with sandbox.lock:
            sandbox.delivery = {"delay_s": delay, "duplicates": duplicates, "reorder": reorder}
        return jsonify(sandbox.delivery)

    @bp.get("/xero/violations")
    def xero_violations():
        """Strict mode (SANDBOX_XERO_STRICT=1): what broke Xero's OpenAPI description since the
        last call, once every exchange so far is checked. {"strict": false} when it is off."""
        if sandbox.strict is None:
            return jsonify({"strict": False, "violations": []})
        return jsonify({"strict": True, "violations": sandbox.strict.take()})

    @bp.get("/state")
    def state():
        with sandbox.lock:
            return jsonify({"xero": sandbox.xero.snapshot(), "bitrix24": sandbox.bitrix24.snapshot()})

    @bp.get("/calls")
    def calls():
        since = request.args.get("since", type=int, default=0)
        system = request.args.get("system")
        rows = [c.as_dict() for c in list(sandbox.calls) if c.id > since and (not system or c.system == system)]
        return jsonify({"calls": rows, "count": len(rows)})

    @bp.delete("/calls")
    def clear_calls():
        with sandbox.lock:
            sandbox.calls.clear()
        return jsonify({"ok": True})

    return bp
