"""Parsing and verifying what Bitrix24 POSTs to us: events and the app frame (pure, no I/O)."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from integrations.bitrix24.inbound import (
    MalformedPayloadError,
    application_token_matches,
    parse_event,
    parse_frame_post,
    placement_entity_id,
    unflatten_form,
)
from tests.integrations import bitrix24_fixtures

# Shared with the other Bitrix24 test modules (conftest.py belongs to another part of the suite).
app_receiver = bitrix24_fixtures.app_receiver

# bitrix24-api.md §5.3, field for field, as Django decodes the form-encoded body.
INVOICE_UPDATED = {
    "event": "ONCRMDYNAMICITEMUPDATE",
    "event_handler_id": "5",
    "data[FIELDS][ID]": "24",
    "data[FIELDS][ENTITY_TYPE_ID]": "31",
    "ts": "1723538517",
    "auth[access_token]": "s6p6eclrvim6da22ft9ch94ekreb52lv",
    "auth[expires]": "1723542117",
    "auth[expires_in]": "3600",
    "auth[scope]": "crm",
    "auth[domain]": "some-domain.bitrix24.com",
    "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
    "auth[status]": "F",
    "auth[client_endpoint]": "https://some-domain.bitrix24.com/rest/",
    "auth[member_id]": "a223c6b3710f85df22e9377d6c4f7553",
    "auth[user_id]": "1",
    "auth[refresh_token]": "4s386p3q0tr8dy89xvmt96234v3dljg8",
    "auth[application_token]": "51856fefc120afa4b628cc82d3935cce",
}

APP_INSTALLED = {
    "event": "ONAPPINSTALL",
    "data[VERSION]": "1.0.0",
    "data[ACTIVE]": "Y",
    "data[INSTALLED]": "Y",
    "data[LANGUAGE_ID]": "de",
    "ts": "1696527000",
    "auth[domain]": "some.bitrix24.com",
    "auth[scope]": "crm,placement,user",
    "auth[access_token]": "access-1",
    "auth[refresh_token]": "refresh-1",
    "auth[expires_in]": "3600",
    "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
    "auth[status]": "F",
    "auth[client_endpoint]": "https://some.bitrix24.com/rest/",
    "auth[member_id]": "a223c6b3710f85df22e9377d6c4f7553",
    "auth[application_token]": "51856fefc120afa4b628cc82d3935cce",
}

APP_UNINSTALLED = {
    "event": "ONAPPUNINSTALL",
    "data[LANGUAGE_ID]": "en",
    "data[CLEAN]": "1",
    "ts": "1696529000",
    "auth[domain]": "some.bitrix24.com",
    "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
    "auth[client_endpoint]": "https://some.bitrix24.com/rest/",
    "auth[member_id]": "a223c6b3710f85df22e9377d6c4f7553",
    "auth[application_token]": "51856fefc120afa4b628cc82d3935cce",
}

FRAME_POST = {
    "AUTH_ID": "user-access-token",
    "AUTH_EXPIRES": "3600",
    "REFRESH_ID": "user-refresh-token",
    "SERVER_ENDPOINT": "https://oauth.bitrix.info/rest/",
    "APPLICATION_TOKEN": "51856fefc120afa4b628cc82d3935cce",
    "APPLICATION_SCOPE": "crm,placement,user",
    "member_id": "a223c6b3710f85df22e9377d6c4f7553",
    "status": "P",
    "PLACEMENT": "CRM_SMART_INVOICE_DETAIL_TOOLBAR",
    "PLACEMENT_OPTIONS": '{"ENTITY_ID":"32","URI":"/crm/type/31/details/32/"}',
}
FRAME_QUERY = {"DOMAIN": "some.bitrix24.com", "PROTOCOL": "1", "LANG": "en", "APP_SID": "abc123"}


def querydict(form: dict[str, str]) -> QueryDict:
    qd = QueryDict(mutable=True)
    for key, value in form.items():
        qd.appendlist(key, value)
    return qd


def test_the_documented_invoice_update_event_parses_field_for_field():
    event = parse_event(querydict(INVOICE_UPDATED))

    assert event.event == "ONCRMDYNAMICITEMUPDATE"
    assert event.handler_id == 5
    assert event.ts == 1723538517
    assert event.data == {"FIELDS": {"ID": "24", "ENTITY_TYPE_ID": "31"}}
    assert (event.entity_id, event.entity_type_id) == (24, 31)
    auth = event.auth
    assert auth.member_id == "a223c6b3710f85df22e9377d6c4f7553"
    assert auth.domain == "some-domain.bitrix24.com"
    assert auth.client_endpoint == "https://some-domain.bitrix24.com/rest/"
    assert auth.server_endpoint == "https://oauth.bitrix.info/rest/"
    assert auth.application_token == "51856fefc120afa4b628cc82d3935cce"
    assert auth.access_token == "s6p6eclrvim6da22ft9ch94ekreb52lv"
    assert auth.refresh_token == "4s386p3q0tr8dy89xvmt96234v3dljg8"
    assert (auth.expires, auth.expires_in, auth.user_id) == (1723542117, 3600, 1)
    assert (auth.scope, auth.status) == ("crm", "F")
    assert not event.is_system


def test_event_names_are_upper_cased_whatever_case_they_arrive_in():
    event = parse_event({**INVOICE_UPDATED, "event": "onCrmDynamicItemUpdate"})

    assert event.event == "ONCRMDYNAMICITEMUPDATE"


def test_an_app_install_event_carries_the_application_token_and_the_token_pair():
    event = parse_event(APP_INSTALLED)

    assert event.event == "ONAPPINSTALL"
    assert event.data["VERSION"] == "1.0.0"
    assert event.auth.application_token == "51856fefc120afa4b628cc82d3935cce"
    assert (event.auth.access_token, event.auth.refresh_token) == ("access-1", "refresh-1")
    assert event.auth.user_id is None and event.auth.expires is None
    assert event.handler_id is None


def test_an_uninstall_event_without_tokens_parses_and_is_a_system_event():
    event = parse_event(APP_UNINSTALLED)

    assert event.event == "ONAPPUNINSTALL"
    assert event.data == {"LANGUAGE_ID": "en", "CLEAN": "1"}
    assert event.is_system
    assert event.auth.access_token == "" and event.auth.refresh_token == ""
    assert event.auth.member_id == "a223c6b3710f85df22e9377d6c4f7553"


def test_an_event_made_by_automation_has_no_tokens_and_is_a_system_event():
    form = {k: v for k, v in INVOICE_UPDATED.items() if k not in ("auth[access_token]", "auth[refresh_token]")}

    assert parse_event(form).is_system


@pytest.mark.parametrize(
    "missing, message",
    [
        ("event", "event is missing"),
        ("auth[member_id]", "member_id is missing"),
        ("auth[application_token]", "application_token is missing"),
        ("auth[domain]", "domain is missing"),
        ("auth[client_endpoint]", "client_endpoint is missing"),
    ],
)
def test_an_event_without_a_required_key_is_rejected_naming_the_key(missing, message):
    form = {k: v for k, v in INVOICE_UPDATED.items() if k != missing}

    with pytest.raises(MalformedPayloadError, match=message.replace("[", r"\[")):
        parse_event(form)


def test_an_event_without_any_auth_block_is_rejected():
    form = {k: v for k, v in INVOICE_UPDATED.items() if not k.startswith("auth[")}

    with pytest.raises(MalformedPayloadError, match="auth block is missing"):
        parse_event(form)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("ts", "yesterday", "ts must be an integer"),
        ("auth[user_id]", "admin", "user_id must be an integer"),
        ("auth[client_endpoint]", "javascript:alert(1)", "client_endpoint is not an http"),
        ("auth[client_endpoint]", "file:///etc/passwd", "client_endpoint is not an http"),
    ],
)
def test_an_event_with_a_malformed_value_is_rejected(key, value, message):
    with pytest.raises(MalformedPayloadError, match=message):
        parse_event({**INVOICE_UPDATED, key: value})


def test_a_form_key_that_clashes_with_a_nested_key_is_rejected():
    with pytest.raises(MalformedPayloadError, match="clashes"):
        parse_event({**INVOICE_UPDATED, "data[FIELDS]": "24"})


def test_an_auth_field_sent_as_a_nested_array_is_rejected():
    with pytest.raises(MalformedPayloadError, match="member_id must be a string"):
        parse_event({**{k: v for k, v in INVOICE_UPDATED.items() if k != "auth[member_id]"}, "auth[member_id][x]": "1"})


def test_repeated_bracket_keys_become_a_list():
    form = QueryDict("data[FIELDS][IDS][]=1&data[FIELDS][IDS][]=2&event=X")

    assert unflatten_form(form) == {"data": {"FIELDS": {"IDS": ["1", "2"]}}, "event": "X"}


def test_the_stored_application_token_matches_only_itself():
    stored = "51856fefc120afa4b628cc82d3935cce"

    assert application_token_matches(stored, "51856fefc120afa4b628cc82d3935cce")
    assert not application_token_matches(stored, "51856fefc120afa4b628cc82d3935ccf")
    assert not application_token_matches(stored, stored[:-1])
    assert not application_token_matches(stored, "")


def test_an_empty_stored_token_never_matches_even_an_empty_one():
    assert not application_token_matches("", "")
    assert not application_token_matches("", "anything")


def test_a_forged_event_parses_but_its_token_does_not_match_the_stored_one():
    forged = parse_event({**INVOICE_UPDATED, "auth[application_token]": "guessed"})

    assert not application_token_matches("51856fefc120afa4b628cc82d3935cce", forged.auth.application_token)


def test_a_detail_toolbar_frame_post_gives_the_user_token_the_placement_and_the_invoice_id():
    frame = parse_frame_post(querydict(FRAME_POST), querydict(FRAME_QUERY))

    assert frame.member_id == "a223c6b3710f85df22e9377d6c4f7553"
    assert (frame.auth_id, frame.auth_expires, frame.refresh_id) == ("user-access-token", 3600, "user-refresh-token")
    assert frame.server_endpoint == "https://oauth.bitrix.info/rest/"
    assert frame.application_token == "51856fefc120afa4b628cc82d3935cce"
    assert frame.application_scope == "crm,placement,user"
    assert frame.status == "P"
    assert frame.placement == "CRM_SMART_INVOICE_DETAIL_TOOLBAR"
    assert frame.placement_options == {"ENTITY_ID": "32", "URI": "/crm/type/31/details/32/"}
    assert frame.entity_id == 32
    assert (frame.domain, frame.protocol, frame.lang, frame.app_sid) == ("some.bitrix24.com", "1", "en", "abc123")


def test_the_main_app_page_post_without_placement_options_is_the_default_placement():
    post = {k: v for k, v in FRAME_POST.items() if k not in ("PLACEMENT", "PLACEMENT_OPTIONS")}

    frame = parse_frame_post(post, FRAME_QUERY)

    assert frame.placement == "DEFAULT"
    assert frame.placement_options == {}
    assert frame.entity_id is None


def test_placement_options_sent_as_an_empty_php_array_mean_no_options():
    frame = parse_frame_post({**FRAME_POST, "PLACEMENT": "DEFAULT", "PLACEMENT_OPTIONS": "[]"}, FRAME_QUERY)

    assert frame.placement_options == {}


@pytest.mark.parametrize("raw", ["{ENTITY_ID: 32", "not json", '"32"', "[1, 2]"])
def test_malformed_placement_options_are_rejected(raw):
    with pytest.raises(MalformedPayloadError, match="PLACEMENT_OPTIONS"):
        parse_frame_post({**FRAME_POST, "PLACEMENT_OPTIONS": raw}, FRAME_QUERY)


@pytest.mark.parametrize("missing", ["AUTH_ID", "member_id"])
def test_a_frame_post_without_the_user_token_or_portal_id_is_rejected(missing):
    post = {k: v for k, v in FRAME_POST.items() if k != missing}

    with pytest.raises(MalformedPayloadError, match=f"{missing} is missing"):
        parse_frame_post(post, FRAME_QUERY)


def test_a_frame_post_with_a_non_numeric_expiry_is_rejected():
    with pytest.raises(MalformedPayloadError, match="AUTH_EXPIRES must be an integer"):
        parse_frame_post({**FRAME_POST, "AUTH_EXPIRES": "soon"}, FRAME_QUERY)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"ENTITY_ID": "32"}, 32),
        ({"ID": "1348", "URI": "/crm/"}, 1348),
        ({"ID": 7}, 7),
        ({"ENTITY_ID": "abc", "ID": "5"}, 5),
        ({"URI": "/crm/"}, None),
        ({"ID": "-3"}, None),
        ({"ID": "0"}, None),
        ({"ENTITY_ID": "1; DROP TABLE"}, None),
        ({"ID": True}, None),
        ({}, None),
    ],
)
def test_the_entity_id_of_a_placement_accepts_id_or_entity_id_and_nothing_else(options, expected):
    assert placement_entity_id(options) == expected


# --- what the sandbox portal really POSTs ---------------------------------------------------


def install(sandbox, receiver) -> dict:
    return sandbox.bitrix24_install(
        app_url=f"{receiver.url}/app/", install_url=f"{receiver.url}/install/", event_url=f"{receiver.url}/events/"
    )


def test_the_installer_post_and_onappinstall_from_the_portal_parse_and_carry_one_application_token(
    sandbox, app_receiver
):
    installed = install(sandbox, app_receiver)

    [installer] = app_receiver.wait_for("/install/")
    [install_event] = app_receiver.wait_for("/events/")
    frame = parse_frame_post(installer.form, installer.query)
    event = parse_event(install_event.form)

    assert event.event == "ONAPPINSTALL"
    assert event.auth.member_id == frame.member_id == installed["member_id"]
    assert event.auth.client_endpoint == installed["client_endpoint"]
    assert event.auth.access_token and event.auth.refresh_token
    assert application_token_matches(installed["application_token"], event.auth.application_token)
    assert application_token_matches(installed["application_token"], frame.application_token)
    assert frame.placement == "DEFAULT"
    assert frame.domain == installed["domain"]
    assert frame.auth_id and frame.auth_expires == 3600


def test_a_placement_frame_from_the_portal_names_the_invoice_it_was_opened_on(sandbox, app_receiver):
    installed = install(sandbox, app_receiver)
    admin_token = parse_frame_post(app_receiver.wait_for("/install/")[0].form, {}).auth_id
    bound = sandbox.bitrix24_rest(
        "placement.bind",
        {"PLACEMENT": "CRM_SMART_INVOICE_DETAIL_TOOLBAR", "HANDLER": f"{app_receiver.url}/placement/", "TITLE": "Xero"},
        auth=admin_token,
    )
    assert bound.get("result") is True, bound
    seller = sandbox.bitrix24_user("Sam Seller", invoices="own")

    posted = sandbox.bitrix24_frame(seller["id"], "CRM_SMART_INVOICE_DETAIL_TOOLBAR", {"ENTITY_ID": "32"})
    frame = parse_frame_post(posted["form"], QueryDict(posted["url"].partition("?")[2]))

    assert frame.placement == "CRM_SMART_INVOICE_DETAIL_TOOLBAR"
    assert frame.entity_id == 32
    assert frame.member_id == installed["member_id"]
    assert application_token_matches(installed["application_token"], frame.application_token)


def test_onappuninstall_from_the_portal_has_no_tokens_and_still_matches_the_stored_application_token(
    sandbox, app_receiver
):
    installed = install(sandbox, app_receiver)
    app_receiver.wait_for("/events/")
    app_receiver.received.clear()

    sandbox._call("POST", "/_sandbox/bitrix24/uninstall", json={"clean": True})
    [uninstall_event] = app_receiver.wait_for("/events/")
    event = parse_event(uninstall_event.form)

    assert event.event == "ONAPPUNINSTALL"
    assert event.is_system
    assert event.data["CLEAN"] == "1"
    assert application_token_matches(installed["application_token"], event.auth.application_token)
