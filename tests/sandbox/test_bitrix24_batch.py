"""`batch` on the fake portal: ordered commands, $result chaining, per-command errors, halt, limits."""

from __future__ import annotations

import pytest
import requests

from tests.sandbox.bitrix24_rest_helpers import Portal


@pytest.fixture
def portal(sandbox) -> Portal:
    return Portal(sandbox)


def test_commands_run_in_order_and_later_ones_read_earlier_results(portal):
    out = portal.ok(
        "batch",
        {
            "halt": 0,
            "cmd": {
                "made": "crm.item.add?entityTypeId=31&fields[title]=Chained&fields[opportunity]=42",
                "read": "crm.item.get?entityTypeId=31&id=$result[made][item][id]",
                "listed": "crm.item.list?entityTypeId=31&filter[%3E%3Dopportunity]=40&select[]=title",
                "first": "crm.item.update?entityTypeId=31&id=$result[listed][items][0][id]&fields[comments]=From $result[read][item][title]",
            },
        },
    )
    assert list(out["result"]) == ["made", "read", "listed", "first"]
    assert out["result"]["read"]["item"]["title"] == "Chained"
    assert out["result"]["first"]["item"]["comments"] == "From Chained"
    assert out["result_total"] == {"listed": 1}
    assert out["result_error"] == [] and out["result_next"] == []
    assert set(out["result_time"]) == {"made", "read", "listed", "first"}


def test_a_failing_command_lands_in_result_error_and_the_rest_still_run(portal):
    out = portal.ok(
        "batch",
        {"halt": 0, "cmd": {"bad": "crm.item.get?entityTypeId=31&id=999", "good": "crm.currency.base.get"}},
    )
    assert out["result"] == {"good": "NZD"}
    assert out["result_error"] == {"bad": {"error": "NOT_FOUND", "error_description": "Item not found"}}


def test_halt_stops_at_the_first_error(portal):
    out = portal.ok(
        "batch",
        {
            "halt": 1,
            "cmd": {
                "one": "crm.item.add?entityTypeId=31&fields[title]=One",
                "bad": "crm.item.get?entityTypeId=31&id=999",
                "never": "crm.item.add?entityTypeId=31&fields[title]=Never",
            },
        },
    )
    assert list(out["result"]) == ["one"] and list(out["result_error"]) == ["bad"]
    titles = [i["title"] for i in portal.ok("crm.item.list", {"entityTypeId": 31})["items"]]
    assert titles == ["One"]


def test_a_list_of_commands_answers_lists_as_php_would(portal):
    out = portal.ok("batch", {"cmd": ["crm.currency.base.get", "crm.item.get?entityTypeId=31&id=7"]})
    assert out["result"] == ["NZD"]
    assert out["result_error"] == {"1": {"error": "NOT_FOUND", "error_description": "Item not found"}}


def test_every_empty_section_is_an_empty_array_not_an_object(portal):
    out = portal.ok("batch", {"cmd": {"bad": "crm.item.get?entityTypeId=31&id=1"}})
    assert out["result"] == [] and out["result_total"] == [] and out["result_next"] == []


def test_paging_fields_of_list_commands_appear_per_key(portal):
    portal.invoices(60)
    out = portal.ok("batch", {"cmd": {"p1": "crm.item.list?entityTypeId=31&select[]=id"}})
    assert out["result_total"] == {"p1": 60} and out["result_next"] == {"p1": 50}


def test_a_nested_batch_is_refused_for_that_command_only(portal):
    out = portal.ok("batch", {"cmd": {"inner": "batch?cmd[x]=crm.currency.base.get", "ok": "crm.currency.base.get"}})
    assert out["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert out["result"] == {"ok": "NZD"}


def test_more_than_50_commands_are_refused(portal):
    cmd = {f"c{n}": "crm.currency.base.get" for n in range(51)}
    portal.error("batch", {"cmd": cmd}, 400, "ERROR_BATCH_LENGTH_EXCEEDED")
    assert len(portal.ok("batch", {"cmd": dict(list(cmd.items())[:50])})["result"]) == 50


def test_commands_run_with_the_callers_permissions(portal):
    other = portal.invoice(title="Someone else's")
    own_token = portal.user("Seller", invoices="own")
    out = portal.ok("batch", {"cmd": {"peek": f"crm.item.get?entityTypeId=31&id={other['id']}"}}, token=own_token)
    assert out["result_error"]["peek"]["error"] == "ACCESS_DENIED"


def test_a_form_encoded_batch_with_double_encoded_commands_works(portal, sandbox):
    response = requests.post(
        f"{sandbox.base_url}/bitrix24/rest/batch.json",
        data={
            "auth": portal.token,
            "halt": "0",
            "cmd[a]": "crm.item.add?entityTypeId=31&fields%5Btitle%5D=Form%20made",
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["result"]["result"]["a"]["item"]["title"] == "Form made"


def test_unknown_methods_in_a_batch_are_per_command_errors(portal):
    out = portal.ok("batch", {"cmd": {"x": "no.such.method?a=1", "y": ""}})
    assert out["result_error"]["x"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert out["result_error"]["y"]["error"] == "ERROR_METHOD_NOT_FOUND"
