"""The fake Bitrix24's events: event.* methods, online delivery to a real HTTP receiver, offline queue."""

import time

import pytest
import requests

from tests.sandbox.app_receiver import running_receiver

EVENT_KEYS_WITH_TOKENS = {
    "event",
    "event_handler_id",
    "data[FIELDS][ID]",
    "data[FIELDS][ENTITY_TYPE_ID]",
    "ts",
    "auth[access_token]",
    "auth[expires]",
    "auth[expires_in]",
    "auth[scope]",
    "auth[domain]",
    "auth[server_endpoint]",
    "auth[status]",
    "auth[client_endpoint]",
    "auth[member_id]",
    "auth[user_id]",
    "auth[application_token]",
}
EVENT_KEYS_WITHOUT_TOKENS = {
    "event",
    "event_handler_id",
    "data[FIELDS][ID]",
    "data[FIELDS][ENTITY_TYPE_ID]",
    "ts",
    "auth[domain]",
    "auth[server_endpoint]",
    "auth[client_endpoint]",
    "auth[member_id]",
    "auth[application_token]",
}
INVOICE_UPDATE = {"FIELDS": {"ID": 24, "ENTITY_TYPE_ID": 31}}


def rest(sandbox, method, auth, **params):
    return requests.post(f"{sandbox.base_url}/bitrix24/rest/{method}.json", json={**params, "auth": auth}, timeout=5)


def control(sandbox, path, **body):
    return requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/{path}", json=body, timeout=30)


@pytest.fixture
def app():
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def installed(sandbox, app):
    """The app installed (its install page just answers 200); returns the admin's token and the install."""
    out = sandbox.bitrix24_install(app.url("/app"), event_url=app.url("/install-events"))
    out["admin"] = control(sandbox, "tokens", user=1).json()["access_token"]
    return out


def bind(sandbox, auth, event, handler, **extra):
    return rest(sandbox, "event.bind", auth, event=event, handler=handler, **extra)


def deliveries(sandbox):
    return sandbox.state()["bitrix24"]["app"]["deliveries"]


def test_an_invoice_update_is_posted_form_encoded_to_the_generic_and_the_31_handler(sandbox, app, installed):
    admin = installed["admin"]
    assert bind(sandbox, admin, "ONCRMDYNAMICITEMUPDATE", app.url("/generic")).json()["result"] is True
    assert bind(sandbox, admin, "ONCRMDYNAMICITEMUPDATE_31", app.url("/typed")).json()["result"] is True
    user = sandbox.bitrix24_user("Sales Sam")
    item = rest(sandbox, "crm.item.add", user["access_token"], entityTypeId=31, fields={"title": "A"}).json()
    item_id = item["result"]["item"]["id"]
    rest(sandbox, "crm.item.update", user["access_token"], entityTypeId=31, id=item_id, fields={"title": "B"})

    [generic] = app.wait_for("/generic")
    [typed] = app.wait_for("/typed")
    assert generic.content_type.startswith("application/x-www-form-urlencoded")
    assert set(generic.form) == EVENT_KEYS_WITH_TOKENS
    assert generic.form["event"] == "ONCRMDYNAMICITEMUPDATE" and typed.form["event"] == "ONCRMDYNAMICITEMUPDATE_31"
    assert generic.form["data[FIELDS][ID]"] == str(item_id) and generic.form["data[FIELDS][ENTITY_TYPE_ID]"] == "31"
    assert generic.form["auth[application_token]"] == installed["application_token"]
    assert generic.form["auth[member_id]"] == installed["member_id"]
    assert generic.form["auth[user_id]"] == str(user["id"]) and generic.form["auth[expires_in]"] == "3600"
    assert abs(int(generic.form["ts"]) - time.time()) < 5
    # the token is the acting user's: Bitrix24's permissions apply to follow-up calls
    me = rest(sandbox, "user.current", generic.form["auth[access_token]"]).json()["result"]
    assert me["ID"] == str(user["id"])
    handler_ids = {b["handler"]: str(b["id"]) for b in sandbox.state()["bitrix24"]["app"]["bindings"]}
    assert generic.form["event_handler_id"] == handler_ids[app.url("/generic")]


def test_an_automation_change_carries_no_tokens(sandbox, app, installed):
    bind(sandbox, installed["admin"], "ONCRMDYNAMICITEMUPDATE", app.url("/events"))
    assert control(sandbox, "emit", event="ONCRMDYNAMICITEMUPDATE", data=INVOICE_UPDATE, user=None).ok
    [event] = app.wait_for("/events")
    assert set(event.form) == EVENT_KEYS_WITHOUT_TOKENS
    assert event.form["auth[application_token]"] == installed["application_token"]


def test_a_failing_handler_is_called_once_and_never_again(sandbox, app, installed):
    app.status["/events"] = 500
    bind(sandbox, installed["admin"], "ONCRMDYNAMICITEMUPDATE", app.url("/events"))
    control(sandbox, "emit", event="ONCRMDYNAMICITEMUPDATE", data=INVOICE_UPDATE, user=1)
    app.wait_for("/events")
    time.sleep(1.0)  # room for a retry, were there one
    assert len(app.received("/events")) == 1
    logged = [d for d in deliveries(sandbox) if d["handler"] == app.url("/events")]
    assert [(d["event"], d["status"]) for d in logged] == [("ONCRMDYNAMICITEMUPDATE", 500)]
    # the queue goes on with the next change
    control(sandbox, "emit", event="ONCRMDYNAMICITEMUPDATE", data=INVOICE_UPDATE, user=1)
    assert len(app.wait_for("/events", count=2)) == 2


def test_a_handler_slower_than_the_timeout_is_dropped(sandbox, app, installed):
    control(sandbox, "settings", event_timeout_s=0.3)
    app.delay["/slow"] = 1.0
    bind(sandbox, installed["admin"], "ONCRMDYNAMICITEMUPDATE", app.url("/slow"))
    control(sandbox, "emit", event="ONCRMDYNAMICITEMUPDATE", data=INVOICE_UPDATE, user=1)
    app.wait_for("/slow")
    deadline = time.monotonic() + 3
    while not deliveries(sandbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    [logged] = [d for d in deliveries(sandbox) if d["handler"] == app.url("/slow")]
    assert logged["status"] is None and "Timeout" in logged["error"]
    time.sleep(1.2)
    assert len(app.received("/slow")) == 1


def test_nothing_is_delivered_before_the_app_is_installed(sandbox, app):
    admin = control(sandbox, "tokens", user=1).json()["access_token"]
    assert bind(sandbox, admin, "ONCRMDYNAMICITEMUPDATE", app.url("/events")).ok
    control(sandbox, "emit", event="ONCRMDYNAMICITEMUPDATE", data=INVOICE_UPDATE, user=1)
    time.sleep(0.5)
    assert app.received("/events") == [] and deliveries(sandbox) == []


def test_binding_the_same_handler_twice_is_an_error(sandbox, installed):
    admin = installed["admin"]
    assert bind(sandbox, admin, "ONCRMDYNAMICITEMADD", "https://app.example/events").ok
    again = bind(sandbox, admin, "onCrmDynamicItemAdd", "https://app.example/events")
    assert again.status_code == 400
    assert again.json() == {"error": "ERROR_HANDLER_ALREADY_EXIST", "error_description": "Handler already exists!"}


def test_unknown_events_and_handlers_that_are_not_urls_are_refused(sandbox, installed):
    admin = installed["admin"]
    unknown = bind(sandbox, admin, "ONSOMETHINGELSE", "https://app.example/events")
    assert unknown.status_code == 400 and unknown.json()["error"] == "ERROR_EVENT_NOT_FOUND"
    assert bind(sandbox, admin, "ONCRMDYNAMICITEMADD", "not a url").status_code == 400


def test_non_admins_may_bind_online_handlers_but_not_offline_or_for_other_users(sandbox, installed):
    user = sandbox.bitrix24_user("Ann")["access_token"]
    assert bind(sandbox, user, "ONCRMDYNAMICITEMADD", "https://app.example/mine").ok
    offline = rest(sandbox, "event.bind", user, event="ONCRMDYNAMICITEMADD", event_type="offline")
    assert offline.status_code == 403 and offline.json()["error"] == "ACCESS_DENIED"
    other = bind(sandbox, user, "ONCRMDYNAMICITEMADD", "https://app.example/as-admin", auth_type=1)
    assert other.status_code == 403


def test_event_get_lists_and_event_unbind_counts_the_bindings(sandbox, installed):
    admin = installed["admin"]
    bind(sandbox, admin, "ONCRMDYNAMICITEMADD", "https://app.example/a")
    bind(sandbox, admin, "ONCRMDYNAMICITEMADD", "https://app.example/b")
    rest(sandbox, "event.bind", admin, event="ONCRMDYNAMICITEMUPDATE", event_type="offline")
    listed = rest(sandbox, "event.get", admin).json()["result"]
    assert listed == [
        {"event": "ONCRMDYNAMICITEMADD", "handler": "https://app.example/a", "auth_type": "0", "offline": 0},
        {"event": "ONCRMDYNAMICITEMADD", "handler": "https://app.example/b", "auth_type": "0", "offline": 0},
        {"event": "ONCRMDYNAMICITEMUPDATE", "handler": "", "auth_type": "0", "offline": 1},
    ]
    assert rest(sandbox, "event.unbind", admin, event="ONCRMDYNAMICITEMADD").json()["result"] == {"count": 2}
    assert rest(sandbox, "event.unbind", admin, event="ONCRMDYNAMICITEMADD").json()["result"] == {"count": 0}
    names = rest(sandbox, "events", admin).json()["result"]
    assert {"ONCRMDYNAMICITEMUPDATE_31", "ONCRMINVOICESETSTATUS", "ONAPPUNINSTALL", "ONOFFLINEEVENT"} <= set(names)


def test_event_test_fires_onapptest_with_the_query(sandbox, app, installed):
    bind(sandbox, installed["admin"], "ONAPPTEST", app.url("/test"))
    assert rest(sandbox, "event.test", installed["admin"], ping="pong").json()["result"] == 1
    [event] = app.wait_for("/test")
    assert event.form["event"] == "ONAPPTEST" and event.form["data[QUERY][ping]"] == "pong"


def test_the_offline_queue_keeps_the_latest_change_per_object_and_reserves_batches(sandbox, installed):
    admin = installed["admin"]
    assert rest(sandbox, "event.bind", admin, event="ONCRMDYNAMICITEMUPDATE", event_type="offline").ok
    for item_id in (5, 5, 5, 6):
        data = {"FIELDS": {"ID": item_id, "ENTITY_TYPE_ID": 31}}
        control(sandbox, "emit", event="ONCRMDYNAMICITEMUPDATE", data=data, user=1)
    listed = rest(sandbox, "event.offline.list", admin).json()
    assert listed["total"] == 2
    assert [r["EVENT_DATA"]["FIELDS"]["ID"] for r in listed["result"]] == [5, 6]

    batch = rest(sandbox, "event.offline.get", admin, clear=0, limit=1).json()["result"]
    assert batch["process_id"] and [r["EVENT_DATA"]["FIELDS"]["ID"] for r in batch["events"]] == [5]
    other = rest(sandbox, "event.offline.get", admin, clear=0).json()["result"]  # disjoint: only 6 is left
    assert [r["EVENT_DATA"]["FIELDS"]["ID"] for r in other["events"]] == [6]
    assert rest(sandbox, "event.offline.clear", admin, process_id=batch["process_id"]).json()["result"] is True
    message = other["events"][0]["MESSAGE_ID"]
    rest(sandbox, "event.offline.error", admin, process_id=other["process_id"], message_id=[message])
    failed = rest(sandbox, "event.offline.get", admin, error=1).json()["result"]["events"]
    assert [r["MESSAGE_ID"] for r in failed] == [message]
    assert rest(sandbox, "event.offline.list", admin).json()["total"] == 0


def test_the_offline_queue_is_for_admins_only(sandbox, installed):
    user = sandbox.bitrix24_user("Ann")["access_token"]
    assert rest(sandbox, "event.offline.get", user).status_code == 403


def test_feature_get_answers_per_plan_feature_and_defaults_to_no(sandbox, installed):
    admin = installed["admin"]
    answer = rest(sandbox, "feature.get", admin, CODE="rest_offline_extended").json()
    assert answer["result"] == {"value": "N"}
    assert control(sandbox, "settings", features={"rest_offline_extended": True}).ok
    assert rest(sandbox, "feature.get", admin, CODE="rest_offline_extended").json()["result"] == {"value": "Y"}
    assert rest(sandbox, "feature.get", admin, CODE="something_else").json()["result"] == {"value": "N"}
    assert rest(sandbox, "feature.get", admin).json()["error"] == "ERROR_ARGUMENT"
    assert control(sandbox, "settings", features={"rest_offline_extended": "yes"}).status_code == 400
