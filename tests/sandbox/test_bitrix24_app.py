"""The fake Bitrix24's app side: install/uninstall, the frame POST, the portal page, placements and
the app/user methods. The app is a real HTTP receiver run by the test (tests/sandbox/app_receiver.py)."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.sandbox.app_receiver import running_receiver

FRAME_FORM_KEYS = {
    "AUTH_ID",
    "AUTH_EXPIRES",
    "REFRESH_ID",
    "SERVER_ENDPOINT",
    "member_id",
    "status",
    "PLACEMENT",
    "PLACEMENT_OPTIONS",
    "APPLICATION_TOKEN",
    "APPLICATION_SCOPE",
}
ONAPPINSTALL_KEYS = {
    "event",
    "data[VERSION]",
    "data[ACTIVE]",
    "data[INSTALLED]",
    "data[LANGUAGE_ID]",
    "ts",
    "auth[domain]",
    "auth[scope]",
    "auth[access_token]",
    "auth[refresh_token]",
    "auth[expires]",
    "auth[expires_in]",
    "auth[server_endpoint]",
    "auth[status]",
    "auth[client_endpoint]",
    "auth[member_id]",
    "auth[user_id]",
    "auth[application_token]",
}
TOOLBAR = "CRM_SMART_INVOICE_DETAIL_TOOLBAR"


def rest(sandbox, method, auth, **params):
    return requests.post(f"{sandbox.base_url}/bitrix24/rest/{method}.json", json={**params, "auth": auth}, timeout=5)


def control(sandbox, path, **body):
    return requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/{path}", json=body, timeout=30)


@pytest.fixture
def app():
    with running_receiver() as receiver:
        yield receiver


def installer_that_binds(sandbox, app, answers: list):
    """An install page that sets itself up over REST with the AUTH_ID it was POSTed, before answering."""

    def setup(got):
        auth = got.form["AUTH_ID"]
        answers.append(rest(sandbox, "event.bind", auth, event="ONCRMDYNAMICITEMUPDATE", handler=app.url("/events")))
        answers.append(rest(sandbox, "event.bind", auth, event="ONAPPUNINSTALL", handler=app.url("/uninstalled")))
        answers.append(
            rest(sandbox, "placement.bind", auth, PLACEMENT=TOOLBAR, HANDLER=app.url("/toolbar"), TITLE="Xero")
        )

    app.on_post["/install"] = setup


def install(sandbox, app):
    return sandbox.bitrix24_install(app.url("/app"), app.url("/install"), app.url("/events"))


def test_install_posts_the_installer_form_during_which_the_app_binds_events_and_placements(sandbox, app):
    answers = []
    installer_that_binds(sandbox, app, answers)
    out = install(sandbox, app)
    assert not app.errors
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json()["result"] is True for a in answers)

    [page] = app.received("/install")
    assert set(page.form) == FRAME_FORM_KEYS
    assert page.query["DOMAIN"] == out["domain"] and page.query["PROTOCOL"] == "1" and page.query["LANG"] == "en"
    assert page.query["APP_SID"]
    assert page.form["APPLICATION_TOKEN"] == out["application_token"] and page.form["member_id"] == out["member_id"]
    assert (page.form["PLACEMENT"], page.form["PLACEMENT_OPTIONS"], page.form["AUTH_EXPIRES"]) == (
        "DEFAULT",
        "{}",
        "3600",
    )
    assert rest(sandbox, "user.admin", page.form["AUTH_ID"]).json()["result"] is True  # the installer runs as admin

    state = sandbox.state()["bitrix24"]
    assert state["installed"] is True and out["install_status"] == 200 and out["event_status"] == 200
    assert [(b["event"], b["handler"]) for b in state["app"]["bindings"]] == [
        ("ONCRMDYNAMICITEMUPDATE", app.url("/events")),
        ("ONAPPUNINSTALL", app.url("/uninstalled")),
    ]
    assert [(p["placement"], p["handler"]) for p in state["app"]["placements"]] == [(TOOLBAR, app.url("/toolbar"))]


def test_onappinstall_arrives_form_encoded_with_the_admin_tokens_and_the_application_token(sandbox, app):
    out = install(sandbox, app)
    [event] = app.received("/events")
    assert event.content_type.startswith("application/x-www-form-urlencoded")
    assert set(event.form) == ONAPPINSTALL_KEYS
    assert event.form["event"] == "ONAPPINSTALL" and event.form["data[INSTALLED]"] == "Y"
    assert event.form["auth[application_token]"] == out["application_token"]
    assert event.form["auth[member_id]"] == out["member_id"] and event.form["auth[user_id]"] == "1"
    assert event.form["auth[client_endpoint]"] == out["client_endpoint"]
    current = rest(sandbox, "user.current", event.form["auth[access_token]"]).json()["result"]
    assert current["ID"] == "1"


def test_a_failing_install_page_gives_502_and_the_portal_stays_uninstalled(sandbox, app):
    app.status["/install"] = 500
    response = control(sandbox, "install", app_url=app.url("/app"), install_url=app.url("/install"))
    assert response.status_code == 502
    assert response.json()["install_status"] == 500 and response.json()["error"] == "install_failed"
    assert sandbox.state()["bitrix24"]["installed"] is False
    assert app.received("/app") == []  # no ONAPPINSTALL either (event_url defaults to app_url)


def test_an_unreachable_install_page_gives_502(sandbox, app):
    response = control(sandbox, "install", app_url="http://127.0.0.1:9/nothing-listens-here")
    assert response.status_code == 502 and "unreachable" in response.json()["message"]
    assert sandbox.state()["bitrix24"]["installed"] is False


def test_a_reinstall_keeps_member_id_and_application_token_and_drops_the_event_bindings(sandbox, app):
    answers = []
    installer_that_binds(sandbox, app, answers)
    first = install(sandbox, app)
    second = install(sandbox, app)
    assert (second["member_id"], second["application_token"]) == (first["member_id"], first["application_token"])
    # the installer bound again without ERROR_HANDLER_ALREADY_EXIST: the update had dropped them
    assert [a.status_code for a in answers] == [200] * 6
    assert len(sandbox.state()["bitrix24"]["app"]["bindings"]) == 2


def test_uninstall_sends_onappuninstall_without_tokens_and_revokes_access(sandbox, app):
    answers = []
    installer_that_binds(sandbox, app, answers)
    first = install(sandbox, app)
    user = sandbox.bitrix24_user("Ann")
    out = control(sandbox, "uninstall", clean=True).json()
    assert out["handlers"] == [app.url("/uninstalled")] and out["event_status"] == [200]

    [event] = app.received("/uninstalled")
    assert set(event.form) == {
        "event",
        "data[LANGUAGE_ID]",
        "data[CLEAN]",
        "ts",
        "auth[domain]",
        "auth[server_endpoint]",
        "auth[client_endpoint]",
        "auth[member_id]",
        "auth[application_token]",
    }
    assert event.form["event"] == "ONAPPUNINSTALL" and event.form["data[CLEAN]"] == "1"
    assert event.form["auth[application_token]"] == first["application_token"]

    assert rest(sandbox, "user.current", user["access_token"]).status_code == 401
    refused = requests.get(
        f"{sandbox.base_url}/bitrix24/oauth/token/",
        params={
            "grant_type": "refresh_token",
            "client_id": "c",
            "client_secret": "s",
            "refresh_token": user["refresh_token"],
        },
        timeout=5,
    )
    assert refused.json()["error"] == "invalid_grant"
    state = sandbox.state()["bitrix24"]
    assert state["installed"] is False and state["app"]["bindings"] == [] and state["app"]["placements"] == []

    again = install(sandbox, app)
    assert again["member_id"] == first["member_id"] and again["application_token"] != first["application_token"]


def test_the_frame_form_for_the_main_page_carries_a_token_of_that_user(sandbox, app):
    installed = install(sandbox, app)
    user = sandbox.bitrix24_user("Sales Sam")
    frame = sandbox.bitrix24_frame(user["id"])
    url = urlsplit(frame["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == app.url("/app")
    assert set(parse_qs(url.query)) == {"DOMAIN", "PROTOCOL", "LANG", "APP_SID"}
    assert set(frame["form"]) == FRAME_FORM_KEYS
    assert (
        frame["form"]["PLACEMENT"] == "DEFAULT" and frame["form"]["APPLICATION_TOKEN"] == installed["application_token"]
    )
    assert frame["form"]["SERVER_ENDPOINT"] == f"{sandbox.base_url}/bitrix24/oauth/rest/"
    assert rest(sandbox, "user.current", frame["form"]["AUTH_ID"]).json()["result"]["ID"] == str(user["id"])
    assert rest(sandbox, "user.admin", frame["form"]["AUTH_ID"]).json()["result"] is False


def test_the_frame_form_of_a_placement_opens_its_handler_with_the_options_as_a_json_string(sandbox, app):
    installer_that_binds(sandbox, app, [])
    install(sandbox, app)
    frame = sandbox.bitrix24_frame(1, TOOLBAR, {"ENTITY_ID": 32})
    assert frame["url"].startswith(app.url("/toolbar") + "?")
    assert frame["form"]["PLACEMENT"] == TOOLBAR
    assert isinstance(frame["form"]["PLACEMENT_OPTIONS"], str)
    assert json.loads(frame["form"]["PLACEMENT_OPTIONS"]) == {"ENTITY_ID": "32"}  # ids arrive as strings


def test_frames_for_unknown_users_or_unbound_placements_are_404(sandbox, app):
    install(sandbox, app)
    assert control(sandbox, "frame", user=99, placement="DEFAULT").status_code == 404
    assert control(sandbox, "frame", user=1, placement="CRM_SMART_INVOICE_LIST_MENU").status_code == 404


def test_without_an_install_there_is_no_frame(sandbox):
    assert control(sandbox, "frame", user=1).status_code == 409


def test_the_portal_page_frames_the_app_with_an_auto_submitted_form(sandbox, app):
    install(sandbox, app)
    response = requests.get(f"{sandbox.base_url}/bitrix24/portal/", params={"user": 1}, timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "X-Frame-Options" not in response.headers and "Content-Security-Policy" not in response.headers
    page = response.text
    assert '<iframe id="b24-app" name="b24-app"' in page
    assert 'target="b24-app"' in page and f'action="{app.url("/app")}?DOMAIN=' in page
    assert 'name="AUTH_ID"' in page and 'name="APPLICATION_TOKEN"' in page
    assert "getElementById('b24-form').submit()" in page
    assert "width:100%" in page  # the frame fills the content area


def test_the_portal_page_explains_why_there_is_no_app(sandbox):
    response = requests.get(f"{sandbox.base_url}/bitrix24/portal/", params={"user": 1}, timeout=5)
    assert response.status_code == 409 and "not installed" in response.text


def test_the_bx24_stand_in_library_is_served(sandbox):
    response = requests.get(f"{sandbox.base_url}/bitrix24/js/bx24.js", timeout=5)
    assert response.status_code == 200 and "javascript" in response.headers["Content-Type"]
    for name in ("installFinish", "getAuth", "placement", "isAdmin", "fitWindow", "resizeWindow", "closeApplication"):
        assert f"{name}:" in response.text


def test_an_install_left_unfinished_shows_the_installer_until_install_finish(sandbox, app):
    body = {"app_url": app.url("/app"), "install_url": app.url("/install"), "finish": False}
    out = control(sandbox, "install", **body).json()
    assert out["installed"] is False
    frame = sandbox.bitrix24_frame(1)
    assert frame["url"].startswith(app.url("/install") + "?")
    user = sandbox.bitrix24_user("Ann")
    assert control(sandbox, "frame", user=user["id"]).status_code == 409  # "not fully installed"
    assert requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/install-finish", timeout=5).json() == {
        "installed": True
    }
    assert sandbox.bitrix24_frame(user["id"])["url"].startswith(app.url("/app") + "?")


def test_placement_bind_refuses_unknown_codes_and_non_admins(sandbox):
    admin = control(sandbox, "tokens", user=1).json()["access_token"]
    user = sandbox.bitrix24_user("Ann")["access_token"]
    unknown = rest(sandbox, "placement.bind", admin, PLACEMENT="CRM_NOPE", HANDLER="https://app.example/x")
    assert unknown.status_code == 400 and unknown.json()["error"] == "ERROR_PLACEMENT_NOT_FOUND"
    denied = rest(sandbox, "placement.bind", user, PLACEMENT=TOOLBAR, HANDLER="https://app.example/x")
    assert denied.status_code == 403 and denied.json()["error"] == "ACCESS_DENIED"
    assert TOOLBAR in rest(sandbox, "placement.list", user).json()["result"]


def test_placements_are_listed_and_unbound(sandbox):
    admin = control(sandbox, "tokens", user=1).json()["access_token"]
    for handler in ("https://app.example/a", "https://app.example/b"):
        assert rest(sandbox, "placement.bind", admin, PLACEMENT=TOOLBAR, HANDLER=handler, TITLE="Xero").ok
    rest(sandbox, "placement.bind", admin, PLACEMENT="CRM_SMART_INVOICE_LIST_MENU", HANDLER="https://app.example/m")
    bound = rest(sandbox, "placement.get", admin).json()["result"]
    assert [(p["placement"], p["handler"], p["title"]) for p in bound][:2] == [
        (TOOLBAR, "https://app.example/a", "Xero"),
        (TOOLBAR, "https://app.example/b", "Xero"),
    ]
    assert rest(sandbox, "placement.unbind", admin, PLACEMENT=TOOLBAR).json()["result"] == {"count": 2}
    assert [p["placement"] for p in rest(sandbox, "placement.get", admin).json()["result"]] == [
        "CRM_SMART_INVOICE_LIST_MENU"
    ]


def test_user_and_app_methods_describe_the_caller_and_the_app(sandbox, app):
    install(sandbox, app)
    user = sandbox.bitrix24_user("Sales Sam")
    token = user["access_token"]
    current = rest(sandbox, "user.current", token).json()["result"]
    assert (current["ID"], current["NAME"], current["ACTIVE"]) == (str(user["id"]), "Sales Sam", True)
    assert rest(sandbox, "profile", token).json()["result"]["ADMIN"] is False
    info = rest(sandbox, "app.info", token).json()["result"]
    assert info["INSTALLED"] is True and info["PAYMENT_EXPIRED"] == "N"
    assert {"ID", "CODE", "VERSION", "STATUS", "DAYS", "LANGUAGE_ID", "LICENSE", "LICENSE_TYPE"} <= set(info)
    users = rest(sandbox, "user.get", token, filter={"ID": user["id"]}).json()["result"]
    assert [u["ID"] for u in users] == [str(user["id"])]


def test_app_options_are_set_by_admins_and_read_by_anyone(sandbox):
    admin = control(sandbox, "tokens", user=1).json()["access_token"]
    user = sandbox.bitrix24_user("Ann")["access_token"]
    assert rest(sandbox, "app.option.set", admin, options={"xero_tenant": "abc"}).json()["result"] is True
    assert rest(sandbox, "app.option.set", user, options={"xero_tenant": "evil"}).status_code == 403
    assert rest(sandbox, "app.option.get", user, option="xero_tenant").json()["result"] == "abc"
    assert rest(sandbox, "app.option.get", user).json()["result"] == {"xero_tenant": "abc"}
    assert sandbox.state()["bitrix24"]["app"]["options"] == {"xero_tenant": "abc"}


def test_the_authorize_page_redirects_with_a_code_that_exchanges_once(sandbox, app):
    install(sandbox, app)
    response = requests.get(
        f"{sandbox.base_url}/bitrix24/oauth/authorize/",
        params={"client_id": "local.app", "state": "xyz", "redirect_uri": app.url("/oauth")},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    back = parse_qs(urlsplit(response.headers["Location"]).query)
    assert back["state"] == ["xyz"] and back["server_domain"] == ["oauth.bitrix.info"]
    params = {
        "grant_type": "authorization_code",
        "client_id": "local.app",
        "client_secret": "s",
        "code": back["code"][0],
    }
    url = f"{sandbox.base_url}/bitrix24/oauth/token/"
    first = requests.get(url, params=params, timeout=5)
    assert (
        first.status_code == 200 and first.json()["user_id"] == 1 and first.json()["member_id"] == back["member_id"][0]
    )
    assert requests.get(url, params=params, timeout=5).json()["error"] == "invalid_grant"
