"""The fake portal's REST core: envelope, auth, request formats, paging, filters, select and order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from tests.sandbox.bitrix24_rest_helpers import Portal


@pytest.fixture
def portal(sandbox) -> Portal:
    return Portal(sandbox)


TIME_KEYS = {
    "start",
    "finish",
    "duration",
    "processing",
    "date_start",
    "date_finish",
    "operating_reset_at",
    "operating",
}


# --- envelope, auth, request formats ------------------------------------------------------------
def test_a_call_answers_result_and_the_documented_time_block(portal):
    body = portal.page("crm.currency.base.get")
    assert body["result"] == "NZD"
    assert set(body["time"]) == TIME_KEYS
    assert body["time"]["finish"] >= body["time"]["start"]
    assert "total" not in body and "next" not in body


def test_the_method_works_with_and_without_the_json_suffix_and_over_get(portal, sandbox):
    plain = requests.post(
        f"{sandbox.base_url}/bitrix24/rest/crm.currency.base.get", json={"auth": portal.token}, timeout=5
    )
    over_get = requests.get(
        f"{sandbox.base_url}/bitrix24/rest/crm.currency.base.get.json", params={"auth": portal.token}, timeout=5
    )
    assert plain.json()["result"] == over_get.json()["result"] == "NZD"


def test_form_bodies_and_query_strings_take_php_style_brackets(portal, sandbox):
    portal.invoice(title="Alpha", opportunity=10)
    portal.invoice(title="Beta", opportunity=20)
    form = {
        "auth": portal.token,
        "entityTypeId": "31",
        "filter[>=opportunity]": "15",
        "select[]": ["id", "title"],
        "order[id]": "DESC",
    }
    by_form = requests.post(f"{sandbox.base_url}/bitrix24/rest/crm.item.list.json", data=form, timeout=5).json()
    by_query = requests.get(f"{sandbox.base_url}/bitrix24/rest/crm.item.list", params=form, timeout=5).json()
    assert by_form["result"]["items"] == by_query["result"]["items"] == [{"id": 2, "title": "Beta"}]


def test_a_missing_or_unknown_token_is_refused_with_no_auth_found(portal, sandbox):
    assert portal.call("crm.item.list", {"entityTypeId": 31}, token="nope").status_code == 401
    response = requests.post(
        f"{sandbox.base_url}/bitrix24/rest/crm.item.list.json", json={"entityTypeId": 31}, timeout=5
    )
    assert (response.status_code, response.json()["error"]) == (401, "NO_AUTH_FOUND")


def test_an_expired_token_is_refused_with_expired_token(portal, sandbox):
    requests.post(f"{sandbox.base_url}/_sandbox/bitrix24/tokens/expire", json={}, timeout=5).raise_for_status()
    portal.error("crm.item.list", {"entityTypeId": 31}, 401, "expired_token")


def test_an_unknown_method_is_404_error_method_not_found(portal):
    portal.error("crm.item.explode", {}, 404, "ERROR_METHOD_NOT_FOUND")


def test_a_malformed_json_body_is_a_400_not_a_crash(portal, sandbox):
    response = requests.post(
        f"{sandbox.base_url}/bitrix24/rest/crm.item.list.json?auth={portal.token}",
        data=b'{"entityTypeId": 31,',
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert (response.status_code, response.json()["error"]) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("crm.item.get", {"entityTypeId": 31}, "INVALID_ARG_VALUE"),
        ("crm.item.get", {"entityTypeId": 31, "id": "abc"}, "INVALID_ARG_VALUE"),
        ("crm.item.get", {"entityTypeId": 31, "id": 999}, "NOT_FOUND"),
        ("crm.item.list", {"entityTypeId": 999}, "NOT_FOUND"),
        ("crm.item.list", {"entityTypeId": 5}, "ENTITY_TYPE_NOT_SUPPORTED"),
        ("crm.item.list", {}, "NOT_FOUND"),
        ("crm.item.add", {"entityTypeId": 31, "fields": "title"}, "INVALID_ARG_VALUE"),
        ("crm.item.add", {"entityTypeId": 31, "fields": {"opportunity": "lots"}}, "CRM_FIELD_ERROR_VALUE_NOT_VALID"),
        ("crm.item.add", {"entityTypeId": 31, "fields": {"contactIds": 5}}, "100"),
        ("crm.item.add", {"entityTypeId": 31, "fields": {"currencyId": "XYZ"}}, "CRM_FIELD_ERROR_VALUE_NOT_VALID"),
        ("crm.item.list", {"entityTypeId": 31, "filter": {">opportunity": "much"}}, "INVALID_ARG_VALUE"),
        ("crm.item.list", {"entityTypeId": 31, "filter": {">=updatedTime": "yesterday"}}, "INVALID_ARG_VALUE"),
        ("crm.item.list", {"entityTypeId": 31, "filter": "id=1"}, "INVALID_ARG_VALUE"),
        ("crm.item.list", {"entityTypeId": 31, "order": {"id": "UP"}}, "INVALID_ARG_VALUE"),
    ],
)
def test_bad_input_gets_bitrix24s_error_never_a_500(portal, method, params, code):
    portal.error(method, params, 400, code)


def test_the_call_log_is_keyed_by_the_portals_member_id(portal, sandbox):
    sandbox.clear_calls()
    portal.ok("crm.currency.base.get")
    member_id = sandbox.state()["bitrix24"]["member_id"]
    calls = sandbox.calls(system="bitrix24")
    assert [(c["target"], c["key"], c["status"]) for c in calls] == [("crm.currency.base.get", member_id, 200)]


# --- paging --------------------------------------------------------------------------------------
def test_lists_page_by_50_with_total_and_next(portal):
    portal.invoices(120)
    first = portal.page("crm.item.list", {"entityTypeId": 31, "select": ["id"]})
    assert (len(first["result"]["items"]), first["total"], first["next"]) == (50, 120, 50)
    last = portal.page("crm.item.list", {"entityTypeId": 31, "select": ["id"], "start": 100})
    assert [i["id"] for i in last["result"]["items"]] == list(range(101, 121))
    assert last["total"] == 120 and "next" not in last


def test_start_minus_one_skips_the_count_and_the_next_page(portal):
    portal.invoices(60)
    body = portal.page("crm.item.list", {"entityTypeId": 31, "select": ["id"], "start": -1})
    assert len(body["result"]["items"]) == 50
    assert body["total"] == 0 and "next" not in body


def test_the_documented_bulk_pattern_reads_everything_by_id_without_counting(portal):
    portal.invoices(75)
    seen, last = [], 0
    while True:
        params = {"entityTypeId": 31, "select": ["id"], "order": {"id": "ASC"}, "filter": {">id": last}, "start": -1}
        rows = portal.ok("crm.item.list", params)["items"]
        seen += [r["id"] for r in rows]
        if len(rows) < 50:
            break
        last = rows[-1]["id"]
    assert seen == list(range(1, 76))


# --- filters -------------------------------------------------------------------------------------
@pytest.fixture
def three(portal):
    portal.invoice(title="Alpha Ltd", opportunity=100, xmlId="X-1", currencyId="USD")
    portal.invoice(title="Beta Ltd", opportunity=200)
    portal.invoice(title="Gamma Inc", opportunity=300, xmlId="X-3")
    return portal


def _ids(portal, flt, **extra):
    return [i["id"] for i in portal.ok("crm.item.list", {"entityTypeId": 31, "filter": flt, **extra})["items"]]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({">=opportunity": 200}, [2, 3]),
        ({">opportunity": 200}, [3]),
        ({"<=opportunity": "200"}, [1, 2]),
        ({"<opportunity": 200}, [1]),
        ({"@id": [1, 3]}, [1, 3]),
        ({"!@id": [1, 3]}, [2]),
        ({"%title": "ltd"}, [1, 2]),
        ({"=%title": "%Inc"}, [3]),
        ({"%=title": "Alpha%"}, [1]),
        ({"!%title": "Ltd"}, [3]),
        ({"=currencyId": "USD"}, [1]),
        ({"currencyId": "NZD"}, [2, 3]),
        ({"!=currencyId": "USD"}, [2, 3]),
        ({"!currencyId": "USD"}, [2, 3]),
        ({"xmlId": None}, [2]),
        ({"!=xmlId": None}, [1, 3]),
        ({"id": [2, 3]}, [2, 3]),
        ({"logic": "OR", "0": {"=id": 1}, "1": {">opportunity": 250}}, [1, 3]),
        ({"0": {"logic": "OR", "=id": 1, "=title": "Beta Ltd"}, "!=currencyId": "USD"}, [2]),
        ([{"logic": "OR", "0": {"=id": 1}, "1": {"=id": 3}}], [1, 3]),
    ],
)
def test_each_filter_operator_selects_the_documented_rows(three, flt, expected):
    assert _ids(three, flt) == expected


def test_an_unknown_filter_field_is_refused_with_bitrix24s_wording(three):
    body = three.error(
        "crm.item.list", {"entityTypeId": 31, "filter": {">=UPDATED_TIME": "2026-01-01"}}, 400, "INVALID_ARG_VALUE"
    )
    assert body["error_description"] == "Invalid filter: field 'UPDATED_TIME' is not allowed in filter"


def test_date_filters_compare_instants_whatever_the_offset(three):
    stamp = three.ok("crm.item.get", {"entityTypeId": 31, "id": 2})["item"]["updatedTime"]
    assert stamp.endswith("+03:00")  # the portal's own offset, not UTC
    as_utc = datetime.fromisoformat(stamp).astimezone(UTC).isoformat()
    assert 2 in _ids(three, {">=updatedTime": as_utc})
    assert _ids(three, {">updatedTime": "2099-01-01T00:00:00+00:00"}) == []
    assert _ids(three, {"<updatedTime": as_utc}) == []


def test_a_local_day_is_selected_by_its_offset_bounds_with_the_next_midnight_left_out(three, sandbox):
    """crm-item-list.md's own day filter: `>=` the day's local midnight and `<` the next one, each
    with its offset; the stored stamps are in the portal's offset (+03:00), the bounds in +13:00."""
    sandbox.bitrix24_updated_at(31, 1, "2026-12-05T11:00:00Z")  # 00:00 of 6 December in Auckland
    sandbox.bitrix24_updated_at(31, 2, "2026-12-05T20:00:00+00:00")
    sandbox.bitrix24_updated_at(31, 3, "2026-12-06T11:00:00+00:00")  # 00:00 of the 7th there
    assert three.ok("crm.item.get", {"entityTypeId": 31, "id": 2})["item"]["updatedTime"] == "2026-12-05T23:00:00+03:00"
    day = {">=updatedTime": "2026-12-06T00:00:00+13:00", "<updatedTime": "2026-12-07T00:00:00+13:00"}
    assert _ids(three, day) == [1, 2]
    assert _ids(three, {"<=updatedTime": "2026-12-07T00:00:00+13:00"}) == [1, 2, 3]
    assert _ids(three, {">updatedTime": "2026-12-06T00:00:00+13:00"}) == [2, 3]


def test_a_users_own_time_zone_is_in_user_current(sandbox):
    kiwi = sandbox.bitrix24_user("Kiri Kiwi", time_zone="Pacific/Auckland")
    plain = sandbox.bitrix24_user("Pat Plain")
    assert sandbox.bitrix24_rest("user.current", auth=kiwi["access_token"])["result"]["TIME_ZONE"] == "Pacific/Auckland"
    assert sandbox.bitrix24_rest("user.current", auth=plain["access_token"])["result"]["TIME_ZONE"] == ""
    refused = requests.post(
        f"{sandbox.base_url}/_sandbox/bitrix24/users", json={"name": "X", "time_zone": "Mars/Olympus"}, timeout=10
    )
    assert refused.status_code == 400


# --- select and order ----------------------------------------------------------------------------
def test_select_names_fields_and_always_includes_id(three):
    items = three.ok("crm.item.list", {"entityTypeId": 31, "select": ["title", "nonsense"]})["items"]
    assert items[0] == {"id": 1, "title": "Alpha Ltd"}
    everything = three.ok("crm.item.list", {"entityTypeId": 31, "select": ["*"]})["items"][0]
    assert {"accountNumber", "stageId", "updatedTime", "contactIds", "opportunity"} <= set(everything)


def test_order_sorts_by_several_fields_either_way(three):
    three.invoice(title="Delta", opportunity=200)
    assert _ids(three, {}, order={"opportunity": "DESC", "id": "ASC"}) == [3, 2, 4, 1]
    assert _ids(three, {}, order={"opportunity": "asc", "id": "desc"}) == [1, 4, 2, 3]


def test_an_unknown_order_field_is_refused(three):
    three.error("crm.item.list", {"entityTypeId": 31, "order": {"sortOrder": "ASC"}}, 400, "INVALID_ARG_VALUE")
