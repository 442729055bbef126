"""Which scope each REST method needs, checked against the access token's scope.

A method of a scope the app was not given is answered `insufficient_scope` (settings/oauth/
error-codes.md; the `batch` page's error example shows it per command), with 401 as Bitrix24
answers authorisation errors. Methods of the `basic` scope (app.info, feature.get, event.*,
batch, profile, user.current/user.admin, placement methods need `placement`) need nothing; the
scope names are api-reference/scopes/permissions.md's. `POST /_sandbox/bitrix24/settings
{"scope": "crm,user"}` plays an app whose card grants fewer scopes (every token, old and new).
"""

from __future__ import annotations

from sandbox.bitrix24.world import B24Error

BASIC = {"user.current", "user.admin", "user.access", "app.info", "feature.get", "batch", "profile", "scope", "methods"}
BY_PREFIX = (("crm.", "crm"), ("catalog.", "catalog"), ("placement.", "placement"), ("user.", "user"))


def needed(method: str) -> str | None:
    name = method.lower()
    if name in BASIC or name.startswith(("event.", "app.")):
        return None
    for prefix, scope in BY_PREFIX:
        if name.startswith(prefix):
            return scope
    return None


def check(world, token, method: str) -> None:
    scope = needed(method)
    if scope is None:
        return
    app = world.data.get("app")
    granted = (getattr(app, "settings", {}) or {}).get("scope") or getattr(token, "scope", None)
    if granted is None:
        return  # the sandbox's own calls, without a token
    if scope not in {s.strip() for s in str(granted).replace(" ", ",").split(",")}:
        raise B24Error(
            401, "insufficient_scope", "The request requires higher privileges than provided by the access token"
        )
