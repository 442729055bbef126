"""The fake Bitrix24 OAuth server (oauth.bitrix.info) and the portal's authorize page.

- `GET|POST /bitrix24/oauth/token/` — grant_type=refresh_token|authorization_code (§4.2).
  Refresh tokens rotate and are single-use; a used one answers `400 invalid_grant`, except within
  the configurable `refresh_grace_s`, where it answers the pair its first use produced (so two
  workers racing to refresh end up with the same tokens). The access token issued before stays
  valid until it expires (the current docs do not say a refresh revokes it).
- The first token request fixes the client id/secret; later ones must match (`invalid_client`).
- `GET /bitrix24/oauth/rest/app.info?auth=…` — the OAuth server's trusted app/install info.
- `GET /bitrix24/oauth/authorize/?client_id&state[&redirect_uri][&user]` — the portal's consent
  page: consents at once and redirects with a 30-second `code` (redirect_uri defaults to the
  app URL, as Bitrix24 takes it from the app settings).
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from flask import jsonify, redirect, request

from sandbox.bitrix24.app_state import APP_VERSION, OAUTH_DOMAIN, REFRESH_TOKEN_TTL, state, token_json
from sandbox.bitrix24.world import Bitrix24World

AUTH_CODE_TTL = 30


def oauth_error(status: int, code: str, description: str):
    return jsonify({"error": code, "error_description": description}), status


def register(bp, sandbox) -> None:
    @bp.route("/bitrix24/oauth/token/", methods=["GET", "POST"], strict_slashes=False)
    def token():
        args = request.values.to_dict()
        args.update(request.get_json(silent=True) or {})
        grant = args.get("grant_type", "")
        client_id, client_secret = args.get("client_id", ""), args.get("client_secret", "")
        if grant not in ("refresh_token", "authorization_code"):
            return oauth_error(400, "invalid_request", "grant_type must be refresh_token or authorization_code")
        if not client_id or not client_secret:
            return oauth_error(401, "invalid_client", "client_id and client_secret are required")
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            app = state(world)
            if app.client_id is None:
                app.client_id, app.client_secret = client_id, client_secret
            elif (client_id, client_secret) != (app.client_id, app.client_secret):
                return oauth_error(401, "invalid_client", "Invalid client credentials")
            if grant == "refresh_token":
                return _refresh(world, args.get("refresh_token", ""))
            return _exchange_code(world, args.get("code", ""), client_id)

    def _refresh(world: Bitrix24World, refresh_token: str):
        app = state(world)
        now = sandbox.clock.now()
        user_id = world.refresh_tokens.get(refresh_token)
        if user_id is None:
            used = app.used_refresh.get(refresh_token)
            grace = float(app.settings["refresh_grace_s"])
            if used and now - used[0] <= grace and used[1] in world.tokens:
                return jsonify(token_json(world, world.tokens[used[1]]))
            return oauth_error(400, "invalid_grant", "Invalid refresh token: it was already used or revoked")
        old = next((t for t in world.tokens.values() if t.refresh_token == refresh_token), None)
        # Refresh tokens live 180 days from when they were issued (with their access token).
        if old is not None and old.expires_at - world.ACCESS_TOKEN_TTL + REFRESH_TOKEN_TTL < now:
            del world.refresh_tokens[refresh_token]
            return oauth_error(400, "invalid_grant", "The refresh token has expired")
        if user_id not in world.users:
            return oauth_error(400, "invalid_grant", "The user of this refresh token no longer exists")
        del world.refresh_tokens[refresh_token]
        new = world.issue_token(user_id)
        if old is not None:
            new.scope = old.scope
        app.used_refresh[refresh_token] = (now, new.token)
        return jsonify(token_json(world, new))

    def _exchange_code(world: Bitrix24World, code: str, client_id: str):
        grant = state(world).auth_codes.pop(code, None)
        if grant is None or grant["client_id"] != client_id:
            return oauth_error(400, "invalid_grant", "Invalid authorization code")
        if grant["expires_at"] < sandbox.clock.now():
            return oauth_error(400, "invalid_grant", "The authorization code has expired")
        if grant["user_id"] not in world.users:
            return oauth_error(400, "invalid_grant", "The user of this code no longer exists")
        return jsonify(token_json(world, world.issue_token(grant["user_id"])))

    @bp.route("/bitrix24/oauth/authorize/", methods=["GET"], strict_slashes=False)
    def authorize():
        world: Bitrix24World = sandbox.bitrix24
        client_id = request.args.get("client_id", "")
        with sandbox.lock:
            app = state(world)
            if not world.app_url:
                return oauth_error(400, "invalid_client", "Application not installed")
            if not client_id or (app.client_id is not None and client_id != app.client_id):
                return oauth_error(401, "invalid_client", "Invalid client_id")
            try:
                user_id = int(request.args.get("user", 1))
            except ValueError:
                user_id = 0
            if user_id not in world.users:
                return oauth_error(400, "invalid_request", "Unknown user")
            code = secrets.token_hex(16)
            app.auth_codes[code] = {
                "client_id": client_id,
                "user_id": user_id,
                "expires_at": sandbox.clock.now() + AUTH_CODE_TTL,
            }
            query = {
                "code": code,
                "state": request.args.get("state", ""),
                "domain": world.domain,
                "member_id": world.member_id,
                "scope": "crm,placement,user,catalog",
                "server_domain": OAUTH_DOMAIN,
            }
            target = request.args.get("redirect_uri") or world.app_url
        separator = "&" if "?" in target else "?"
        return redirect(f"{target}{separator}{urlencode(query)}", code=302)

    @bp.route("/bitrix24/oauth/rest/app.info", methods=["GET", "POST"], strict_slashes=False)
    @bp.route("/bitrix24/oauth/rest/app.info.json", methods=["GET", "POST"], strict_slashes=False)
    def server_app_info():
        auth = request.values.get("auth") or (request.get_json(silent=True) or {}).get("auth")
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            token = world.tokens.get(auth or "")
            if token is None:
                return oauth_error(401, "invalid_token", "Unable to get application by token")
            if token.expires_at <= sandbox.clock.now():
                return oauth_error(401, "expired_token", "The access token provided has expired.")
            app = state(world)
            status = app.settings["status"]
            result = {
                "client_id": app.client_id or "",
                "scope": token.scope,
                "expires": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(token.expires_at)),
                "user_id": token.user_id,
                "install": {
                    "installed": world.installed,
                    "version": APP_VERSION,
                    "status": status,
                    "scope": token.scope,
                    "domain": world.domain,
                    "uri": world.app_url,
                    "client_endpoint": world.client_endpoint,
                    "member_id": world.member_id,
                    "member_type": "PORTAL",
                },
            }
        return jsonify({"result": result})
