"""`frame_login_required`: the sign-in check for every page of the app inside Bitrix24.

Usage (sync/UI views)::

    @frame_login_required              # any signed-in Bitrix24 user of the portal
    def invoice_panel(request): ...   # request.portal, request.frame_user, request.frame_token

    @frame_login_required(admin=True)  # Bitrix24 admins only

The token comes from `?ft=`, a POST field `ft`, or the `X-Frame-Token` header. The view is
CSRF-exempt: a cross-site frame has no usable CSRF cookie, and the token itself is the unguessable
value a forged cross-site request cannot know. It may be framed (Bitrix24 shows it in an iframe).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from accounts.errors import Refused
from accounts.services.frame import frame_session_resolve, frame_token_issue
from connector.i18n import frame_locale

FRAME_TOKEN_PARAM = "ft"
FRAME_TOKEN_HEADER = "HTTP_X_FRAME_TOKEN"


def frame_token_from(request: HttpRequest) -> str:
    return (
        request.META.get(FRAME_TOKEN_HEADER)
        or request.GET.get(FRAME_TOKEN_PARAM)
        or (request.POST.get(FRAME_TOKEN_PARAM) if request.method == "POST" else None)
        or ""
    )


def refused_response(request: HttpRequest, refusal: Refused) -> HttpResponse:
    return render(request, "accounts/error.html", {"message": refusal.message}, status=refusal.status)


def frame_login_required(view: Callable | None = None, *, admin: bool = False) -> Callable:
    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                session = frame_session_resolve(token=frame_token_from(request))
                if admin and not session.is_admin:
                    raise Refused("Only a Bitrix24 administrator can do this.")
            except Refused as refusal:
                return refused_response(request, refusal)
            request.portal = session.portal
            request.frame_user = session
            # A fresh token on every page keeps an active user signed in (it carries a new timestamp).
            request.frame_token = frame_token_issue(session=session)
            session.save(update_fields=["last_used_at"])
            with frame_locale(session):  # the portal's language and time zone (connector.i18n)
                return func(request, *args, **kwargs)

        return csrf_exempt(xframe_options_exempt(wrapper))

    return decorator(view) if view is not None else decorator
