"""Opening the app from Bitrix24: the frame POST signs a user in for one portal, via a frame token."""

from __future__ import annotations

import time

import requests
from django.core import signing

from accounts.models import FrameSession, Portal
from accounts.services.frame import FRAME_TOKEN_SALT
from tests.accounts.conftest import install, open_frame
from tests.factories import FrameSessionFactory, PortalFactory, XeroConnectionFactory


class _SignedTwoHoursAgo(signing.TimestampSigner):
    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - 7200)


def test_opening_the_app_signs_the_user_in_and_the_token_works_on_the_next_request(admin_frame, acme, app_url):
    assert acme.domain in admin_frame.response.text
    assert "Portal Admin (administrator)" in admin_frame.response.text
    session = FrameSession.objects.get()
    assert (session.portal_id, session.bitrix_user_id, session.is_admin) == (acme.pk, 1, True)
    again = admin_frame.get(f"{app_url}/app/")
    assert again.status_code == 200 and acme.domain in again.text


def test_the_app_page_can_be_framed_by_bitrix24(admin_frame):
    assert "X-Frame-Options" not in admin_frame.response.headers


def test_a_clerk_is_signed_in_without_admin_rights_and_sees_no_admin_buttons(sandbox, acme, clerk):
    frame = open_frame(sandbox, clerk["id"])
    assert frame.response.status_code == 200
    assert "Connect Xero" not in frame.response.text
    assert "Ask a Bitrix24 administrator" in frame.response.text
    assert FrameSession.objects.get().is_admin is False


def test_the_placement_shows_the_invoice_it_was_opened_on(sandbox, acme):
    admin = sandbox.bitrix24_user("Placement Admin", admin=True)
    added = sandbox.bitrix24_rest(
        "crm.item.add", {"entityTypeId": 31, "fields": {"title": "Toolbar invoice"}}, auth=admin["access_token"]
    )
    invoice_id = added["result"]["item"]["id"]
    # Bitrix24 sends the detail toolbar's invoice id as ENTITY_ID, a string.
    frame = open_frame(sandbox, 1, placement="CRM_SMART_INVOICE_DETAIL_TOOLBAR", options={"ENTITY_ID": str(invoice_id)})
    assert frame.response.status_code == 200
    assert "Toolbar invoice" in frame.response.text


def test_the_placement_of_a_missing_invoice_says_so(sandbox, acme):
    frame = open_frame(sandbox, 1, placement="CRM_SMART_INVOICE_DETAIL_TOOLBAR", options={"ENTITY_ID": "9999"})
    assert frame.response.status_code == 404
    assert "does not exist" in frame.response.text


def test_a_forged_auth_id_is_refused(sandbox, acme):
    frame = open_frame(sandbox, 1, AUTH_ID="made-up-token")
    assert frame.response.status_code == 401
    assert not FrameSession.objects.exists()


def test_a_wrong_application_token_is_refused(sandbox, acme):
    frame = open_frame(sandbox, 1, APPLICATION_TOKEN="0" * 32)
    assert frame.response.status_code == 401
    assert not FrameSession.objects.exists()


def test_a_foreign_member_id_is_refused(sandbox, acme):
    frame = open_frame(sandbox, 1, member_id="f" * 32)
    assert frame.response.status_code == 403
    assert "has not installed the app" in frame.response.text
    assert not FrameSession.objects.exists()


def test_a_token_of_another_portal_is_refused_even_with_the_right_application_token(sandbox, acme):
    # A real token of the sandbox portal, presented as if portal B (with a copied application_token)
    # had sent it: user.current against B's stored endpoint fails.
    PortalFactory(
        member_id="b" * 32,
        domain="other.bitrix24.com",
        client_endpoint=f"{sandbox.base_url}/nowhere/rest/",
        application_token=acme.application_token,
    )
    frame = open_frame(sandbox, 1, member_id="b" * 32)
    assert frame.response.status_code in (401, 502)
    assert not FrameSession.objects.exists()


def test_pages_refuse_a_missing_forged_or_expired_frame_token(admin_frame, app_url):
    session = FrameSession.objects.get()
    assert requests.get(f"{app_url}/app/", timeout=30).status_code == 403
    tampered = admin_frame.token[:-3] + ("AAA" if not admin_frame.token.endswith("AAA") else "BBB")
    assert requests.get(f"{app_url}/app/", params={"ft": tampered}, timeout=30).status_code == 403
    expired = _SignedTwoHoursAgo(salt=FRAME_TOKEN_SALT).sign_object({"fs": session.pk, "p": session.portal_id})
    response = requests.get(f"{app_url}/app/", params={"ft": expired}, timeout=30)
    assert response.status_code == 403 and "expired" in response.text


def test_a_sign_in_older_than_its_maximum_age_is_refused(admin_frame, app_url):
    FrameSession.objects.update(created_at="2000-01-01T00:00:00Z")
    response = admin_frame.get(f"{app_url}/app/")
    assert response.status_code == 403 and "expired" in response.text


def test_the_frame_token_is_accepted_in_the_header_for_fetch_calls(admin_frame, app_url, acme):
    response = requests.get(f"{app_url}/app/", headers={"X-Frame-Token": admin_frame.token}, timeout=30)
    assert response.status_code == 200 and acme.domain in response.text


def test_a_session_of_one_portal_never_shows_another_portals_data(sandbox, acme, admin_frame, app_url):
    other = PortalFactory(
        member_id="b" * 32, domain="bravo.bitrix24.com", client_endpoint="https://bravo.bitrix24.com/rest/"
    )
    XeroConnectionFactory(portal=other, tenant_id="t-bravo", tenant_name="Bravo Books Ltd")
    bravo_session = FrameSessionFactory(portal=other, bitrix_user_id=1, name="Bravo Admin", is_admin=True)

    page = admin_frame.get(f"{app_url}/app/")
    assert acme.domain in page.text and "Bravo Books Ltd" not in page.text and "bravo" not in page.text

    # A token naming portal A but portal B's session (as if ids were swapped) is refused.
    crossed = signing.dumps({"fs": bravo_session.pk, "p": acme.pk}, salt=FRAME_TOKEN_SALT, compress=True)
    assert requests.get(f"{app_url}/app/", params={"ft": crossed}, timeout=30).status_code == 403


def test_after_uninstall_an_open_frame_is_signed_out(sandbox, admin_frame, app_url):
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/uninstall", json={}, timeout=30)
    response = admin_frame.get(f"{app_url}/app/")
    assert response.status_code == 403


def test_a_portal_that_needs_reauthorisation_says_what_happened_and_what_an_admin_must_do(
    sandbox, acme, app_url, clerk
):
    Portal.objects.filter(pk=acme.pk).update(
        status=Portal.Status.NEEDS_REAUTH, status_reason="Bitrix24 refused a freshly refreshed token"
    )
    frame = open_frame(sandbox, clerk["id"])
    assert frame.response.status_code == 403
    text = frame.response.text
    assert "not installed any more" not in text
    assert "Sync with Xero is paused" in text and "refused a freshly refreshed token" in text
    assert "administrator must reinstall" in text
    # Doing what it says restores the portal.
    assert install(sandbox, app_url)["install_status"] == 200
    assert Portal.objects.get(pk=acme.pk).is_active
