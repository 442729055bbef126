"""The Bitrix24 part of the control API (/_sandbox/bitrix24/...): users, tokens, settings, and when an
invoice last changed.

`register` also wires in the app side of the portal (install flow, frames and the portal page)
and imports the REST method modules so their @rest_method registrations exist before any call.
"""

from __future__ import annotations

from flask import jsonify, request

from sandbox.bitrix24 import operating, values
from sandbox.bitrix24.app_state import DEFAULT_SETTINGS, state
from sandbox.bitrix24.world import Bitrix24World, User, emit


def bad_request(message: str, status: int = 400):
    return jsonify({"error": "bad_request", "message": message}), status


def user_id_of(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def token_pair(world: Bitrix24World, user: User) -> dict:
    token = world.issue_token(user.id)
    return {
        "access_token": token.token,
        "refresh_token": token.refresh_token,
        "expires": int(token.expires_at),
        "expires_in": world.ACCESS_TOKEN_TTL,
        "member_id": world.member_id,
        "domain": world.domain,
        "client_endpoint": world.client_endpoint,
        "server_endpoint": world.server_endpoint,
    }


def register(bp, sandbox) -> None:
    # Imported here, not at module top, so that importing control alone has no side effects;
    # these modules register REST methods and routes.
    from sandbox.bitrix24 import app_methods, events, install, placements, portal_page  # noqa: F401

    install.register(bp, sandbox)
    portal_page.register(bp, sandbox)

    @bp.post("/_sandbox/bitrix24/users")
    def add_user():
        body = request.get_json(silent=True) or {}
        name = str(body.get("name") or "").strip()
        invoices = body.get("invoices", "all")
        if not name:
            return bad_request('"name" is required')
        if invoices not in ("all", "own"):
            return bad_request('"invoices" must be "all" or "own"')
        if not isinstance(body.get("admin", False), bool):
            return bad_request('"admin" must be true or false')
        time_zone = str(body.get("time_zone") or "")
        if time_zone and not values.known_zone(time_zone):
            return bad_request(f'"time_zone": unknown zone {time_zone!r} (an IANA name such as "Pacific/Auckland")')
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            user = User(
                id=world.next_id("user"),
                name=name,
                last_name=str(body.get("last_name") or ""),
                email=str(body.get("email") or f"user{len(world.users) + 1}@example.com"),
                admin=bool(body.get("admin", False)),
                invoices=invoices,
                time_zone=time_zone,
            )
            world.users[user.id] = user
            out = {"id": user.id, "name": user.name, "admin": user.admin, "invoices": user.invoices}
            out["time_zone"] = user.time_zone
            out.update(token_pair(world, user))
        return jsonify(out), 201

    @bp.post("/_sandbox/bitrix24/invoices/updated")
    def invoice_updated_at():
        """{"entityTypeId": 31 | 5, "id": n, "at": ISO 8601 date-time}: the invoice's last change
        (updatedTime, or DATE_UPDATE of an old invoice) moved to that instant, written in the portal's
        offset as Bitrix24 writes it; nothing else changes and no event is raised. For tests of date
        filters: the sandbox's own stamps are always now."""
        body = request.get_json(silent=True) or {}
        stores = {31: ("invoices", "updatedTime"), 5: ("old_invoices", "DATE_UPDATE")}
        entity_type, invoice_id = user_id_of(body.get("entityTypeId")), user_id_of(body.get("id"))
        if entity_type not in stores or invoice_id is None:
            return bad_request('"entityTypeId" must be 31 or 5 and "id" an invoice id')
        try:
            at = values.to_datetime_iso(body.get("at"))
        except ValueError:
            at = None
        if not at:
            return bad_request('"at" must be an ISO 8601 date-time such as "2026-12-05T20:00:00+00:00"')
        store, field = stores[entity_type]
        with sandbox.lock:
            invoice = sandbox.bitrix24.data.get(store, {}).get(invoice_id)
            if invoice is None:
                return bad_request(f"no invoice {invoice_id} of type {entity_type}", 404)
            invoice[field] = at
        return jsonify({"id": invoice_id, field: at})

    @bp.get("/_sandbox/bitrix24/users")
    def list_users():
        with sandbox.lock:
            return jsonify({"users": [vars(u) for u in sandbox.bitrix24.users.values()]})

    @bp.post("/_sandbox/bitrix24/tokens")
    def new_token():
        """A fresh token pair for an existing user (e.g. the admin, user 1)."""
        body = request.get_json(silent=True) or {}
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            user = world.users.get(user_id_of(body.get("user", 1)))
            if user is None:
                return bad_request(f"no user {body.get('user')!r}", 404)
            return jsonify({"user": user.id, **token_pair(world, user)}), 201

    @bp.post("/_sandbox/bitrix24/tokens/expire")
    def expire_tokens():
        """Expire access tokens now (all, or one user's); with "refresh": true also revoke the
        refresh tokens, as when they outlive their 180 days."""
        body = request.get_json(silent=True) or {}
        world: Bitrix24World = sandbox.bitrix24
        wanted = user_id_of(body.get("user")) if body.get("user") is not None else None
        if body.get("user") is not None and wanted is None:
            return bad_request('"user" must be a user id')
        with sandbox.lock:
            past = sandbox.clock.now() - 1
            expired = 0
            for token in world.tokens.values():
                if wanted is None or token.user_id == wanted:
                    token.expires_at = min(token.expires_at, past)
                    expired += 1
            revoked = 0
            if body.get("refresh"):
                for rt, uid in list(world.refresh_tokens.items()):
                    if wanted is None or uid == wanted:
                        del world.refresh_tokens[rt]
                        revoked += 1
        return jsonify({"expired": expired, "refresh_revoked": revoked})

    @bp.post("/_sandbox/bitrix24/emit")
    def emit_event():
        """A portal event without a REST call behind it: {"event", "data", "user": id|null}.
        user null is a change by an automation rule or workflow (the event carries no tokens).
        Only the event goes out; no CRM data changes."""
        body = request.get_json(silent=True) or {}
        event = str(body.get("event") or "").strip().upper()
        data = body.get("data") or {}
        if not event or not isinstance(data, dict):
            return bad_request('"event" (a name) and "data" (an object) are required')
        world: Bitrix24World = sandbox.bitrix24
        with sandbox.lock:
            user = None
            if body.get("user") is not None:
                user = world.users.get(user_id_of(body["user"]))
                if user is None:
                    return bad_request(f"no user {body['user']!r}", 404)
        emit(world, event, data, user)
        return jsonify({"ok": True, "installed": world.installed})

    @bp.post("/_sandbox/bitrix24/settings")
    def settings():
        """Knobs of the app side: refresh_grace_s, event_delay_s, event_timeout_s, status,
        client_id/client_secret to pin the OAuth client before its first use, invoices ("new" | "old" |
        "both": which invoices the portal has, sandbox/bitrix24/invoice_kinds.py), features
        ({"rest_offline_extended": true}: what feature.get answers; every feature is off by default),
        operating ({"limit_s": …, "cost_s": {method: seconds}}: the per-method time budget,
        sandbox/bitrix24/operating.py), scope (the app's scopes, "crm,user": methods of others are
        refused with insufficient_scope, sandbox/bitrix24/scopes.py), productrow_owner_arrays (false: crm.item.productrow.list
        refuses an array in =ownerId, for testing the connector's one-invoice-per-command
        fallback), time_zone (the portal's IANA zone: date-times are written in its offset, date
        fields as UTC midnight in it, see values.py; Europe/Moscow after a reset)."""
        body = request.get_json(silent=True) or {}
        with sandbox.lock:
            app = state(sandbox.bitrix24)
            for key in ("refresh_grace_s", "event_delay_s", "event_timeout_s"):
                if key in body:
                    try:
                        value = float(body[key])
                        if value < 0:
                            raise ValueError
                    except (TypeError, ValueError):
                        return bad_request(f'"{key}" must be a number >= 0')
                    app.settings[key] = value
            if "status" in body:
                if body["status"] not in ("L", "F", "D", "T", "P"):
                    return bad_request('"status" must be one of L, F, D, T, P')
                app.settings["status"] = body["status"]
            if "invoices" in body:
                if body["invoices"] not in ("new", "old", "both"):
                    return bad_request('"invoices" must be "new", "old" or "both"')
                app.settings["invoices"] = body["invoices"]
            if "operating" in body:
                try:
                    operating.configure(
                        sandbox.bitrix24, body["operating"] if isinstance(body["operating"], dict) else {}
                    )
                except (TypeError, ValueError) as exc:
                    return bad_request(f'"operating": {exc}')
            if "scope" in body:
                if not isinstance(body["scope"], str) or not body["scope"].strip():
                    return bad_request('"scope" must be a comma-separated list such as "crm,user"')
                app.settings["scope"] = body["scope"]
            if "productrow_owner_arrays" in body:
                if not isinstance(body["productrow_owner_arrays"], bool):
                    return bad_request('"productrow_owner_arrays" must be true or false')
                app.settings["productrow_owner_arrays"] = body["productrow_owner_arrays"]
            if "features" in body:
                features = body["features"]
                if not isinstance(features, dict) or not all(isinstance(v, bool) for v in features.values()):
                    return bad_request('"features" must be an object of feature code -> true/false')
                app.settings["features"] = {**(app.settings.get("features") or {}), **features}
            if "time_zone" in body:
                try:
                    values.set_time_zone(body["time_zone"])
                except ValueError as exc:
                    return bad_request(f'"time_zone": {exc} (an IANA name such as "Europe/Berlin")')
            for key in ("client_id", "client_secret"):
                if key in body:
                    setattr(app, key, str(body[key]) if body[key] else None)
            return jsonify({**app.settings, "client_id": app.client_id, "time_zone": values.time_zone()})

    @bp.get("/_sandbox/bitrix24/settings")
    def get_settings():
        with sandbox.lock:
            app = state(sandbox.bitrix24)
            return jsonify(
                {**DEFAULT_SETTINGS, **app.settings, "client_id": app.client_id, "time_zone": values.time_zone()}
            )
