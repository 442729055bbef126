"""Who may frame our pages.

Frame views (those that signed a Bitrix24 user in: request.portal is set) may be shown only inside
the portal they belong to: `Content-Security-Policy: frame-ancestors https://<portal domain>`, plus
the sandbox's origin when SANDBOX_URL is set (its portal page frames the app for the demo and the
browser tests). X-Frame-Options cannot name an origin (ALLOW-FROM is dead), so it is removed for
those responses; modern browsers give frame-ancestors precedence anyway. Every other response
keeps Django's X-Frame-Options: DENY (XFrameOptionsMiddleware).

It must sit before XFrameOptionsMiddleware in MIDDLEWARE, so that it sees the response after it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme and parsed.netloc else ""


def frame_ancestors(domain: str) -> str:
    # A domain is stored as Bitrix24 sent it; never let stray characters widen the policy.
    host = "".join(ch for ch in domain if ch.isalnum() or ch in ".-:")
    sources = [f"https://{host}"] if host else []
    sandbox = _origin(settings.SANDBOX_URL or "")
    if sandbox:
        sources.append(sandbox)
    return "frame-ancestors " + (" ".join(sources) if sources else "'none'")


class FrameAncestorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        portal = getattr(request, "portal", None)
        if portal is not None:
            response["Content-Security-Policy"] = frame_ancestors(portal.domain)
            if "X-Frame-Options" in response:
                del response["X-Frame-Options"]
        return response


def opener_kept(view):
    """For the pages of the Xero window (opened from the app's frame inside the portal, another
    origin): `Cross-Origin-Opener-Policy: unsafe-none`, so the window keeps `window.opener` and the
    last page can tell the frame it connected. SecurityMiddleware only sets COOP when absent."""
    import functools

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Cross-Origin-Opener-Policy"] = "unsafe-none"
        return response

    return wrapper
