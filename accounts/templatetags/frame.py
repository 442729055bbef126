"""`{% frame_url "name" arg %}`: a URL of the app that keeps the frame sign-in (appends ?ft=)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def frame_url(context, view_name: str, *args) -> str:
    url = reverse(view_name, args=args)
    token = getattr(context.get("request"), "frame_token", "")
    return f"{url}?{urlencode({'ft': token})}" if token else url
