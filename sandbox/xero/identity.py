"""Xero's identity server: consent (authorize), the token endpoint with rotating refresh tokens,
revocation, and the connections (which tenants a user+app grant reaches).

Lifetimes run on the sandbox clock (`sandbox.clock.now()`), so tests can speed them up; the
connection timestamps are real wall time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode, urlparse

from flask import Blueprint, Response, redirect, request

from sandbox.xero.wire import iso_utc, json_response, new_id, utc_now

ACCESS_TOKEN_LIFETIME_S = 1800
CODE_LIFETIME_S = 300
DEFAULT_REFRESH_GRACE_S = 1800
REFRESH_IDLE_LIFETIME_S = 60 * 24 * 3600
DEFAULT_USER = "demo@example.com"
_SIGNING_KEY = secrets.token_bytes(32)


@dataclass
class Grant:
    """One Xero user's consent for one app: the unit refresh tokens and connections belong to."""

    id: str
    user_id: str
    client_id: str
    scope: list[str]
    auth_event_id: str
    revoked: bool = False


@dataclass
class RefreshToken:
    grant_id: str
    issued_at: float
    used_at: float | None = None  # when it was first exchanged; it then lives on for the grace window


@dataclass
class AccessToken:
    grant_id: str
    expires_at: float


@dataclass
class Connection:
    id: str
    grant_id: str
    tenant_id: str
    auth_event_id: str
    created: datetime
    updated: datetime


@dataclass
class Identity:
    users: dict[str, str] = field(default_factory=dict)  # login -> xero_userid
    client_secrets: dict[str, str] = field(default_factory=dict)  # bound on first use
    codes: dict[str, dict] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    refresh_grace_s: float = DEFAULT_REFRESH_GRACE_S

    def user_id(self, login: str) -> str:
        return self.users.setdefault(login, str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-user:{login}")))

    def grant_for(self, user_id: str, client_id: str) -> Grant | None:
        for grant in self.grants.values():
            if grant.user_id == user_id and grant.client_id == client_id and not grant.revoked:
                return grant
        return None

    def connections_of(self, grant_id: str) -> list[Connection]:
        return [c for c in self.connections.values() if c.grant_id == grant_id]

    def snapshot(self) -> dict:
        return {
            "users": dict(self.users),
            "grants": [
                {
                    "id": g.id,
                    "user_id": g.user_id,
                    "client_id": g.client_id,
                    "scope": g.scope,
                    "auth_event_id": g.auth_event_id,
                    "revoked": g.revoked,
                }
                for g in self.grants.values()
            ],
            "connections": [render_connection(c) for c in self.connections.values()],
            "refresh_grace_s": self.refresh_grace_s,
            "access_tokens": len(self.access_tokens),
            "refresh_tokens": len(self.refresh_tokens),
        }


def render_connection(connection: Connection, tenant_name: str = "") -> dict:
    return {
        "id": connection.id,
        "authEventId": connection.auth_event_id,
        "tenantId": connection.tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": tenant_name,
        "createdDateUtc": iso_utc(connection.created),
        "updatedDateUtc": iso_utc(connection.updated),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sandbox"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(_SIGNING_KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def oauth_error(error: str, status: int = 400) -> Response:
    # Exactly {"error": "..."}: the SDK recognises invalid_grant only in this exact shape.
    return json_response(status, {"error": error})


def _page(status: int, title: str, detail: str) -> Response:
    html = f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1><p>{escape(detail)}</p>"
    return Response(html, status=status, mimetype="text/html")


def register(bp: Blueprint, sandbox) -> None:
    world = sandbox.xero

    @bp.get("/xero/identity/connect/authorize")
    def authorize():
        args = request.args
        if args.get("response_type") != "code":
            return _page(400, "unsupported_response_type", "response_type must be 'code'.")
        client_id, redirect_uri, scope = args.get("client_id"), args.get("redirect_uri"), args.get("scope")
        if not client_id:
            return _page(400, "invalid_request", "client_id is required.")
        target = urlparse(redirect_uri or "")
        if target.scheme not in ("http", "https") or not target.netloc:
            return _page(400, "invalid_request", "redirect_uri must be an absolute http(s) URL.")
        if not scope or not scope.split():
            return _page(400, "invalid_scope", "scope is required.")
        with sandbox.lock:
            identity = world.identity
            code = secrets.token_urlsafe(24)
            identity.codes[code] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "user_id": identity.user_id(args.get("user") or DEFAULT_USER),
                "scope": scope.split(),
                "issued_at": sandbox.clock.now(),
            }
        query = {"code": code, "scope": scope}
        if args.get("state") is not None:
            query["state"] = args["state"]
        separator = "&" if target.query else "?"
        return redirect(f"{redirect_uri}{separator}{urlencode(query)}", code=302)

    @bp.post("/xero/identity/connect/token")
    def token():
        if not request.mimetype.endswith("x-www-form-urlencoded"):
            return oauth_error("unsupported_grant_type")
        client_id, client_secret = _client_credentials()
        if not client_id or not client_secret:
            return oauth_error("invalid_client", 401)
        with sandbox.lock:
            identity = world.identity
            bound = identity.client_secrets.setdefault(client_id, client_secret)
            if not hmac.compare_digest(bound, client_secret):
                return oauth_error("invalid_client")
            grant_type = request.form.get("grant_type")
            if grant_type == "authorization_code":
                outcome = _exchange_code(client_id)
            elif grant_type == "refresh_token":
                outcome = _refresh(client_id)
            else:
                return oauth_error("unsupported_grant_type")
        if isinstance(outcome, Response):
            return outcome
        return json_response(200, outcome, {"Cache-Control": "no-store"})

    def _client_credentials() -> tuple[str | None, str | None]:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            return auth.username, auth.password
        return request.form.get("client_id"), request.form.get("client_secret")

    def _exchange_code(client_id: str) -> dict | Response:
        identity = world.identity
        code = identity.codes.pop(request.form.get("code", ""), None)  # single use, even when refused
        if (
            code is None
            or code["client_id"] != client_id
            or code["redirect_uri"] != request.form.get("redirect_uri")
            or sandbox.clock.now() - code["issued_at"] > CODE_LIFETIME_S
        ):
            return oauth_error("invalid_grant")
        grant = identity.grant_for(code["user_id"], client_id)
        auth_event_id = new_id()
        if grant is None:
            grant = Grant(new_id(), code["user_id"], client_id, code["scope"], auth_event_id)
            identity.grants[grant.id] = grant
        else:
            # Scopes are additive across consents (xero-api.md §1.2).
            grant.scope = grant.scope + [s for s in code["scope"] if s not in grant.scope]
            grant.auth_event_id = auth_event_id
        _connect_all(grant)
        return _issue(grant, code["scope"])

    def _connect_all(grant: Grant) -> None:
        identity, now = world.identity, utc_now()
        existing = {c.tenant_id: c for c in identity.connections_of(grant.id)}
        for org in world.organisations.values():
            connection = existing.get(org.id)
            if connection is None:
                connection = Connection(new_id(), grant.id, org.id, grant.auth_event_id, now, now)
                identity.connections[connection.id] = connection
            else:
                connection.auth_event_id, connection.updated = grant.auth_event_id, now

    def _refresh(client_id: str) -> dict | Response:
        identity, now = world.identity, sandbox.clock.now()
        token_value = request.form.get("refresh_token", "")
        stored = identity.refresh_tokens.get(token_value)
        grant = identity.grants.get(stored.grant_id) if stored else None
        if (
            stored is None
            or grant is None
            or grant.revoked
            or grant.client_id != client_id
            or now - stored.issued_at > REFRESH_IDLE_LIFETIME_S
            or (stored.used_at is not None and now - stored.used_at > identity.refresh_grace_s)
        ):
            return oauth_error("invalid_grant")
        if stored.used_at is None:
            stored.used_at = now
        return _issue(grant, grant.scope)

    def _issue(grant: Grant, scope: list[str]) -> dict:
        identity, now = world.identity, sandbox.clock.now()
        claims = {
            "nbf": int(now),
            "exp": int(now + ACCESS_TOKEN_LIFETIME_S),
            "iss": f"{sandbox.base_url}/xero/identity",
            "aud": f"{sandbox.base_url}/xero/identity/resources",
            "client_id": grant.client_id,
            "sub": grant.user_id.replace("-", ""),
            "auth_time": int(now),
            "xero_userid": grant.user_id,
            "global_session_id": grant.id.replace("-", ""),
            "jti": secrets.token_hex(16),
            "authentication_event_id": grant.auth_event_id,
            "scope": scope,
        }
        access = make_jwt(claims)
        identity.access_tokens[access] = AccessToken(grant.id, now + ACCESS_TOKEN_LIFETIME_S)
        body = {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "token_type": "Bearer",
            "scope": " ".join(scope),
        }
        if "offline_access" in scope:
            refresh = secrets.token_urlsafe(32)
            identity.refresh_tokens[refresh] = RefreshToken(grant.id, now)
            body["refresh_token"] = refresh
        if "openid" in scope:
            body["id_token"] = make_jwt({**claims, "scope": None, "email": grant.user_id})
        return body

    @bp.post("/xero/identity/connect/revocation")
    def revocation():
        client_id, client_secret = _client_credentials()
        if not client_id or not client_secret:
            return oauth_error("invalid_client", 401)
        with sandbox.lock:
            identity = world.identity
            stored = identity.refresh_tokens.get(request.form.get("token", ""))
            grant = identity.grants.get(stored.grant_id) if stored else None
            if grant is not None and grant.client_id == client_id:
                _revoke(grant)
        # RFC 7009: an unknown token is not an error.
        return Response(status=200)

    def _revoke(grant: Grant) -> None:
        identity = world.identity
        grant.revoked = True
        for connection in identity.connections_of(grant.id):
            del identity.connections[connection.id]
        for tokens in (identity.refresh_tokens, identity.access_tokens):
            for value in [v for v, t in tokens.items() if t.grant_id == grant.id]:
                del tokens[value]

    @bp.get("/xero/connections")
    @bp.get("/xero/Connections")
    def list_connections():
        grant, failure = world.authenticate()
        if failure is not None:
            return failure
        wanted = request.args.get("authEventId")
        with sandbox.lock:
            rows = [
                render_connection(c, world.organisations[c.tenant_id].name)
                for c in world.identity.connections_of(grant.id)
                if c.tenant_id in world.organisations and (not wanted or c.auth_event_id == wanted)
            ]
        return json_response(200, rows)

    @bp.delete("/xero/connections/<connection_id>")
    @bp.delete("/xero/Connections/<connection_id>")
    def delete_connection(connection_id: str):
        grant, failure = world.authenticate()
        if failure is not None:
            return failure
        with sandbox.lock:
            connection = world.identity.connections.get(connection_id.lower())
            if connection is None or connection.grant_id != grant.id:
                return json_response(404, {"title": "Not Found", "status": 404, "detail": "Connection not found"})
            del world.identity.connections[connection.id]
        return Response(status=204)


def token_expired_detail(expires_at: float) -> str:
    moment = datetime.fromtimestamp(expires_at, UTC)
    return f"TokenExpired: token expired at {moment.strftime('%m/%d/%Y %H:%M:%S')}"
