"""The fake Bitrix24 portal's state and the REST method registry.

Methods live in modules of this package and register themselves with `@rest_method(...)`; the
blueprint (sandbox/bitrix24/__init__.py) resolves the `auth` token to a user, applies the leaky
bucket and dispatches. `batch` dispatches its commands through the same registry.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class B24Error(Exception):
    """An error the way Bitrix24 answers it: HTTP status + {"error": code, "error_description": text}."""

    def __init__(self, status: int, code: str, description: str = "", **extra: Any) -> None:
        super().__init__(f"{status} {code}: {description}")
        self.status = status
        self.code = code
        self.description = description
        self.extra = extra

    def body(self) -> dict:
        return {"error": self.code, "error_description": self.description, **self.extra}


@dataclass
class User:
    id: int
    name: str
    last_name: str = ""
    email: str = ""
    admin: bool = False
    invoices: str = "all"  # "all" | "own": which invoices (and product rows) the user may read/change
    time_zone: str = ""  # the user's own zone in their settings (user.current TIME_ZONE; "" when none)


@dataclass
class AccessToken:
    token: str
    user_id: int
    expires_at: float  # on the sandbox limits clock
    refresh_token: str = ""
    scope: str = "crm,placement,user,catalog"


@dataclass
class MethodSpec:
    name: str
    func: Callable[[Ctx, dict], Any]
    admin: bool = False  # only portal admins may call it (ACCESS_DENIED otherwise)


REGISTRY: dict[str, MethodSpec] = {}


def rest_method(name: str, *, admin: bool = False):
    """Register a REST method. The function gets (ctx, params) and returns `result`, or a
    ListResult for list methods (adds `total`/`next`), or raises B24Error."""

    def decorator(func):
        REGISTRY[name.lower()] = MethodSpec(name, func, admin)
        return func

    return decorator


@dataclass
class ListResult:
    result: Any
    total: int | None = None
    next: int | None = None


@dataclass
class Ctx:
    world: Bitrix24World
    user: User
    token: AccessToken | None
    method: str


PAGE_SIZE = 50


def page_of(rows: list, start: Any) -> tuple[list, int | None, int | None]:
    """Bitrix24 paging: pages of 50 from `start`; start=-1 skips the count (total 0, no next)."""
    try:
        start_i = int(start or 0)
    except (TypeError, ValueError):
        start_i = 0
    if start_i == -1:
        return rows[:PAGE_SIZE], 0, None
    start_i = max(0, start_i)
    chunk = rows[start_i : start_i + PAGE_SIZE]
    nxt = start_i + PAGE_SIZE if start_i + PAGE_SIZE < len(rows) else None
    return chunk, len(rows), nxt


@dataclass
class Bitrix24World:
    sandbox: Any
    member_id: str = ""
    domain: str = "sandbox.bitrix24.com"
    application_token: str = ""
    installed: bool = False
    app_url: str = ""
    users: dict[int, User] = field(default_factory=dict)
    tokens: dict[str, AccessToken] = field(default_factory=dict)  # access token -> token
    refresh_tokens: dict[str, int] = field(default_factory=dict)  # refresh token -> user id
    data: dict[str, Any] = field(default_factory=dict)  # entity stores, filled by each module's reset hook
    _next_ids: dict[str, int] = field(default_factory=dict)

    def next_id(self, kind: str) -> int:
        self._next_ids[kind] = self._next_ids.get(kind, 0) + 1
        return self._next_ids[kind]

    # --- lifecycle ---
    def reset(self) -> None:
        self.member_id = secrets.token_hex(16)
        self.application_token = secrets.token_hex(16)
        self.installed = False
        self.app_url = ""
        self.users = {1: User(id=1, name="Portal", last_name="Admin", email="admin@example.com", admin=True)}
        self._next_ids = {"user": 1}
        self.tokens.clear()
        self.refresh_tokens.clear()
        self.data = {}
        for hook in _RESET_HOOKS:
            hook(self)

    def snapshot(self) -> dict:
        out = {
            "member_id": self.member_id,
            "domain": self.domain,
            "installed": self.installed,
            "users": [vars(u) for u in self.users.values()],
        }
        for hook in _SNAPSHOT_HOOKS:
            out.update(hook(self))
        return out

    def limits_changed(self) -> None:
        for hook in _LIMITS_HOOKS:
            hook(self)

    def fault_response(self, fault):
        from flask import jsonify

        codes = {
            503: ("QUERY_LIMIT_EXCEEDED", "Too many requests"),
            429: ("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit."),
            401: ("expired_token", "The access token provided has expired."),
            500: ("INTERNAL_SERVER_ERROR", "Internal server error"),
        }
        if fault.location:
            from flask import redirect

            return redirect(fault.location, code=fault.status)
        code, text = codes.get(fault.status, ("ERROR_UNEXPECTED_ANSWER", "Injected failure"))
        body = fault.body or {"error": code, "error_description": text}
        return jsonify(body), fault.status

    # --- endpoints the portal is reached at ---
    @property
    def client_endpoint(self) -> str:
        return f"{self.sandbox.base_url}/bitrix24/rest/"

    @property
    def server_endpoint(self) -> str:
        return f"{self.sandbox.base_url}/bitrix24/oauth/rest/"

    # --- tokens ---
    ACCESS_TOKEN_TTL = 3600

    def issue_token(self, user_id: int) -> AccessToken:
        token = AccessToken(
            token=secrets.token_hex(16),
            user_id=user_id,
            expires_at=self.sandbox.clock.now() + self.ACCESS_TOKEN_TTL,
            refresh_token=secrets.token_hex(16),
        )
        self.tokens[token.token] = token
        self.refresh_tokens[token.refresh_token] = user_id
        return token

    def resolve(self, auth: str | None) -> tuple[User, AccessToken]:
        if not auth:
            raise B24Error(401, "NO_AUTH_FOUND", "Wrong authorization data")
        token = self.tokens.get(auth)
        if token is None or token.user_id not in self.users:
            raise B24Error(401, "NO_AUTH_FOUND", "Wrong authorization data")
        if token.expires_at <= self.sandbox.clock.now():
            raise B24Error(401, "expired_token", "The access token provided has expired.")
        return self.users[token.user_id], token

    def call(self, ctx: Ctx, method: str, params: dict) -> ListResult:
        spec = REGISTRY.get(method.lower())
        if spec is None:
            raise B24Error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        if spec.admin and not ctx.user.admin:
            raise B24Error(403, "ACCESS_DENIED", "Access denied! Admin permissions required")
        for guard in _CALL_GUARDS:
            guard(ctx.world, spec.name, params)
        from sandbox.bitrix24 import operating, scopes

        scopes.check(ctx.world, ctx.token, spec.name)
        operating.check(ctx.world, spec.name)
        started = time.perf_counter()
        try:
            out = spec.func(Ctx(ctx.world, ctx.user, ctx.token, spec.name), params)
        finally:
            operating.record(ctx.world, spec.name, time.perf_counter() - started)
        return out if isinstance(out, ListResult) else ListResult(out)

    def time_block(self, started: float, method: str = "") -> dict:
        """The answer's `time`; `operating`/`operating_reset_at` are the method's budget so far
        (limits.md; sandbox/bitrix24/operating.py)."""
        from sandbox.bitrix24 import operating

        used, reset_at = operating.status(self, method) if method else (0.0, None)
        finished = time.time()
        return {
            "start": started,
            "finish": finished,
            "duration": finished - started,
            "processing": finished - started,
            "date_start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(started)),
            "date_finish": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(finished)),
            "operating_reset_at": int(reset_at if reset_at is not None else finished + 600),
            "operating": used,
        }


_RESET_HOOKS: list[Callable[[Bitrix24World], None]] = []
_SNAPSHOT_HOOKS: list[Callable[[Bitrix24World], dict]] = []
_LIMITS_HOOKS: list[Callable[[Bitrix24World], None]] = []
_CALL_GUARDS: list[Callable[[Bitrix24World, str, dict], None]] = []


def on_reset(func):
    _RESET_HOOKS.append(func)
    return func


def on_snapshot(func):
    _SNAPSHOT_HOOKS.append(func)
    return func


def on_call(func):
    """Register a check run before every REST method (method name, params); it may raise B24Error
    (sandbox/bitrix24/invoice_kinds.py: the methods of invoices the portal does not have)."""
    _CALL_GUARDS.append(func)
    return func


def on_limits_changed(func):
    _LIMITS_HOOKS.append(func)
    return func


_EVENT_SINKS: list[Callable[[Bitrix24World, str, dict, User | None], None]] = []


def on_event(func):
    """Register the event emitter (sandbox/bitrix24/events.py): called for every portal event."""
    _EVENT_SINKS.append(func)
    return func


def emit(world: Bitrix24World, event: str, data: dict, user: User | None) -> None:
    """A change happened in the portal (e.g. ONCRMDYNAMICITEMUPDATE with data={"FIELDS": {"ID": 5,
    "ENTITY_TYPE_ID": 31}}); `user` made it (None for automation: the event then carries no tokens)."""
    for sink in _EVENT_SINKS:
        sink(world, event, data, user)
