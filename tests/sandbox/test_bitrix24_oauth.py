"""The fake Bitrix24's users, tokens and OAuth server (token grants, OAuth-server app.info)."""

import requests

CLIENT = {"client_id": "local.sandbox.1", "client_secret": "s3cret"}
TOKEN_KEYS = {
    "access_token",
    "refresh_token",
    "expires",
    "expires_in",
    "scope",
    "domain",
    "server_endpoint",
    "client_endpoint",
    "member_id",
    "user_id",
    "status",
}


def refresh(sandbox, refresh_token, **client):
    params = {"grant_type": "refresh_token", **CLIENT, **client, "refresh_token": refresh_token}
    return requests.get(f"{sandbox.base_url}/bitrix24/oauth/token/", params=params, timeout=5)


def rest(sandbox, method, auth, **params):
    return requests.post(f"{sandbox.base_url}/bitrix24/rest/{method}.json", json={**params, "auth": auth}, timeout=5)


def test_a_new_user_comes_with_a_token_pair_for_the_portal(sandbox):
    user = sandbox.bitrix24_user("Sales Sam", admin=False, invoices="own")
    assert user["id"] == 2  # user 1 is the portal admin
    assert (user["name"], user["admin"], user["invoices"]) == ("Sales Sam", False, "own")
    assert user["access_token"] and user["refresh_token"] and user["expires_in"] == 3600
    assert user["client_endpoint"] == f"{sandbox.base_url}/bitrix24/rest/"
    state = sandbox.state()["bitrix24"]
    assert user["member_id"] == state["member_id"] and user["domain"] == state["domain"]
    assert {"id": 2, "name": "Sales Sam", "admin": False, "invoices": "own"}.items() <= next(
        u for u in state["users"] if u["id"] == 2
    ).items()


def test_a_malformed_user_request_is_refused(sandbox):
    response = requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/users", json={"invoices": "some"}, timeout=5)
    assert response.status_code == 400


def test_a_refresh_returns_the_full_token_answer_with_a_new_pair(sandbox):
    user = sandbox.bitrix24_user("Ann")
    response = refresh(sandbox, user["refresh_token"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert body["access_token"] != user["access_token"] and body["refresh_token"] != user["refresh_token"]
    assert body["expires_in"] == 3600 and body["user_id"] == user["id"]
    assert body["domain"] == "oauth.bitrix.info"  # the OAuth server; the portal is in client_endpoint
    assert body["client_endpoint"] == user["client_endpoint"] and body["member_id"] == user["member_id"]
    assert body["server_endpoint"] == f"{sandbox.base_url}/bitrix24/oauth/rest/"
    assert body["status"] in ("L", "F")


def test_a_refresh_token_works_once_then_invalid_grant(sandbox):
    user = sandbox.bitrix24_user("Ann")
    first = refresh(sandbox, user["refresh_token"])
    again = refresh(sandbox, user["refresh_token"])
    assert first.status_code == 200
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.json()["error_description"]
    # the rotated one works, once
    assert refresh(sandbox, first.json()["refresh_token"]).status_code == 200


def test_within_the_grace_window_a_used_refresh_token_returns_the_same_new_pair(sandbox):
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/settings", json={"refresh_grace_s": 30}, timeout=5)
    user = sandbox.bitrix24_user("Ann")
    first = refresh(sandbox, user["refresh_token"]).json()
    second = refresh(sandbox, user["refresh_token"])
    assert second.status_code == 200
    assert second.json()["access_token"] == first["access_token"]
    assert second.json()["refresh_token"] == first["refresh_token"]


def test_the_client_credentials_of_the_first_request_stick(sandbox):
    user = sandbox.bitrix24_user("Ann")
    assert refresh(sandbox, user["refresh_token"]).status_code == 200
    other = sandbox.bitrix24_user("Bob")
    wrong = refresh(sandbox, other["refresh_token"], client_secret="guess")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    # the refused request did not burn the refresh token
    assert refresh(sandbox, other["refresh_token"]).status_code == 200


def test_unknown_grant_types_and_missing_credentials_are_refused(sandbox):
    url = f"{sandbox.base_url}/bitrix24/oauth/token/"
    assert (
        requests.get(url, params={"grant_type": "password", **CLIENT}, timeout=5).json()["error"] == "invalid_request"
    )
    assert requests.get(url, params={"grant_type": "refresh_token"}, timeout=5).json()["error"] == "invalid_client"


def test_revoked_refresh_tokens_are_refused(sandbox):
    user = sandbox.bitrix24_user("Ann")
    out = requests.post(
        f"{sandbox.base_url}/_sandbox/bitrix24/tokens/expire", json={"user": user["id"], "refresh": True}, timeout=5
    ).json()
    assert out["refresh_revoked"] == 1
    assert refresh(sandbox, user["refresh_token"]).json()["error"] == "invalid_grant"


def test_the_oauth_server_app_info_describes_the_token_and_the_install(sandbox):
    user = sandbox.bitrix24_user("Ann")
    url = f"{sandbox.base_url}/bitrix24/oauth/rest/app.info"
    body = requests.get(url, params={"auth": user["access_token"]}, timeout=5).json()["result"]
    assert body["user_id"] == user["id"] and body["scope"]
    assert set(body["install"]) == {
        "installed",
        "version",
        "status",
        "scope",
        "domain",
        "uri",
        "client_endpoint",
        "member_id",
        "member_type",
    }
    assert body["install"]["member_id"] == user["member_id"] and body["install"]["installed"] is False
    assert requests.get(url, params={"auth": "nope"}, timeout=5).status_code == 401


def test_expired_access_tokens_are_refused_by_the_oauth_server_app_info(sandbox):
    user = sandbox.bitrix24_user("Ann")
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens/expire", json={}, timeout=5)
    response = requests.get(
        f"{sandbox.base_url}/bitrix24/oauth/rest/app.info", params={"auth": user["access_token"]}, timeout=5
    )
    assert response.status_code == 401 and response.json()["error"] == "expired_token"


def test_an_expired_access_token_gets_401_expired_token_from_rest_until_refreshed(sandbox):
    user = sandbox.bitrix24_user("Ann")
    assert rest(sandbox, "user.current", user["access_token"]).status_code == 200
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens/expire", json={"user": user["id"]}, timeout=5)
    expired = rest(sandbox, "user.current", user["access_token"])
    assert expired.status_code == 401 and expired.json()["error"] == "expired_token"
    fresh = refresh(sandbox, user["refresh_token"]).json()
    assert rest(sandbox, "user.current", fresh["access_token"]).json()["result"]["ID"] == str(user["id"])
