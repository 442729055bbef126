"""The sandbox's shared control API: faults, limits switch, call log, reset."""

import requests


def test_it_injects_a_fault_the_given_number_of_times(sandbox):
    sandbox.fault("xero", "GET /Organisation", status=503, times=2)
    url = f"{sandbox.base_url}/xero/api.xro/2.0/Organisation"
    statuses = [requests.get(url, timeout=5).status_code for _ in range(3)]
    assert statuses[:2] == [503, 503]
    assert statuses[2] != 503


def test_it_logs_api_calls_but_not_control_calls(sandbox):
    requests.get(f"{sandbox.base_url}/xero/api.xro/2.0/Organisation", timeout=5)
    calls = sandbox.calls()
    assert [(c["system"], c["method"], c["target"]) for c in calls] == [("xero", "GET", "/Organisation")]
    assert calls[0]["status"] is not None and calls[0]["finished"] >= calls[0]["started"]


def test_it_refuses_malformed_control_requests(sandbox):
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"system": "nope"}, timeout=5)
    assert response.status_code == 400
    response = requests.post(f"{sandbox.base_url}/_sandbox/limits", json={"time_scale": -1}, timeout=5)
    assert response.status_code == 400


def test_reset_turns_limits_off_and_clears_faults(sandbox):
    sandbox.limits(True, time_scale=10)
    sandbox.fault("bitrix24", "POST crm.item.list", status=503, times=5)
    sandbox.reset()
    current = requests.post(f"{sandbox.base_url}/_sandbox/limits", json={}, timeout=5).json()
    assert current == {"enabled": False, "time_scale": 1.0}
    assert sandbox.calls() == []
    assert requests.post(f"{sandbox.base_url}/bitrix24/rest/crm.item.list.json", json={}, timeout=5).status_code != 503
