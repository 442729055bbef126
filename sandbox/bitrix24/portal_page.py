"""How the portal opens the app: the frame POST (§4.3), the portal page and the BX24 stand-in.

- `POST /_sandbox/bitrix24/frame {"user", "placement", "options"}` -> {"url", "form"}: what Bitrix24
  would POST into the app's iframe for that user (the caller POSTs `form` to `url` itself).
- `GET /bitrix24/portal/?user=&placement=&options=<json>` -> a minimal portal page (header, left
  menu, content) whose iframe is filled by auto-submitting that same form.
- `GET /bitrix24/js/bx24.js` -> a small stand-in for Bitrix24's JS library (see static/bx24.js).
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path
from urllib.parse import urlencode

from flask import Response, jsonify, request

from sandbox.bitrix24.app_state import LANGUAGE_ID, state
from sandbox.bitrix24.placements import handler_for
from sandbox.bitrix24.world import Bitrix24World

BX24_JS = Path(__file__).with_name("static") / "bx24.js"


class FrameError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def placement_options(options: dict) -> dict:
    """Bitrix24 sends ids as strings ({"ENTITY_ID": "32"}); do the same with what tests pass in."""
    return {k: (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in options.items()}


def frame_request(world: Bitrix24World, user_id, placement: str = "DEFAULT", options: dict | None = None) -> dict:
    """The iframe POST for `user_id` opening `placement` (call with sandbox.lock held)."""
    try:
        user = world.users.get(int(user_id))
    except (TypeError, ValueError):
        user = None
    if user is None:
        raise FrameError(404, f"no user {user_id!r} on the portal")
    app = state(world)
    placement = (placement or "DEFAULT").upper()
    if not world.app_url:
        raise FrameError(409, "the app is not installed (POST /_sandbox/bitrix24/install first)")
    if placement == "DEFAULT":
        if world.installed:
            url = world.app_url
        elif app.install_pending and user.admin:
            url = app.install_url  # the installer opens until BX24.installFinish() runs
        else:
            raise FrameError(409, "the application is not fully installed")
    else:
        url = handler_for(world, placement)
        if url is None:
            raise FrameError(404, f"no handler is bound to placement {placement}")
        if not world.installed:
            raise FrameError(409, "widgets are hidden until the installation is finished")
    token = world.issue_token(user.id)
    query = {"DOMAIN": world.domain, "PROTOCOL": "1", "LANG": LANGUAGE_ID, "APP_SID": secrets.token_hex(16)}
    form = {
        "AUTH_ID": token.token,
        "AUTH_EXPIRES": str(world.ACCESS_TOKEN_TTL),
        "REFRESH_ID": token.refresh_token,
        "SERVER_ENDPOINT": world.server_endpoint,
        "member_id": world.member_id,
        "status": app.settings["status"],
        "PLACEMENT": placement,
        "PLACEMENT_OPTIONS": json.dumps(placement_options(options or {})),
        "APPLICATION_TOKEN": world.application_token,
        "APPLICATION_SCOPE": token.scope,
    }
    separator = "&" if "?" in url else "?"
    return {"url": f"{url}{separator}{urlencode(query)}", "form": form, "user": user.id, "admin": user.admin}


def register(bp, sandbox) -> None:
    @bp.post("/_sandbox/bitrix24/frame")
    def frame():
        body = request.get_json(silent=True) or {}
        options = body.get("options") or {}
        if not isinstance(options, dict):
            return jsonify({"error": "bad_request", "message": '"options" must be an object'}), 400
        with sandbox.lock:
            try:
                out = frame_request(sandbox.bitrix24, body.get("user", 1), body.get("placement", "DEFAULT"), options)
            except FrameError as exc:
                return jsonify(
                    {"error": "not_found" if exc.status == 404 else "conflict", "message": exc.message}
                ), exc.status
        return jsonify({"url": out["url"], "form": out["form"]})

    @bp.get("/bitrix24/portal/", strict_slashes=False)
    def portal():
        world: Bitrix24World = sandbox.bitrix24
        user_id = request.args.get("user", "1")
        placement = request.args.get("placement", "DEFAULT")
        try:
            options = json.loads(request.args.get("options") or "{}")
            if not isinstance(options, dict):
                raise ValueError
        except ValueError:
            return _page(world, None, "", "", "options must be a JSON object", []), 400
        with sandbox.lock:
            user = world.users.get(int(user_id)) if user_id.isdigit() else None
            widgets = sorted({p["placement"] for p in state(world).placements})
            try:
                frame_req = frame_request(world, user_id, placement, options)
            except FrameError as exc:
                return _page(world, user, user_id, placement, exc.message, widgets), exc.status
            return _page(world, user, user_id, placement, None, widgets, frame_req), 200

    @bp.get("/bitrix24/js/bx24.js")
    def bx24_js():
        response = Response(BX24_JS.read_text(), mimetype="application/javascript")
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response


def _page(world, user, user_id, placement, error, widgets, frame_req=None) -> Response:
    """The portal page. No X-Frame-Options/CSP: nothing here may stop the app from framing."""
    esc = html.escape
    menu = [
        f'<a class="app{" on" if placement.upper() == "DEFAULT" else ""}" href="?user={esc(user_id)}">Xero connector</a>'
    ]
    menu += [
        f'<a class="widget{" on" if w == placement.upper() else ""}" href="?user={esc(user_id)}&amp;placement={esc(w)}">{esc(w)}</a>'
        for w in widgets
    ]
    if frame_req is None:
        content = f'<div class="notice">{esc(error or "")}</div>'
        script = ""
    else:
        inputs = "".join(
            f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in frame_req["form"].items()
        )
        form = frame_req["form"]
        context = {
            "auth": {
                "access_token": form["AUTH_ID"],
                "refresh_token": form["REFRESH_ID"],
                "expires_in": int(form["AUTH_EXPIRES"]),
                "domain": world.domain,
                "member_id": world.member_id,
            },
            "placement": form["PLACEMENT"],
            "options": json.loads(form["PLACEMENT_OPTIONS"]),
            "isAdmin": bool(frame_req["admin"]),
            "lang": LANGUAGE_ID,
            "domain": world.domain,
            "installed": bool(world.installed),
            "clientEndpoint": world.client_endpoint,
            "userId": frame_req["user"],
        }
        content = (
            f'<form id="b24-form" method="post" target="b24-app" action="{esc(frame_req["url"])}">{inputs}</form>'
            '<iframe id="b24-app" name="b24-app" title="Application"></iframe>'
        )
        script = f"<script>var B24_PORTAL = {_script_json(context)};</script><script>{_PORTAL_JS}</script>"
    who = esc(f"{user.name} {user.last_name}".strip()) if user else "nobody"
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bitrix24 sandbox portal</title><style>{_PORTAL_CSS}</style></head>
<body><header><b>Bitrix24</b> <span class="domain">{esc(world.domain)}</span><span class="user">{who}</span></header>
<div class="layout"><nav><div class="title">CRM</div><span class="muted">Invoices</span><span class="muted">Companies</span>
<div class="title">Applications</div>{"".join(menu)}</nav><main>{content}</main></div>{script}</body></html>"""
    return Response(body, mimetype="text/html")


def _script_json(value) -> str:
    return json.dumps(value).replace("</", "<\\/")


_PORTAL_CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;background:#eef2f4;color:#333}
header{display:flex;gap:12px;align-items:center;height:48px;padding:0 16px;background:#2fc6f6;color:#fff}
header .user{margin-left:auto}.layout{display:flex;min-height:calc(100vh - 48px)}
nav{flex:0 0 200px;padding:12px;background:#fff;border-right:1px solid #dde}nav .title{margin:12px 0 4px;font-weight:bold}
nav a,nav span{display:block;padding:6px 8px;border-radius:4px;color:#333;text-decoration:none;overflow-wrap:anywhere}
nav a.on{background:#e5f7fd}nav .muted{color:#999}main{flex:1;min-width:0;padding:12px}
#b24-app{display:block;width:100%;min-height:600px;border:0;background:#fff;border-radius:6px}
.notice{padding:24px;background:#fff;border-radius:6px}
@media (max-width:700px){.layout{flex-direction:column}nav{flex:none;border-right:0}}
"""

# The portal half of the BX24 stand-in: answers the frame's postMessage requests.
_PORTAL_JS = """
(function () {
  var ctx = B24_PORTAL, frame = document.getElementById('b24-app');
  function reply(msg, extra) {
    frame.contentWindow.postMessage(Object.assign({bx24: true, id: msg.id}, extra), '*');
  }
  function goTo(placement) {
    var q = new URLSearchParams(location.search); q.set('placement', placement || 'DEFAULT'); q.delete('options');
    location.search = q.toString();
  }
  window.addEventListener('message', function (e) {
    var m = e.data || {};
    if (e.source !== frame.contentWindow || !m.bx24) return;
    if (m.type === 'init') reply(m, {type: 'context', context: ctx});
    else if (m.type === 'installFinish') {
      fetch('/_sandbox/bitrix24/install-finish', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({auth: ctx.auth.access_token})})
        .then(function (r) { return r.json(); })
        .then(function (b) { reply(m, {type: 'reply', result: b}); if (b.installed) goTo('DEFAULT'); });
    } else if (m.type === 'callMethod') {
      fetch(ctx.clientEndpoint + m.method + '.json', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(Object.assign({}, m.params || {}, {auth: ctx.auth.access_token}))})
        .then(function (r) { return r.json(); })
        .then(function (b) { reply(m, {type: 'reply', result: b}); });
    } else if (m.type === 'resizeWindow') {
      if (m.height) frame.style.height = parseInt(m.height, 10) + 'px';
      reply(m, {type: 'reply', result: true});
    } else if (m.type === 'openApplication') goTo('DEFAULT');
    else if (m.type === 'closeApplication') goTo('DEFAULT');
  });
  document.getElementById('b24-form').submit();
})();
"""
