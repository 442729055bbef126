"""The per-tenant cache of Xero's chart of accounts, tax rates and currencies, against the sandbox."""

from __future__ import annotations

import time

import pytest

from accounts.models import XeroConnection
from sync.services import xero_reference
from sync.services.xero_reference import (
    ReferenceData,
    XeroNotConnected,
    xero_accounts,
    xero_accounts_suggest,
    xero_bank_accounts,
    xero_currencies,
    xero_reference_refresh,
    xero_tax_rates,
)
from tests.accounts import conftest as accounts_fixtures
from tests.integrations.conftest import xero_connect

# The install and frame sign-in fixtures of the accounts tests, shared here.
acme = accounts_fixtures.acme
admin_frame = accounts_fixtures.admin_frame
app_url = accounts_fixtures.app_url


@pytest.fixture
def connected(acme) -> XeroConnection:
    return xero_connect(acme)


def xero_calls(sandbox, since: int, path: str | None = None) -> list[dict]:
    calls = [c for c in sandbox.calls(since=since, system="xero") if "/api.xro/" in c["path"]]
    return [c for c in calls if path is None or c["path"].endswith(path)]


def last_id(sandbox) -> int:
    calls = sandbox.calls()
    return calls[-1]["id"] if calls else 0


def test_the_cache_holds_active_accounts_tax_rates_and_currencies(sandbox, acme, connected):
    accounts = xero_accounts(acme)
    codes = [a["code"] for a in accounts]
    assert {"090", "200", "260", "610"} <= set(codes)
    # Revenue accounts come first.
    assert codes[:3] == ["200", "260", "270"]
    sales = next(a for a in accounts if a["code"] == "200")
    assert (sales["name"], sales["type"], sales["tax_type"]) == ("Sales", "REVENUE", "OUTPUT2")
    assert {a["code"] for a in xero_bank_accounts(acme)} >= {"090", "091"}
    rates = {r["tax_type"]: r for r in xero_tax_rates(acme)}
    assert rates["OUTPUT2"]["rate"] == 15.0 and rates["OUTPUT2"]["revenue"] is True
    assert rates["INPUT2"]["revenue"] is False
    assert {"NZD", "USD"} <= {c["code"] for c in xero_currencies(acme)}


def test_fresh_cache_answers_fifty_suggestions_without_calling_xero(sandbox, acme, connected, capsys):
    xero_reference_refresh(acme, full=True)
    mark = last_id(sandbox)
    queries = ["2", "20", "200", "sa", "SALES", "bank", "rev", "4", "x", ""] * 5
    answers = []
    for query in queries:
        started = time.perf_counter()
        answers.append(xero_accounts_suggest(portal=acme, query=query, limit=10))
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert elapsed_ms < 50, f"{query!r} took {elapsed_ms:.1f} ms"
    assert xero_calls(sandbox, mark) == []
    by_query = dict(zip(queries, answers, strict=False))
    assert by_query["200"][0] == {"code": "200", "name": "Sales", "type": "REVENUE"}
    assert [a["code"] for a in by_query["2"]][:3] == ["200", "260", "270"]  # revenue first
    assert {a["code"] for a in by_query["SALES"]} == {"200"}  # name match, case-insensitive
    assert {a["code"] for a in by_query["bank"]} == {"090", "404"}  # "Business Bank Account", "Bank Fees"
    assert by_query["x"] == [] or all("x" in a["name"].lower() for a in by_query["x"])
    assert len(by_query[""]) == 10 and by_query[""][0]["type"] == "REVENUE"
    assert capsys.readouterr().out == ""


def test_a_stale_cache_is_refreshed_once_incrementally_and_merged(sandbox, acme, connected, settings):
    first = xero_reference_refresh(acme, full=True)
    # A cached account Xero no longer lists: an If-Modified-Since read does not mention it, so the
    # merge keeps it; a full read drops it. That tells the two apart from the outside.
    planted = ReferenceData.from_json(first.to_json())
    planted.accounts["planted"] = {
        "id": "planted",
        "code": "999",
        "name": "Planted",
        "type": "REVENUE",
        "status": "ACTIVE",
        "tax_type": "",
        "payments_allowed": False,
        "updated": planted.accounts_modified,
    }
    planted.fetched_at = time.time() - 3600  # older than the max age
    planted.build_index()
    xero_reference._store_save(connected.tenant_id, planted)

    mark = last_id(sandbox)
    answer = xero_accounts_suggest(portal=acme, query="999")
    assert answer == [{"code": "999", "name": "Planted", "type": "REVENUE"}]
    assert len(xero_calls(sandbox, mark, "/Accounts")) == 1
    # Fresh again: the next keystrokes do not call Xero.
    mark = last_id(sandbox)
    xero_accounts_suggest(portal=acme, query="2")
    xero_accounts_suggest(portal=acme, query="20")
    assert xero_calls(sandbox, mark) == []
    # On demand, in full: the account Xero does not have is gone, the real ones are there.
    xero_reference_refresh(acme, full=True)
    assert xero_accounts_suggest(portal=acme, query="999") == []
    assert xero_accounts_suggest(portal=acme, query="200")[0]["code"] == "200"


def test_an_empty_cache_is_filled_on_first_use(sandbox, acme, connected):
    mark = last_id(sandbox)
    assert xero_accounts_suggest(portal=acme, query="260") == [
        {"code": "260", "name": "Other Revenue", "type": "REVENUE"}
    ]
    assert len(xero_calls(sandbox, mark, "/Accounts")) == 1


def test_without_a_xero_connection_the_cache_explains(sandbox, acme):
    with pytest.raises(XeroNotConnected):
        xero_accounts_suggest(portal=acme, query="2")


def test_the_suggest_endpoint_answers_json_for_the_product_form(client, sandbox, acme, connected, admin_frame):
    response = client.get("/app/xero/accounts/suggest/", {"q": "26", "ft": admin_frame.token})
    assert response.status_code == 200
    assert response.json()["results"] == [{"code": "260", "name": "Other Revenue", "type": "REVENUE"}]


def test_the_suggest_endpoint_says_when_xero_is_not_connected(client, sandbox, acme, admin_frame):
    response = client.get("/app/xero/accounts/suggest/", {"q": "2", "ft": admin_frame.token})
    assert response.status_code == 409
    assert response.json()["results"] == [] and "Connect" in response.json()["error"]
