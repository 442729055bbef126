"""Who is calling and what app is this: user.current, user.get (minimal), user.admin, profile,
app.info (portal side) and app.option.get/set (§4.2, §4.6, §7)."""

from __future__ import annotations

from sandbox.bitrix24.app_state import APP_VERSION, LANGUAGE_ID, as_list, param, state
from sandbox.bitrix24.world import B24Error, Ctx, ListResult, User, page_of, rest_method

REGISTERED = "2024-01-01T09:00:00+00:00"


def user_row(user: User) -> dict:
    """user.current / user.get shape: ids as strings, like the real portal sends them."""
    return {
        "ID": str(user.id),
        "XML_ID": f"sandbox-{user.id}",
        "ACTIVE": True,
        "NAME": user.name,
        "LAST_NAME": user.last_name,
        "SECOND_NAME": "",
        "EMAIL": user.email,
        "LAST_LOGIN": REGISTERED,
        "DATE_REGISTER": REGISTERED,
        "IS_ONLINE": "Y",
        # An IANA name when the user chose one in their profile, "" when they did not
        # (api-reference/user/user-get.md: TIME_ZONE string, "" in the documented answer).
        "TIME_ZONE": user.time_zone,
        # Written without T or offset in the documented answer (api-reference/user/user-current.md).
        "LAST_ACTIVITY_DATE": REGISTERED[:19].replace("T", " "),
        "PERSONAL_GENDER": "",
        "PERSONAL_BIRTHDAY": "",
        "WORK_POSITION": "Administrator" if user.admin else "",
        "UF_EMPLOYMENT_DATE": "",
        "UF_DEPARTMENT": [1],
        "USER_TYPE": "employee",
    }


@rest_method("user.current")
def user_current(ctx: Ctx, params: dict):
    return user_row(ctx.user)


@rest_method("user.get")
def user_get(ctx: Ctx, params: dict):
    """Filter by ID (one or a list) and/or ACTIVE; other filters are ignored."""
    flt = param(params, "FILTER") or param(params, "filter") or {}
    if not isinstance(flt, dict):
        flt = {}
    wanted_ids = as_list(param(flt, "ID", param(params, "ID")))
    users = sorted(ctx.world.users.values(), key=lambda u: u.id)
    if wanted_ids:
        wanted = {str(x) for x in wanted_ids}
        users = [u for u in users if str(u.id) in wanted]
    rows, total, nxt = page_of([user_row(u) for u in users], param(params, "start"))
    return ListResult(rows, total, nxt)


@rest_method("user.admin")
def user_admin(ctx: Ctx, params: dict):
    return bool(ctx.user.admin)


@rest_method("profile")
def profile(ctx: Ctx, params: dict):
    return {
        "ID": str(ctx.user.id),
        "ADMIN": bool(ctx.user.admin),
        "NAME": ctx.user.name,
        "LAST_NAME": ctx.user.last_name,
        "PERSONAL_GENDER": "",
        "PERSONAL_PHOTO": "",
        "TIME_ZONE": "",
        "TIME_ZONE_OFFSET": 0,
    }


def require_app_context(ctx: Ctx) -> None:
    if ctx.token is None:
        raise B24Error(403, "ACCESS_DENIED", "Access denied! Application context required")


@rest_method("app.info")
def app_info(ctx: Ctx, params: dict):
    require_app_context(ctx)
    app = state(ctx.world)
    return {
        "ID": 1,
        "CODE": app.client_id or "local.sandbox",
        "VERSION": int(APP_VERSION),
        "STATUS": app.settings["status"],
        "INSTALLED": bool(ctx.world.installed),
        "PAYMENT_EXPIRED": "N",
        "DAYS": None,
        "LANGUAGE_ID": LANGUAGE_ID,
        "LICENSE": "en_project",
        "LICENSE_TYPE": "project",
        "LICENSE_FAMILY": "project",
    }


@rest_method("app.option.set", admin=True)
def app_option_set(ctx: Ctx, params: dict):
    require_app_context(ctx)
    options = param(params, "options")
    if not isinstance(options, dict) or not options:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'options' is null or empty", argument="options")
    state(ctx.world).options.update({str(k): v for k, v in options.items()})
    return True


@rest_method("app.option.get")
def app_option_get(ctx: Ctx, params: dict):
    """One option's value (null when unset), or all options without `option`."""
    require_app_context(ctx)
    options = state(ctx.world).options
    name = param(params, "option")
    if name in (None, ""):
        return dict(options)
    return options.get(str(name))


# Plan features are set with POST /_sandbox/bitrix24/settings {"features": {code: bool}}. Every
# feature is off unless a test turns it on: the default portal is a plan without
# `rest_offline_extended` (offline-event reservation), so apps keep to online events.


@rest_method("feature.get")
def feature_get(ctx: Ctx, params: dict):
    """{"value": "Y"|"N"}: whether the portal's plan includes the feature CODE (unknown codes: "N")."""
    code = str(param(params, "CODE", "") or "").strip()
    if not code:
        raise B24Error(400, "ERROR_ARGUMENT", "Argument 'CODE' is null or empty", argument="CODE")
    enabled = state(ctx.world).settings.get("features") or {}
    return {"value": "Y" if enabled.get(code) else "N"}
