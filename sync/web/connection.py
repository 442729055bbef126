"""GET /app/xero/status/ (web:xero_status): where the Xero connection stands, for the pages that
opened the Xero window. The window tells its opener when it connected (postMessage); this is the
fallback they poll when the browser cut `window.opener` (another COOP on Xero's side, a blocker)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from accounts.auth import frame_login_required
from accounts.models import XeroConnection
from sync.services.gate import sync_gate


@require_GET
@frame_login_required
def xero_status(request: HttpRequest) -> JsonResponse:
    connection = XeroConnection.objects.filter(portal=request.portal).first()
    gate = sync_gate(request.portal, connection=connection)
    return JsonResponse(
        {
            "connection": connection.status if connection else "none",
            "tenant_id": connection.tenant_id if connection else "",
            "tenant_name": connection.tenant_name if connection else "",
            "updated": connection.updated_at.isoformat() if connection else "",
            "state": str(gate.state),
        },
        headers={"Cache-Control": "no-store"},
    )


urlpatterns = [path("xero/status/", xero_status, name="xero_status")]
