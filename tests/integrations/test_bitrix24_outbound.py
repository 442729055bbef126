"""No request to a host the service did not choose (issue 8, point 4).

A redirect is only an answer from the host we called: it is followed only to the address Bitrix24's
OAuth server names for the portal, the token is never sent anywhere else, and no endpoint is stored
because of it. Every REST call checks its host first: the sandbox's origin while SANDBOX_URL is set,
otherwise https to public addresses only (with a sandbox, local fakes too, never a private network).
"""

from __future__ import annotations

import pytest

from accounts.models import Portal
from integrations.bitrix24.client import Bitrix24Client
from integrations.common.errors import PermanentError
from tests.integrations import bitrix24_fixtures
from tests.integrations.bitrix24_fixtures import MovedPortal

acme_admin, acme_portal, b24_app = (
    bitrix24_fixtures.acme_admin,
    bitrix24_fixtures.acme_portal,
    bitrix24_fixtures.b24_app,
)

INVOICES = {"entityTypeId": 31}


@pytest.fixture
def elsewhere(sandbox_url):
    """A host on this machine that records every request it gets (the attacker's, or an internal one)."""
    host = MovedPortal(new_base=sandbox_url)
    yield host
    host.close()


@pytest.mark.parametrize("target", ["loopback", "public"])
def test_a_redirect_the_oauth_server_does_not_confirm_is_not_followed(sandbox, acme_portal, elsewhere, target, caplog):
    location = (
        f"{elsewhere.url}/rest/crm.item.list.json" if target == "loopback" else "https://evil.example/rest/x.json"
    )
    sandbox.fault("bitrix24", "crm.item.list", status=302, location=location)
    before = Portal.objects.get(pk=acme_portal.pk)

    with pytest.raises(PermanentError, match="does not confirm"):
        Bitrix24Client(before).call("crm.item.list", INVOICES)

    assert elsewhere.hits == 0  # the token never left for the other host
    after = Portal.objects.get(pk=acme_portal.pk)
    assert (after.domain, after.client_endpoint) == (before.domain, before.client_endpoint)
    assert any("redirect to" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("endpoint", ["https://169.254.169.254/rest/", "http://10.0.0.7/rest/"])
def test_with_the_sandbox_configured_private_networks_are_still_refused(acme_portal, endpoint):
    Portal.objects.filter(pk=acme_portal.pk).update(client_endpoint=endpoint)
    with pytest.raises(PermanentError, match="not calling"):
        Bitrix24Client(Portal.objects.get(pk=acme_portal.pk)).call("crm.item.list", INVOICES)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://{elsewhere}/rest/",  # plain http, loopback
        "https://127.0.0.1:{port}/rest/",  # loopback literal
        "https://169.254.169.254/rest/",  # cloud metadata
        "https://10.0.0.7/rest/",  # private network
        "https://localhost:{port}/rest/",  # a name that resolves to loopback
        "https://[::1]:{port}/rest/",
    ],
)
def test_in_production_private_and_loopback_addresses_are_never_called(acme_portal, elsewhere, settings, endpoint):
    settings.SANDBOX_URL = ""
    port = elsewhere.url.rsplit(":", 1)[1]
    url = endpoint.format(elsewhere=elsewhere.url.split("://")[1], port=port)
    Portal.objects.filter(pk=acme_portal.pk).update(client_endpoint=url)
    portal = Portal.objects.get(pk=acme_portal.pk)
    with pytest.raises(PermanentError, match="not calling"):
        Bitrix24Client(portal, user_token="a-user-token").call("user.current")
    assert elsewhere.hits == 0
