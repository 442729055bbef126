"""The Xero connection window (a new top-level window: Xero's login refuses frames)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import frame_login_required, refused_response
from accounts.errors import Refused
from accounts.serializers import XeroChooseRequest
from accounts.services.xero import (
    XERO_STATE_MAX_AGE,
    xero_connect_complete,
    xero_connect_start,
    xero_connection_choose,
    xero_connection_disconnect,
)
from connector.middleware import opener_kept

# The browser half of the state binding (accounts/services/xero.py). First-party: the connect view
# runs in the top-level window that then goes to Xero and comes back to the callback. Lax, so the
# top-level redirect back from Xero carries it; scoped to /xero/.
CONSENT_COOKIE = "xero_consent"


@opener_kept
@require_GET
@frame_login_required(admin=True)
def connect(request: HttpRequest) -> HttpResponse:
    start = xero_connect_start(
        portal=request.portal,
        started_by_user_id=request.frame_user.bitrix_user_id,
        frame_session=request.frame_user,
    )
    response = HttpResponseRedirect(start.url)
    response.set_cookie(
        CONSENT_COOKIE,
        start.browser_key,
        max_age=int(XERO_STATE_MAX_AGE.total_seconds()),
        path="/xero/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response


@opener_kept
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    if request.GET.get("error"):
        message = f"Xero did not connect: {request.GET.get('error_description') or request.GET['error']}."
        return refused_response(request, Refused(message, status=400))
    try:
        outcome = xero_connect_complete(
            code=request.GET.get("code", ""),
            state=request.GET.get("state", ""),
            browser_key=request.COOKIES.get(CONSENT_COOKIE, ""),
        )
    except Refused as refusal:
        return refused_response(request, refusal)
    if outcome.connection is None:
        return render(request, "accounts/xero_choose.html", {"outcome": outcome})
    return render(request, "accounts/xero_connected.html", {"connection": outcome.connection})


@opener_kept
@require_POST
def choose(request: HttpRequest) -> HttpResponse:
    parsed = XeroChooseRequest(data=request.POST)
    if not parsed.is_valid():
        field = next(iter(parsed.errors))
        message = (
            "Choose one of the organisations listed."
            if field == "tenant_id"
            else "This choice is missing its consent state. Connect Xero again from the app."
        )
        return refused_response(request, Refused(message, status=400))
    try:
        connection = xero_connection_choose(
            state=parsed.validated_data["state"],
            tenant_id=parsed.validated_data["tenant_id"],
            browser_key=request.COOKIES.get(CONSENT_COOKIE, ""),
        )
    except Refused as refusal:
        return refused_response(request, refusal)
    return render(request, "accounts/xero_connected.html", {"connection": connection})


@require_POST
@frame_login_required(admin=True)
def disconnect(request: HttpRequest) -> HttpResponse:
    xero_connection_disconnect(portal=request.portal)
    return HttpResponseRedirect(f"{reverse('accounts:home')}?ft={request.frame_token}", status=303)
