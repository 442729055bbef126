"""Amounts and times the way the portal's language writes them (the page's language is the
portal's, see connector.i18n).

    {% load b24format %}
    {{ row.amount|money:row.currency }}   1,234.50 NZD · 1.234,50 NZD (de) · 1 234,50 NZD (ru)
    {{ row.updated_at|when }}             the date and time in the page's time zone, with its name
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.utils import formats, timezone

from connector.i18n import page_zone

register = template.Library()


@register.filter
def money(amount, currency: str = "") -> str:
    if amount in (None, ""):
        return "—"
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    number = formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{number}\u00a0{currency}" if currency else number


@register.filter
def when(moment, style: str = "datetime") -> str:
    """A datetime in the page's time zone (the user's or the portal's), localised, with the zone."""
    if not moment:
        return "—"
    zone = page_zone()
    local = timezone.localtime(moment, zone) if timezone.is_aware(moment) else moment
    if style == "date":
        return formats.date_format(local, "SHORT_DATE_FORMAT")
    text = f"{formats.date_format(local, 'SHORT_DATE_FORMAT')} {formats.time_format(local, 'H:i')}"
    name = str(getattr(zone, "key", None) or zone.tzname(local) or "UTC")
    return f"{text} UTC" if name in ("UTC", "Etc/UTC") else f"{text} ({name})"
