"""The control routes of Xero's webhooks, under /_sandbox/xero/webhooks (sandbox/xero/webhooks.py
does the delivery): configure the subscription (runs Intent to Receive), re-run ITR, emit events by
hand, read the subscription and its delivery log, forget it.
"""

from __future__ import annotations

from flask import jsonify, request

from sandbox.xero.limits import control_path
from sandbox.xero.webhooks import DAY, OK, WebhookEmitter


def _find_emitter(sandbox) -> WebhookEmitter:
    for value in vars(sandbox.xero).values():
        if isinstance(value, WebhookEmitter):
            return value
    raise LookupError("the Xero world holds no WebhookEmitter")


def _bad_request(message: str):
    return jsonify({"error": "bad_request", "message": message}), 400


def register(bp, sandbox) -> None:
    """Adds the control routes under /_sandbox/xero/webhooks:

    POST   {"url", "key", "duplicates"?: int, "shuffle"?: bool, "retry_window_s"?: float}
           -> {"url", "status": "OK"|"FAILED", "itr": {"status", "probes", "reasons"}}
    POST   /itr      re-run Intent to Receive (re-enables a DISABLED subscription when it passes)
    POST   /events   {"tenantId", "eventCategory", "eventType", "resourceId"} or {"events": [...]}: emit
    GET    the subscription, ITR result, pending/retrying work and the log of delivery attempts
    DELETE forget the subscription
    """
    base = control_path(bp, "/_sandbox/xero/webhooks")

    @bp.post(base, endpoint="xero_webhooks_configure")
    def configure():
        body = request.get_json(silent=True) or {}
        url, key = body.get("url"), body.get("key")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _bad_request('"url" must be an http(s) URL')
        if not isinstance(key, str) or not key:
            return _bad_request('"key" (the webhook signing key) is required')
        duplicates, shuffle = body.get("duplicates", 0), body.get("shuffle", False)
        if isinstance(duplicates, bool) or not isinstance(duplicates, int) or duplicates < 0:
            return _bad_request('"duplicates" must be a non-negative integer')
        if not isinstance(shuffle, bool):
            return _bad_request('"shuffle" must be true or false')
        try:
            window = float(body.get("retry_window_s", DAY))
            if window <= 0:
                raise ValueError
        except (TypeError, ValueError):
            return _bad_request('"retry_window_s" must be a positive number of sandbox seconds')
        return jsonify(_find_emitter(sandbox).configure(url, key, duplicates, shuffle, window))

    @bp.post(f"{base}/itr", endpoint="xero_webhooks_itr")
    def rerun_itr():
        try:
            return jsonify(_find_emitter(sandbox).run_itr())
        except LookupError as exc:
            return _bad_request(str(exc))

    @bp.post(f"{base}/events", endpoint="xero_webhooks_events")
    def emit_events():
        body = request.get_json(silent=True) or {}
        events = body.get("events", [body])
        emitter = _find_emitter(sandbox)
        fields = ("tenantId", "eventCategory", "eventType", "resourceId")
        if not isinstance(events, list) or not all(
            isinstance(e, dict) and all(e.get(f) for f in fields) for e in events
        ):
            return _bad_request(f"each event needs {', '.join(fields)}")
        status = (emitter.snapshot()["subscription"] or {}).get("status")
        for event in events:
            emitter.emit(*(str(event[f]) for f in fields))
        return jsonify({"queued": len(events) if status == OK else 0, "status": status})

    @bp.get(base, endpoint="xero_webhooks_snapshot")
    def snapshot():
        return jsonify(_find_emitter(sandbox).snapshot())

    @bp.delete(base, endpoint="xero_webhooks_forget")
    def forget():
        _find_emitter(sandbox).reset()
        return jsonify({"ok": True})
