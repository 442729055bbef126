"""Installing and removing the app, the way Bitrix24 does it (§4.4).

Install: a token pair for the admin (user 1) -> the installer POST into the frame (§4.3 fields) to
`install_url`, during which the app calls back into REST (event.bind, placement.bind) — so no lock
is held while POSTing -> ONAPPINSTALL form-encoded to `event_url` -> installed, as if the page
had called BX24.installFinish() (with "finish": false the portal waits for that call instead).
A re-install keeps member_id and application_token and, like an app update, drops the event
bindings: every version's installer binds them again.

Uninstall: tokens revoked, bindings/placements/options/offline queue dropped, ONAPPUNINSTALL
(auth without tokens) to the handler bound for it (or the install's event_url), and a new
application_token for whatever installs next.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlparse

import requests
from flask import jsonify, request

from sandbox.bitrix24.app_state import APP_VERSION, LANGUAGE_ID, state
from sandbox.bitrix24.event_delivery import auth_block, lifecycle_pairs, send_now
from sandbox.bitrix24.events import is_url
from sandbox.bitrix24.portal_page import frame_request
from sandbox.bitrix24.world import Bitrix24World

INSTALL_TIMEOUT_S = 20  # the installer page calls back into REST before answering


def _error(status: int, code: str, message: str, **extra):
    return jsonify({"error": code, "message": message, **extra}), status


def register(bp, sandbox) -> None:
    @bp.post("/_sandbox/bitrix24/install")
    def install():
        body = request.get_json(silent=True) or {}
        app_url = str(body.get("app_url") or "")
        install_url = str(body.get("install_url") or app_url)
        event_url = str(body.get("event_url") or app_url)
        finish = body.get("finish", True) is not False
        if not all(is_url(u) for u in (app_url, install_url, event_url)):
            return _error(400, "bad_request", '"app_url" (and install_url/event_url if given) must be http(s) URLs')
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            app = state(world)
            world.installed = False
            world.app_url = app_url
            app.install_url, app.event_url = install_url, event_url
            app.install_pending = True  # lets frame_request open the installer for the admin
            app.bindings = []  # an update/re-install removes the app's event handlers
            installer = frame_request(world, 1, "DEFAULT", {})
            app.install_pending = False

        # (b) the installer page, opened in the frame: no lock while the app calls back into REST.
        try:
            response = requests.post(installer["url"], data=installer["form"], timeout=INSTALL_TIMEOUT_S)
        except requests.RequestException as exc:
            return _error(
                502, "install_failed", f"the app's install page is unreachable: {exc}", install_url=install_url
            )
        if not 200 <= response.status_code < 300:
            return _error(
                502,
                "install_failed",
                f"the app's install page answered {response.status_code}",
                install_url=install_url,
                install_status=response.status_code,
                body=response.text[:1000],
            )

        # (c) ONAPPINSTALL, server to server, with the admin's tokens and the application token.
        with sandbox.lock:
            app = state(world)
            auth = auth_block(world, world.users[1], refresh=True)
            data = {"VERSION": APP_VERSION, "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": LANGUAGE_ID}
        event_status, event_error = send_now(
            world, app, "ONAPPINSTALL", event_url, lifecycle_pairs("ONAPPINSTALL", data, auth)
        )

        # (d) what BX24.installFinish() does in the frame.
        with sandbox.lock:
            app.installs += 1
            if finish:
                world.installed = True
            else:
                app.install_pending = True
            out = {
                "member_id": world.member_id,
                "domain": world.domain,
                "client_endpoint": world.client_endpoint,
                "application_token": world.application_token,
                "installed": world.installed,
                "install_status": response.status_code,
                "event_status": event_status,
            }
        if event_error:
            out["event_error"] = event_error
        return jsonify(out)

    @bp.post("/_sandbox/bitrix24/install-finish")
    def install_finish():
        """BX24.installFinish() from the portal page (or the stand-in library outside it)."""
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            app = state(world)
            if not world.installed and not app.install_pending:
                response = jsonify({"error": "conflict", "message": "no installation is waiting to finish"})
                status = 409
            else:
                world.installed, app.install_pending = True, False
                response, status = jsonify({"installed": True}), 200
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response, status

    @bp.post("/_sandbox/bitrix24/uninstall")
    def uninstall():
        body = request.get_json(silent=True) or {}
        clean = bool(body.get("clean", False))
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            app = state(world)
            if not world.app_url:
                return _error(409, "conflict", "the app is not installed")
            handlers = [b.handler for b in app.bindings if b.event == "ONAPPUNINSTALL" and not b.offline]
            handlers = handlers or [app.event_url]
            auth = auth_block(world, None)  # REST access is already gone: no tokens
            pairs = lifecycle_pairs(
                "ONAPPUNINSTALL", {"LANGUAGE_ID": LANGUAGE_ID, "CLEAN": "1" if clean else "0"}, auth
            )
            world.tokens.clear()
            world.refresh_tokens.clear()
            app.used_refresh.clear()
            app.auth_codes.clear()
            app.bindings, app.placements, app.offline, app.options = [], [], [], {}
            world.installed, app.install_pending = False, False
            world.app_url, app.install_url, app.event_url = "", "", ""
            world.application_token = secrets.token_hex(16)  # a later install is a new installation
        statuses = []
        for handler in dict.fromkeys(handlers):
            if urlparse(handler).scheme:
                statuses.append(send_now(world, app, "ONAPPUNINSTALL", handler, pairs)[0])
        return jsonify({"uninstalled": True, "handlers": list(dict.fromkeys(handlers)), "event_status": statuses})
