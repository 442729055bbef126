"""The language and time zone of a page inside Bitrix24.

Bitrix24 sends `LANG` with the frame POST (bitrix24 app docs: the query of the application URL
carries DOMAIN, PROTOCOL, LANG, APP_SID); the frame sign-in keeps it on the FrameSession, with the
user's TIME_ZONE from user.current. Each page of the app then renders in that language (English,
Russian and German are translated; any other falls back to English) and shows times in the user's
zone, else the portal's (learned from the offset Bitrix24 writes in its dates), else UTC.
"""

from __future__ import annotations

import contextlib
import contextvars
import zoneinfo
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta, tzinfo
from datetime import timezone as fixed_timezone
from typing import Any

from django.conf import settings
from django.utils import translation

# Bitrix24 language ids that are not the ISO code of the language Django knows.
BITRIX24_LANGS = {"ua": "uk", "br": "pt-br", "la": "es", "sc": "zh-hans", "tc": "zh-hant", "vn": "vi", "kz": "kk"}


def language_for(lang: str) -> str:
    code = (lang or "").strip().lower().replace("_", "-")
    code = BITRIX24_LANGS.get(code, code)
    supported = {c for c, _ in settings.LANGUAGES}
    if code in supported:
        return code
    base = code.split("-")[0]
    return base if base in supported else settings.LANGUAGE_CODE


def zone_for(name: str) -> tzinfo | None:
    """An IANA name ("Europe/Berlin") or a fixed offset ("+03:00"); None when neither."""
    name = (name or "").strip()
    if not name:
        return None
    if name[0] in "+-" and len(name) == 6 and name[3] == ":":
        try:
            minutes = int(name[1:3]) * 60 + int(name[4:6])
        except ValueError:
            return None
        return fixed_timezone(timedelta(minutes=minutes if name[0] == "+" else -minutes))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def offset_name(moment) -> str:
    """ "+03:00" for an aware datetime (the zone Bitrix24 wrote it in)."""
    offset = moment.utcoffset() if moment is not None and moment.tzinfo else None
    if offset is None:
        return ""
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# How to find a portal's own time zone name (stored in sync's SyncSettings.time_zone): sync sets it
# at start-up (sync.apps), so connector imports no app (issue 17's layers).
portal_zone_name: Callable[[Any], str] = lambda portal: ""  # noqa: E731


def portal_zone(portal) -> tzinfo | None:
    return zone_for(portal_zone_name(portal) or "")


# The zone the page shows times in. Deliberately not Django's current time zone: the views also map
# invoices (dates included) and must do so the same way as the workers, in UTC.
PAGE_ZONE: contextvars.ContextVar[tzinfo | None] = contextvars.ContextVar("page_zone", default=None)


def page_zone() -> tzinfo:
    return PAGE_ZONE.get() or UTC


@contextlib.contextmanager
def frame_locale(session) -> Iterator[None]:
    zone = zone_for(getattr(session, "time_zone", "")) or portal_zone(session.portal) or UTC
    token = PAGE_ZONE.set(zone)
    try:
        with translation.override(language_for(getattr(session, "lang", ""))):
            yield
    finally:
        PAGE_ZONE.reset(token)
