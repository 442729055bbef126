"""Typed values as Bitrix24 reads and writes them: portal-time ISO strings, Y/N flags, ids.

The portal's time zone is a setting (`POST /_sandbox/bitrix24/settings {"time_zone": "<IANA name>"}`);
after a reset it is Europe/Moscow (+03:00, no DST) on purpose: a client that drops or misreads offsets
sees wrong dates here at once. Date-times are written in the portal's offset
(`2024-06-14T14:18:56+03:00`); **date fields** (`begindate`, `closedate`) as Bitrix24 writes them:
UTC midnight of the day, written in the portal's offset — `"begindate": "2024-07-23T02:00:00+02:00"`
in api-reference/crm/universal/crm-item-update.md (and crm-item-add.md). West of UTC that is the
evening before in local time (`2024-07-22T19:00:00-05:00` for 23 July), which is why clients must
read the day in UTC.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.bitrix24.world import B24Error, on_reset

DEFAULT_TIME_ZONE = "Europe/Moscow"
PORTAL_TZ: tzinfo = ZoneInfo(DEFAULT_TIME_ZONE)
_time_zone_name = DEFAULT_TIME_ZONE


def set_time_zone(name: str) -> None:
    """Make `name` (an IANA zone) the portal's time zone; ValueError for an unknown name."""
    global PORTAL_TZ, _time_zone_name
    try:
        zone = ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    PORTAL_TZ, _time_zone_name = zone, str(name)
    parse_instant.cache_clear()  # naive values are read in the portal's zone


def time_zone() -> str:
    return _time_zone_name


def known_zone(name: str) -> bool:
    """Whether `name` is an IANA zone (a user's TIME_ZONE must be one)."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@on_reset
def _reset_time_zone(world: Any) -> None:
    set_time_zone(DEFAULT_TIME_ZONE)


def now_iso() -> str:
    """The current wall time in the portal's offset, as crm.item returns it ("...T12:00:00+03:00")."""
    return datetime.now(PORTAL_TZ).replace(microsecond=0).isoformat()


def today() -> date:
    return datetime.now(PORTAL_TZ).date()


def date_iso(day: date) -> str:
    """A date field the way crm.item returns it: UTC midnight of the day, in the portal's offset."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).astimezone(PORTAL_TZ).isoformat()


@functools.lru_cache(maxsize=65536)
def parse_instant(text: str) -> float:
    """Seconds since the epoch for an ISO date or date-time. Naive values are portal time.

    Raises ValueError for anything else. Cached: list filters compare the same stored strings
    for every row of every page.
    """
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=PORTAL_TZ).timestamp()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PORTAL_TZ)
    return moment.timestamp()


def to_date_iso(value: Any) -> str | None:
    """A written date ("2026-09-01" or any ISO date-time) as the portal stores it, or None if empty."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(value)
    instant = parse_instant(value)
    text = value.strip()
    if len(text) == 10:
        return date_iso(date.fromisoformat(text))
    moment = datetime.fromtimestamp(instant, UTC)
    if moment.hour == moment.minute == moment.second == 0:
        return date_iso(moment.date())  # a value as Bitrix24 wrote it (UTC midnight) keeps its day
    # Any other date-time given for a date field keeps its calendar day in the portal's zone.
    return date_iso(datetime.fromtimestamp(instant, PORTAL_TZ).date())


def to_datetime_iso(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(value)
    return datetime.fromtimestamp(parse_instant(value), PORTAL_TZ).replace(microsecond=0).isoformat()


def to_int(value: Any) -> int:
    """An integer from JSON or from a form string; bools and fractions are not integers."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(value)


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        return float(value.strip())
    raise ValueError(value)


def to_yn(value: Any) -> str:
    """Y/N flags also arrive as booleans, 1/0 or "true"/"false" from other clients."""
    if value in (True, 1, "1", "Y", "y", "true", "TRUE"):
        return "Y"
    if value in (False, 0, "0", "N", "n", "false", "FALSE", ""):
        return "N"
    raise ValueError(value)


def money(value: float) -> float:
    return round(value + 0.0, 2)


def require(params: dict, name: str) -> Any:
    """A required method parameter; Bitrix24's engine answers this wording when one is missing."""
    value = params.get(name)
    if value is None or value == "":
        raise B24Error(400, "INVALID_ARG_VALUE", f"Could not find value for parameter {{{name}}}")
    return value


def int_param(params: dict, name: str) -> int:
    value = require(params, name)
    try:
        return to_int(value)
    except ValueError:
        raise B24Error(
            400,
            "INVALID_ARG_VALUE",
            f"Invalid value {value!r} to match with parameter {{{name}}}. Should be value of type int.",
        ) from None


def dict_param(params: dict, name: str, *, required: bool = False) -> dict:
    value = params.get(name)
    if value is None or value == "" or value == []:
        if required:
            raise B24Error(400, "INVALID_ARG_VALUE", f"Could not find value for parameter {{{name}}}")
        return {}
    if not isinstance(value, dict):
        raise B24Error(
            400,
            "INVALID_ARG_VALUE",
            f"Invalid value to match with parameter {{{name}}}. Should be value of type array.",
        )
    return value


def classic_error(text: str) -> B24Error:
    """An error of the classic crm.* methods (companies, contacts, requisites, old invoices): PHP's
    empty `"error": ""` with Bitrix24's English text."""
    return B24Error(400, "", text)


def classic_fields_param(params: dict) -> dict:
    """The classic methods' `fields`, which must be an array (an object in JSON)."""
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise classic_error("Parameter 'fields' must be array.")
    return fields
