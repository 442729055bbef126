"""The app side of the fake portal: what Bitrix24 keeps about the one installed app.

Install progress, the OAuth client the app uses, event bindings, placements, the offline queue,
outbound deliveries and app options. It lives in `world.data["app"]` and is created lazily, so it
exists even when the world was reset before this module was imported (create_app resets the
world before the blueprint imports the method modules).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.bitrix24.world import AccessToken, Bitrix24World, on_snapshot

# The OAuth server's host as Bitrix24 reports it in token answers ("domain"): the portal's own
# host is only in client_endpoint, and a client that mixes the two up should fail in the sandbox.
OAUTH_DOMAIN = "oauth.bitrix.info"
REFRESH_TOKEN_TTL = 180 * 24 * 3600  # current docs: 180 days
LANGUAGE_ID = "en"
APP_VERSION = "1"

DEFAULT_SETTINGS: dict[str, Any] = {
    "refresh_grace_s": 0.0,  # a used refresh token answers with the same new pair for this long
    "event_delay_s": 0.05,  # outbound events leave the queue this much later (real time)
    "event_timeout_s": 5.0,  # a handler slower than this is dropped, like the real queue does
    "invoices": "new",  # the portal's invoices: "new" (smart, type 31), "old" (crm.invoice.*) or "both"
    "status": "L",  # app status in tokens and frames: L local, F free, D demo, T trial, P paid
}


@dataclass
class Binding:
    id: int
    event: str  # upper-case name, e.g. ONCRMDYNAMICITEMUPDATE_31
    handler: str  # "" for offline bindings
    auth_type: int  # 0: tokens of the user who made the change; else always this user's
    offline: bool
    user_id: int  # who bound it
    auth_connector: str = ""
    options: Any = None

    def as_rest(self) -> dict:
        return {
            "event": self.event,
            "handler": self.handler,
            "auth_type": str(self.auth_type),
            "offline": 1 if self.offline else 0,
        }


@dataclass
class AppState:
    install_url: str = ""
    event_url: str = ""
    install_pending: bool = False  # the installer page got its POST; waiting for installFinish
    installs: int = 0
    client_id: str | None = None  # fixed by the first token request
    client_secret: str | None = None
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    used_refresh: dict[str, tuple[float, str]] = field(default_factory=dict)  # rt -> (used at, new access)
    auth_codes: dict[str, dict] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    placements: list[dict] = field(default_factory=list)
    offline: list[dict] = field(default_factory=list)
    deliveries: list[dict] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    last_offline_signal: float = 0.0

    def snapshot(self) -> dict:
        return {
            "install_url": self.install_url,
            "event_url": self.event_url,
            "install_pending": self.install_pending,
            "installs": self.installs,
            "client_id": self.client_id,
            "settings": dict(self.settings),
            "bindings": [asdict(b) for b in self.bindings],
            "placements": [dict(p) for p in self.placements],
            "offline_events": [dict(r) for r in self.offline],
            "deliveries": [dict(d) for d in self.deliveries],
            "options": dict(self.options),
        }


def state(world: Bitrix24World) -> AppState:
    """The app state of this world (callers hold sandbox.lock for read-modify-write)."""
    current = world.data.get("app")
    if current is None:
        current = world.data["app"] = AppState()
    return current


@on_snapshot
def _snapshot(world: Bitrix24World) -> dict:
    return {"app": state(world).snapshot()}


def token_json(world: Bitrix24World, token: AccessToken) -> dict:
    """The OAuth server's full token answer (§4.2); b24pysdk requires every one of these keys."""
    now = world.sandbox.clock.now()
    return {
        "access_token": token.token,
        "refresh_token": token.refresh_token,
        "expires": int(token.expires_at),
        "expires_in": max(0, round(token.expires_at - now)),
        "scope": token.scope,
        "domain": OAUTH_DOMAIN,
        "server_endpoint": world.server_endpoint,
        "client_endpoint": world.client_endpoint,
        "member_id": world.member_id,
        "user_id": token.user_id,
        "status": state(world).settings["status"],
    }


def param(params: dict, name: str, default: Any = None) -> Any:
    """A REST parameter by name in any case: Bitrix24 accepts `event` and `EVENT` alike."""
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if str(key).lower() == lowered:
            return value
    return default


def as_list(value: Any) -> list:
    """`id[]=1&id[]=2`, `{"0": 1, "1": 2}` and `[1, 2]` all mean a list."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """Nested data as PHP-style form fields (data[FIELDS][ID]=5), every value a string."""
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, inner in value.items():
            pairs += flatten(f"{prefix}[{key}]" if prefix else str(key), inner)
        return pairs
    if isinstance(value, (list, tuple)):
        pairs = []
        for index, inner in enumerate(value):
            pairs += flatten(f"{prefix}[{index}]", inner)
        return pairs
    if isinstance(value, bool):
        return [(prefix, "Y" if value else "N")]
    return [(prefix, "" if value is None else str(value))]
