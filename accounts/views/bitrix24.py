"""Pages Bitrix24 POSTs into the app frame, its event sender, and the app's own pages."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ValidationError

from accounts import hooks
from accounts.auth import frame_login_required, refused_response
from accounts.errors import Refused
from accounts.event_payload import bitrix24_event_from_form
from accounts.services.events import bitrix24_event_receive
from accounts.services.frame import frame_session_start, frame_token_issue
from accounts.services.portal import portal_install
from accounts.services.xero import xero_connection_of
from integrations.bitrix24.inbound import MalformedPayloadError, parse_frame_post

logger = logging.getLogger(__name__)


@csrf_exempt
@xframe_options_exempt
@require_POST
def install(request: HttpRequest) -> HttpResponse:
    try:
        outcome = portal_install(frame=parse_frame_post(request.POST, request.GET))
    except MalformedPayloadError as exc:
        return refused_response(request, Refused(f"Bitrix24's installer request is malformed: {exc}", status=400))
    except Refused as refusal:
        logging.getLogger("accounts.security").warning("installer request refused: %s", refusal.message)
        return refused_response(request, refusal)
    return render(request, "accounts/install.html", {"outcome": outcome})


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> JsonResponse:
    try:
        status = bitrix24_event_receive(event=bitrix24_event_from_form(request.POST))
    except ValidationError as exc:
        return JsonResponse({"error": "malformed event", "fields": exc.detail}, status=400)
    except MalformedPayloadError as exc:
        return JsonResponse({"error": f"malformed event: {exc}"}, status=400)
    except Refused as refusal:
        logger.warning("Bitrix24 event refused: %s", refusal.message)
        return JsonResponse({"error": refusal.message}, status=refusal.status)
    return JsonResponse({"status": status})


@csrf_exempt
@xframe_options_exempt
@require_POST
def frame_entry(request: HttpRequest) -> HttpResponse:
    """The Application URL and the placement handler: sign the user in, then show the page.

    A 303 to a GET page carrying the frame token means a reload inside the frame does not re-POST.
    """
    try:
        frame = parse_frame_post(request.POST, request.GET)
        session = frame_session_start(frame=frame)
    except MalformedPayloadError as exc:
        return refused_response(request, Refused(f"Bitrix24's request is malformed: {exc}", status=400))
    except Refused as refusal:
        return refused_response(request, refusal)
    token = frame_token_issue(session=session)
    if (frame.placement or "DEFAULT").upper() == "DEFAULT":
        return HttpResponseRedirect(_landing(session, token), status=303)
    ids = hooks.sync.placement_invoice_ids(frame.placement_options)
    return HttpResponseRedirect(hooks.sync.placement_landing(frame.placement, ids, token=token), status=303)


def _landing(session, token: str) -> str:
    """Invoices, or Setup first for an admin whose portal has not finished it (the app cannot sync
    before the stage map and defaults are chosen; a sales user cannot choose them)."""
    if session.is_admin and hooks.sync.setup_needed(session.portal):
        setup_url = _reverse_or_none("web:setup")
        if setup_url:
            return f"{setup_url}?{urlencode({'ft': token})}"
    return f"{reverse('web:invoices')}?{urlencode({'ft': token})}"


def _reverse_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:  # the Setup page is built in parallel; until it exists, land on Invoices
        return None


@require_GET
@frame_login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/home.html",
        {
            "connection": xero_connection_of(portal=request.portal),
            # A switch to another organisation leaves these pointing at the old one's invoices.
            "linked_invoices": hooks.sync.linked_invoices(request.portal),
        },
    )


@require_GET
@frame_login_required
def placement_page(request: HttpRequest) -> HttpResponse:
    """Old links to /app/invoice/?invoice=…&placement=…: the invoice's page or the selection."""
    ids = hooks.sync.placement_invoice_ids({"ID": request.GET.get("invoice", "")})
    return HttpResponseRedirect(
        hooks.sync.placement_landing(request.GET.get("placement", ""), ids, token=request.frame_token), status=303
    )
