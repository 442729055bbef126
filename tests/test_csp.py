"""Who may frame our pages: a frame page only by its own portal (and the sandbox's portal page);
everything else not at all."""

from __future__ import annotations

import pytest
import requests

from tests.sync import conftest as sync_fixtures
from tests.sync import test_pages_invoices as pages
from tests.sync.test_pages_invoices import signed_in

# Fixtures shared with the sync tests (pytest finds fixtures by the names in this module).
app_url, acme, other_portal_frame = sync_fixtures.app_url, sync_fixtures.acme, pages.other_portal_frame

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_frame_page_may_be_framed_only_by_its_portal(sandbox, acme, app_url):
    clerk = sandbox.bitrix24_user("Cleo Clerk", admin=False)
    frame = signed_in(sandbox, clerk)
    for response in (frame.response, frame.http.get(f"{app_url}/app/log/", params={"ft": frame.token}, timeout=10)):
        assert response.status_code == 200
        assert (
            response.headers["Content-Security-Policy"] == f"frame-ancestors https://{acme.domain} {sandbox.base_url}"
        )
        assert "X-Frame-Options" not in response.headers


def test_another_portals_page_does_not_allow_this_portal(sandbox, acme, app_url, other_portal_frame):
    response = requests.get(f"{app_url}/app/log/", params={"ft": other_portal_frame}, timeout=10)
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("frame-ancestors https://globex.bitrix24.com")
    assert acme.domain not in policy


def test_pages_outside_the_frame_are_never_framed(app_url):
    for path in ("/admin/login/", "/health/"):
        response = requests.get(f"{app_url}{path}", timeout=10)
        assert response.headers.get("X-Frame-Options") == "DENY", path
        assert "frame-ancestors" not in response.headers.get("Content-Security-Policy", "")
