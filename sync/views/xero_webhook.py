"""POST /xero/webhooks/: Xero's signed webhooks (xero-api.md §7.4).

Verify the signature on the raw body, store the events, answer 200 with an empty body; the work
happens in a worker. Xero retries anything but 200 for 24 h and then disables the webhook, so
only a bad signature (401), a broken body (400) or a missing key (503) are refused.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError

from integrations.xero.webhooks import xero_signature_valid
from sync.services.inbox_record import inbox_record_xero_events
from sync.views.serializers import xero_webhook_from_body

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def xero_webhook(request: HttpRequest) -> HttpResponse:
    key = settings.XERO_WEBHOOK_KEY
    if not key:
        # Never accept unsigned events; 503 makes Xero retry once the key is configured.
        logger.error("Xero webhook refused: XERO_WEBHOOK_KEY is not set, so no signature can be checked")
        return HttpResponse(status=503)
    body = request.body
    if not xero_signature_valid(key, body, request.headers.get("x-xero-signature")):
        logger.warning("Xero webhook with a bad or missing x-xero-signature refused (%d bytes)", len(body))
        return HttpResponse(status=401)
    try:
        payload = xero_webhook_from_body(body)
    except ValidationError as exc:
        # Signed by Xero yet unreadable: a bug on one side. 400 keeps Xero retrying while we look;
        # the answer names what is wrong.
        logger.error("signed Xero webhook is malformed: %s; body starts %r", exc.detail, body[:200])
        return JsonResponse({"error": "malformed webhook", "fields": exc.detail}, status=400)
    inbox_record_xero_events(payload=payload, raw_body=body)
    return HttpResponse(status=200)
