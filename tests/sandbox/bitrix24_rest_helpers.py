"""A thin HTTP caller for the fake portal's REST API, shared by the tests/sandbox/test_bitrix24_* files.

It speaks to the sandbox process over real HTTP and keeps the status code, which the tests of
Bitrix24's error contract need (SandboxClient.bitrix24_rest returns only the body).
"""

from __future__ import annotations

from typing import Any

import requests


class Portal:
    def __init__(self, sandbox, token: str | None = None) -> None:
        self.sandbox = sandbox
        self.base = f"{sandbox.base_url}/bitrix24/rest/"
        self.token = token or self.user("Admin", admin=True)

    def user(self, name: str, admin: bool = False, invoices: str = "all") -> str:
        return self.new_user(name, admin, invoices)[1]

    def new_user(self, name: str, admin: bool = False, invoices: str = "all") -> tuple[int, str]:
        """(user id, access token) of a new portal user."""
        made = self.sandbox.bitrix24_user(name, admin=admin, invoices=invoices)
        return made["id"], made["access_token"]

    def call(self, method: str, params: dict | None = None, token: str | None = None) -> requests.Response:
        body = dict(params or {})
        body["auth"] = token or self.token
        return requests.post(f"{self.base}{method}.json", json=body, timeout=30)

    def ok(self, method: str, params: dict | None = None, token: str | None = None) -> Any:
        response = self.call(method, params, token)
        assert response.status_code == 200, f"{method}: {response.status_code} {response.text[:400]}"
        return response.json()["result"]

    def page(self, method: str, params: dict | None = None, token: str | None = None) -> dict:
        """The whole answer of a list call (result, total, next, time)."""
        response = self.call(method, params, token)
        assert response.status_code == 200, f"{method}: {response.status_code} {response.text[:400]}"
        return response.json()

    def error(self, method: str, params: dict | None, status: int, code: str, token: str | None = None) -> dict:
        response = self.call(method, params, token)
        assert (response.status_code, response.json().get("error")) == (status, code), response.text[:400]
        return response.json()

    def invoice(self, token: str | None = None, **fields) -> dict:
        return self.ok("crm.item.add", {"entityTypeId": 31, "fields": fields}, token)["item"]

    def invoices(self, count: int, **fields) -> list[int]:
        """Many invoices, 50 per batch call, titled "Bulk 1".."Bulk n"."""
        ids: list[int] = []
        for start in range(0, count, 50):
            cmd = {}
            for n in range(start, min(count, start + 50)):
                query = "&".join(f"fields[{k}]={v}" for k, v in {"title": f"Bulk {n + 1}", **fields}.items())
                cmd[f"i{n}"] = f"crm.item.add?entityTypeId=31&{query}"
            out = self.ok("batch", {"halt": 1, "cmd": cmd})
            assert out["result_error"] == [], out["result_error"]
            ids.extend(r["item"]["id"] for r in out["result"].values())
        return ids
