"""The portal's REST endpoint: /bitrix24/rest/<method>[.json], GET or POST, JSON or form params.

One request: parse params -> resolve `auth` to a user -> key the call log by portal -> leaky
bucket -> run the method under the world lock -> answer {"result", "total"?, "next"?, "time"}
or Bitrix24's error body with its HTTP status. Events the method raised go out after the lock.
"""

from __future__ import annotations

import logging
import time

from flask import g, jsonify, request

from sandbox.bitrix24 import limits, notify
from sandbox.bitrix24.params import request_params
from sandbox.bitrix24.world import B24Error, Ctx

# Importing the method modules registers their @rest_method functions.
from sandbox.bitrix24 import (  # noqa: F401  isort: skip
    batch,
    catalog,
    crm_directory,
    crm_invoice_status,
    crm_invoices_old,
    crm_items,
    crm_payments,
    crm_paysystems,
    crm_productrows,
    crm_requisites,
    crm_status,
    currency,
    invoice_kinds,
)

log = logging.getLogger(__name__)


def register(bp, sandbox) -> None:
    # The app resets the world before the blueprint imports the method modules, so their reset
    # hooks (default stages, currencies) missed that first reset: run it again now they exist.
    with sandbox.lock:
        sandbox.bitrix24.reset()

    @bp.route("/bitrix24/rest/<path:method>", methods=["GET", "POST"])
    def rest_call(method: str):
        started = time.time()
        world = sandbox.bitrix24
        if method.endswith(".json"):
            method = method[: -len(".json")]
        notify.begin()
        try:
            params = request_params(request)
            auth = params.pop("auth", None) or request.args.get("auth")
            user, token = world.resolve(auth if isinstance(auth, str) else None)
            call = g.get("call")
            if call is not None:
                sandbox.rekey_call(call, world.member_id)
            limits.admit(world, world.member_id)
            with sandbox.lock:
                out = world.call(Ctx(world, user, token, method), method, params)
        except B24Error as error:
            g.pop("b24_events", None)
            return jsonify(error.body()), error.status
        except Exception:  # a bug in the fake must still look like Bitrix24, and be in the log
            log.exception("bitrix24 %s failed", method)
            g.pop("b24_events", None)
            return jsonify({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}), 500
        notify.flush()
        body = {"result": out.result}
        if out.next is not None:
            body["next"] = out.next
        if out.total is not None:
            body["total"] = out.total
        body["time"] = world.time_block(started, method)
        return jsonify(body)
