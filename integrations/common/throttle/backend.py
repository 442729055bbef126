"""The one interface both throttle backends implement (redis_backend.py shared across processes,
local_backend.py for one process without Redis); the waiting and the public functions in
__init__.py are written once against it."""

from __future__ import annotations

from typing import Protocol

from integrations.common.throttle.limits import Decision


class ThrottleBackend(Protocol):
    """Each call is one atomic decision on the backend's state; times are milliseconds."""

    def xero_acquire(self, tenant_id: str, token: str, interactive: bool) -> Decision: ...

    def xero_release(self, tenant_id: str, token: str) -> None: ...

    def xero_forget_waiter(self, tenant_id: str, token: str) -> None: ...

    def xero_observe(self, tenant_id: str, minute_left: int | None, day_left: int | None) -> None: ...

    def xero_penalize(self, tenant_id: str, ms: int, problem: str) -> None: ...

    def xero_daily_usage(self, tenant_id: str) -> tuple[int, int | None]: ...

    def bitrix24_acquire(self, member_id: str, token: str, interactive: bool) -> Decision: ...

    def bitrix24_forget_waiter(self, member_id: str, token: str) -> None: ...

    def bitrix24_penalize(self, member_id: str, ms: int, problem: str) -> None: ...
