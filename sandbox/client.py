"""A small Python client for the sandbox's control API, shared by tests, sandbox_setup and bench/."""

from __future__ import annotations

from typing import Any

import requests


class SandboxError(RuntimeError):
    pass


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()

    def _call(self, method: str, path: str, json: Any = None, params: dict | None = None) -> Any:
        response = self.http.request(method, f"{self.base_url}{path}", json=json, params=params, timeout=self.timeout)
        if response.status_code >= 400:
            raise SandboxError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    # --- common ---
    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def quiesce(self) -> dict:
        """Reset and wait until nothing is still being delivered to the app."""
        return self._call("POST", "/_sandbox/quiesce")

    def state(self) -> dict:
        return self._call("GET", "/_sandbox/state")

    def calls(self, since: int = 0, system: str | None = None) -> list[dict]:
        params = {"since": since}
        if system:
            params["system"] = system
        return self._call("GET", "/_sandbox/calls", params=params)["calls"]

    def clear_calls(self) -> None:
        self._call("DELETE", "/_sandbox/calls")

    def limits(self, enabled: bool, time_scale: float = 1.0) -> dict:
        return self._call("POST", "/_sandbox/limits", json={"enabled": enabled, "time_scale": time_scale})

    def fault(
        self,
        system: str,
        match: str,
        status: int | None = None,
        times: int = 1,
        delay_s: float = 0,
        *,
        after: bool = False,
        query: str = "",
        body: dict | None = None,
        retry_after: float | None = None,
        location: str | None = None,
    ) -> None:
        """Fail the next `times` matching calls; with after=True the request is applied first and
        only its answer fails (the write happened, the caller never heard). `query`: only calls
        whose decoded query string contains it; `body`: the answer's JSON; `retry_after`: its
        Retry-After header; `location`: a 3xx answer redirecting there (a portal's domain change)."""
        payload = {"system": system, "match": match, "status": status, "times": times, "delay_s": delay_s}
        if after:
            payload["after"] = True
        if query:
            payload["query"] = query
        if retry_after is not None:
            payload["retry_after"] = retry_after
        if body is not None:
            payload["body"] = body
        if location is not None:
            payload["location"] = location
        self._call("POST", "/_sandbox/faults", json=payload)

    def xero_violations(self) -> list[str]:
        """Strict mode: what broke Xero's OpenAPI description since the last call (then forgotten)."""
        return self._call("GET", "/_sandbox/xero/violations")["violations"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    # --- Bitrix24 ---
    def bitrix24_install(self, app_url: str, install_url: str | None = None, event_url: str | None = None) -> dict:
        body = {"app_url": app_url}
        if install_url:
            body["install_url"] = install_url
        if event_url:
            body["event_url"] = event_url
        return self._call("POST", "/_sandbox/bitrix24/install", json=body)

    def bitrix24_settings(self, **values: Any) -> dict:
        """OAuth client pinning, refresh grace, event delivery delay/timeout (see sandbox/bitrix24/control.py)."""
        return self._call("POST", "/_sandbox/bitrix24/settings", json=values)

    def bitrix24_user(self, name: str, admin: bool = False, invoices: str = "all", time_zone: str = "") -> dict:
        body = {"name": name, "admin": admin, "invoices": invoices, "time_zone": time_zone}
        return self._call("POST", "/_sandbox/bitrix24/users", json=body)

    def bitrix24_updated_at(self, entity_type: int, invoice_id: int, at: str) -> dict:
        """Set when Bitrix24 last changed an invoice (updatedTime / DATE_UPDATE), e.g. to a past day."""
        body = {"entityTypeId": entity_type, "id": invoice_id, "at": at}
        return self._call("POST", "/_sandbox/bitrix24/invoices/updated", json=body)

    def bitrix24_frame(self, user: Any, placement: str = "DEFAULT", options: dict | None = None) -> dict:
        return self._call(
            "POST",
            "/_sandbox/bitrix24/frame",
            json={"user": user, "placement": placement, "options": options or {}},
        )

    def bitrix24_rest(self, method: str, params: dict | None = None, auth: str | None = None) -> dict:
        """Call the fake portal's REST API as a client would (HTTP, JSON body, `auth`)."""
        body = dict(params or {})
        if auth:
            body["auth"] = auth
        response = self.http.post(f"{self.base_url}/bitrix24/rest/{method}.json", json=body, timeout=self.timeout)
        return response.json()

    # --- Xero ---
    def xero_webhooks(self, url: str, key: str) -> None:
        self._call("POST", "/_sandbox/xero/webhooks", json={"url": url, "key": key})

    def xero_pay(self, invoice_id: str, amount: Any = None) -> dict:
        body = {} if amount is None else {"amount": str(amount)}
        return self._call("POST", f"/_sandbox/xero/invoices/{invoice_id}/pay", json=body)
