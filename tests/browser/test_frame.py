"""Opening the app inside the Bitrix24 portal, and what a forged frame or another portal's user sees."""

from __future__ import annotations

import html

from accounts.models import FrameSession, XeroConnection


def test_the_admin_opens_the_app_inside_the_portal_and_sees_its_home(open_app, acme_connected, shoot):
    app = open_app(user=1)
    assert app.status == 200
    assert app.goto("/app/") == 200
    tenant = XeroConnection.objects.get(portal=acme_connected).tenant_name
    assert app.ui.locator("#xero-status").get_attribute("data-status") == "active"
    assert tenant in app.ui.locator("#xero-status").inner_text()
    assert "Portal Admin (administrator)" in app.text()
    assert app.token, "the page in the frame carries no sign-in token"
    shoot(app)


def test_a_clerk_sees_the_home_page_without_the_admin_buttons(open_app, sandbox, acme, shoot):
    clerk = sandbox.bitrix24_user("Sam Clerk", admin=False)
    app = open_app(user=clerk["id"])
    assert app.status == 200
    assert app.goto("/app/") == 200
    assert "Sam Clerk" in app.text() and "(administrator)" not in app.text()
    assert app.ui.get_by_role("link", name="Connect Xero").count() == 0
    assert app.ui.get_by_text("Ask a Bitrix24 administrator").is_visible()
    shoot(app)


def _post_into_a_frame(page, url: str, form: dict) -> int:
    """A page of the attacker's that POSTs `form` into an iframe, as the portal page does."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}">' for k, v in form.items()
    )
    page.set_content(
        f'<form id="f" method="post" target="app" action="{html.escape(url)}">{inputs}</form>'
        '<iframe name="app" id="app" style="width:100%;height:600px"></iframe>'
    )
    with page.expect_response(lambda r: r.url.split("?")[0] == url.split("?")[0]) as answer:
        page.evaluate("document.getElementById('f').submit()")
    page.frame_locator("#app").locator("main").wait_for()
    return answer.value.status


def _shows_nothing_of(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s and s in text]


def test_a_forged_frame_post_gets_a_refusal_page_showing_nothing_of_the_portal(page, sandbox, acme_connected):
    real = sandbox.bitrix24_frame(1)
    tenant = XeroConnection.objects.get(portal=acme_connected).tenant_name
    secrets = [acme_connected.domain, acme_connected.member_id, tenant, "Portal Admin", "ft="]

    forged_token = _post_into_a_frame(page, real["url"], {**real["form"], "AUTH_ID": "made-up-token"})
    body = page.frame_locator("#app").locator("body")
    assert forged_token == 401
    assert "did not accept the user's token" in body.inner_text()
    assert _shows_nothing_of(page.frame(name="app").content(), secrets) == []

    unknown_portal = _post_into_a_frame(page, real["url"], {**real["form"], "member_id": "f" * 32})
    assert unknown_portal == 403
    assert "has not installed the app" in body.inner_text()
    assert _shows_nothing_of(page.frame(name="app").content(), secrets) == []
    assert not FrameSession.objects.exists()


def test_a_user_of_another_portal_sees_only_their_own_portal(
    open_app, page, acme_connected, bravo, other_sandbox, app_url, settings, shoot
):
    bea = other_sandbox.bitrix24_user("Bea Bravo", admin=True)
    tenant = XeroConnection.objects.get(portal=acme_connected).tenant_name

    # Bea opens the app from her own portal: her portal's page, which has no Xero connection. (Our
    # pages may be framed by the portal's domain or the sandbox's origin: her portal's origin here.)
    settings.SANDBOX_URL = other_sandbox.base_url
    app = open_app(user=bea["id"], sandbox_url=other_sandbox.base_url)
    assert app.status == 200
    assert app.goto("/app/") == 200
    assert "Bea Bravo (administrator)" in app.text()
    assert app.ui.locator("#xero-status").get_attribute("data-status") == "not_connected"
    assert tenant not in app.frame.content()
    assert FrameSession.objects.get().portal == bravo
    shoot(app)

    # Her real token, presented as if this portal (member_id and application_token) had sent it.
    mine = other_sandbox.bitrix24_frame(bea["id"])
    forged = {
        **mine["form"],
        "member_id": acme_connected.member_id,
        "APPLICATION_TOKEN": acme_connected.application_token,
    }
    status = _post_into_a_frame(page, f"{app_url}/bitrix24/app/", forged)
    assert status == 401
    assert _shows_nothing_of(page.frame(name="app").content(), [tenant, "Portal Admin", "ft="]) == []
    assert FrameSession.objects.filter(portal=acme_connected).count() == 0
