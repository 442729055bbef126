"""Bitrix24's per-method time budget (limits.md, "operating").

Each method's execution time is summed per application in one-minute baskets; a basket counts for
10 minutes from its first call (`operating_reset_at`). Before a call runs, the method's sum is
checked: above the limit (480 s on the cloud) the call is refused with 429 OPERATION_TIME_LIMIT,
other methods still work. The outer `batch` is not counted; its commands are, each against its own
method. Every answer's `time` carries `operating` and `operating_reset_at` for the method.

The sandbox's calls take milliseconds, so `POST /_sandbox/bitrix24/settings` sets
`{"operating": {"limit_s": 480, "cost_s": {"crm.item.list": 30}}}`: the limit, and seconds a call
of a method counts for instead of its real duration (to reach the limit in a test). Baskets run on
the sandbox clock (`/_sandbox/limits` time_scale).
"""

from __future__ import annotations

import time

from sandbox.bitrix24.world import B24Error, Bitrix24World, on_reset

LIMIT_S = 480.0
WINDOW_S = 600.0
BASKET_S = 60.0


@on_reset
def _reset(world: Bitrix24World) -> None:
    world.data["operating"] = {}  # method -> [[basket start, seconds], ...]
    world.data["operating_settings"] = {"limit_s": LIMIT_S, "cost_s": {}}


def configure(world: Bitrix24World, settings: dict) -> None:
    """Apply {"limit_s": …, "cost_s": {method: seconds}}; ValueError for anything else."""
    current = world.data.setdefault("operating_settings", {"limit_s": LIMIT_S, "cost_s": {}})
    if "limit_s" in settings:
        limit = float(settings["limit_s"])
        if limit <= 0:
            raise ValueError("limit_s must be positive")
        current["limit_s"] = limit
    if "cost_s" in settings:
        costs = settings["cost_s"]
        if not isinstance(costs, dict):
            raise ValueError("cost_s must map method names to seconds")
        current["cost_s"] = {str(k).lower(): float(v) for k, v in costs.items()}


def _baskets(world: Bitrix24World, method: str, now: float) -> list[list[float]]:
    baskets = world.data.setdefault("operating", {}).setdefault(method.lower(), [])
    baskets[:] = [b for b in baskets if b[0] + WINDOW_S > now]
    return baskets


def status(world: Bitrix24World, method: str) -> tuple[float, float | None]:
    """(operating seconds, operating_reset_at as a unix time) of the method now."""
    now = world.sandbox.clock.now()
    baskets = _baskets(world, method, now)
    if not baskets:
        return 0.0, None
    reset_in = baskets[0][0] + WINDOW_S - now
    return sum(b[1] for b in baskets), time.time() + world.sandbox.clock.real_seconds(reset_in)


def check(world: Bitrix24World, method: str) -> None:
    if method.lower() == "batch":
        return
    used, _ = status(world, method)
    if used > world.data.get("operating_settings", {}).get("limit_s", LIMIT_S):
        raise B24Error(429, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.")


def record(world: Bitrix24World, method: str, seconds: float) -> None:
    if method.lower() == "batch":
        return
    cost = world.data.get("operating_settings", {}).get("cost_s", {}).get(method.lower())
    now = world.sandbox.clock.now()
    baskets = _baskets(world, method, now)
    if not baskets or now - baskets[-1][0] >= BASKET_S:
        baskets.append([now, 0.0])
    baskets[-1][1] += cost if cost is not None else seconds
