"""Placements (widgets): placement.bind/unbind/get/list (§6).

The portal page and /_sandbox/bitrix24/frame open the handler bound here for a placement code.
Binding the same code and handler again replaces the earlier binding (the installer of every
app version re-binds), so re-installs do not pile up duplicates.
"""

from __future__ import annotations

import re

from sandbox.bitrix24 import invoice_kinds
from sandbox.bitrix24.app_state import param, state
from sandbox.bitrix24.events import is_url, require_app_context
from sandbox.bitrix24.world import B24Error, Ctx, rest_method

_CRM_OBJECT_PLACES = ["DETAIL_TAB", "DETAIL_TOOLBAR", "DETAIL_ACTIVITY", "LIST_MENU", "LIST_TOOLBAR"]
KNOWN_PLACEMENTS = [
    *(
        f"CRM_SMART_INVOICE_{p}"
        for p in (
            *_CRM_OBJECT_PLACES,
            "DOCUMENTGENERATOR_BUTTON",
            "ACTIVITY_TIMELINE_MENU",
            "ROBOT_DESIGNER_TOOLBAR",
            "FUNNELS_TOOLBAR",
        )
    ),
    "CRM_INVOICE_LIST_TOOLBAR",
    "CRM_INVOICE_DETAIL_TOOLBAR",
    "CRM_INVOICE_LIST_MENU",
    *(f"CRM_{kind}_{p}" for kind in ("DEAL", "LEAD", "COMPANY", "CONTACT", "QUOTE") for p in _CRM_OBJECT_PLACES),
    "LEFT_MENU",
    "REST_APP_URI",
    "PAGE_BACKGROUND_WORKER",
]
_KNOWN = set(KNOWN_PLACEMENTS)
_DYNAMIC = re.compile(r"^CRM_DYNAMIC_\d+_(DETAIL_TAB|DETAIL_TOOLBAR|DETAIL_ACTIVITY|LIST_MENU|LIST_TOOLBAR)$")


def known(code: str) -> bool:
    return code in _KNOWN or bool(_DYNAMIC.match(code))


def _code(params: dict) -> str:
    code = str(param(params, "PLACEMENT", "") or "").strip().upper()
    if not code:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'PLACEMENT' is null or empty", argument="PLACEMENT")
    return code


@rest_method("placement.bind", admin=True)
def placement_bind(ctx: Ctx, params: dict):
    require_app_context(ctx)
    code = _code(params)
    handler = str(param(params, "HANDLER", "") or "").strip()
    if not known(code) or not invoice_kinds.placement_available(ctx.world, code):
        raise B24Error(400, "ERROR_PLACEMENT_NOT_FOUND", "Placement not found")
    if not handler:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty", argument="HANDLER")
    if not is_url(handler):
        raise B24Error(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
    try:
        user_id = int(param(params, "USER_ID", 0) or 0)
    except (TypeError, ValueError):
        user_id = 0
    app = state(ctx.world)
    app.placements = [p for p in app.placements if (p["placement"], p["handler"]) != (code, handler)]
    app.placements.append(
        {
            "id": ctx.world.next_id("placement"),
            "placement": code,
            "handler": handler,
            "title": str(param(params, "TITLE", "") or ""),
            "description": str(param(params, "DESCRIPTION", "") or ""),
            "groupName": str(param(params, "GROUP_NAME", "") or ""),
            "options": param(params, "OPTIONS") or [],
            "langAll": param(params, "LANG_ALL") or {},
            "userId": user_id,
        }
    )
    return True


@rest_method("placement.unbind", admin=True)
def placement_unbind(ctx: Ctx, params: dict):
    """No HANDLER: every handler of the app for that placement goes."""
    require_app_context(ctx)
    code = _code(params)
    handler = str(param(params, "HANDLER", "") or "").strip()
    app = state(ctx.world)
    keep = [p for p in app.placements if not (p["placement"] == code and (not handler or p["handler"] == handler))]
    count = len(app.placements) - len(keep)
    app.placements = keep
    return {"count": count}


@rest_method("placement.get", admin=True)
def placement_get(ctx: Ctx, params: dict):
    require_app_context(ctx)
    fields = ("placement", "userId", "handler", "options", "title", "description", "langAll")
    return [{k: p[k] for k in fields} for p in state(ctx.world).placements]


@rest_method("placement.list")
def placement_list(ctx: Ctx, params: dict):
    require_app_context(ctx)
    return [code for code in KNOWN_PLACEMENTS if invoice_kinds.placement_available(ctx.world, code)]


def handler_for(world, code: str) -> str | None:
    """The handler the portal opens for a placement (the first one bound)."""
    for placement in state(world).placements:
        if placement["placement"] == code:
            return placement["handler"]
    return None
