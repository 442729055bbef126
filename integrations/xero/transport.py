"""The transport under XeroClient: xero-python behind our throttle and tokens.

    transport.call("create_invoices", invoices=<SDK Invoices>, summarize_errors=False, idempotency_key=key)

Only integrations.xero.client (the typed methods) calls it; nothing outside integrations/xero sees
an SDK operation name or model. Each call: make sure the token has two minutes left (single-flight
refresh), wait for a slot of the tenant's throttle, call the SDK with a timeout, feed the rate
headers back to the throttle, and turn whatever the SDK raised into our RetryableError /
RateLimitedError / PermanentError / AuthorizationLostError. A 401 gets one forced refresh and one retry.

One client per connection per thread: the SDK's ApiClient keeps per-call state
(`last_response`, the OAuth2Token it fills from the getter) that must not be shared (§11.4 pitfall 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any, Protocol

from django.conf import settings
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiTypeError, ApiValueError, RateLimitException

from integrations import endpoints
from integrations.common.errors import AuthorizationLostError, ExternalAPIError, PermanentError, RetryableError
from integrations.common.throttle import xero_observe, xero_penalize, xero_slot
from integrations.common.tokens import TokenHolder, token_ensure_fresh, token_mark_lost
from integrations.xero.convert import without_read_only_defaults
from integrations.xero.errors import headers_of, token_problem, unauthorized, xero_classify
from integrations.xero.oauth import xero_connections, xero_refresh

__all__ = ["XeroCredentials", "XeroTransport"]

logger = logging.getLogger(__name__)

# (connect, read) seconds; the SDK has no default and would wait forever (§11.4 pitfall 10).
REQUEST_TIMEOUT = (5, 60)


class XeroCredentials(TokenHolder, Protocol):
    """A Xero connection as the client needs it (accounts.models.XeroConnection implements it)."""

    tenant_id: str
    tenant_name: str


class XeroTransport:
    def __init__(
        self, connection: XeroCredentials, *, interactive: bool = False, on_call: Callable[[], None] | None = None
    ) -> None:
        self.connection = connection
        self.interactive = interactive
        # Requests asked of this client (a 401's one retry not counted): the push and pull reports'
        # and the benches' call counts. `on_call` runs before each (the push renews its job leases).
        self.calls = 0
        self.on_call = on_call
        client_id, client_secret = settings.XERO_CLIENT_ID, settings.XERO_CLIENT_SECRET
        self._api_client = ApiClient(
            Configuration(oauth2_token=OAuth2Token(client_id=client_id, client_secret=client_secret)),
            pool_threads=1,
            oauth2_token_getter=self._token_for_sdk,
        )
        # Configuration is a singleton-with-copy that ignores its arguments after the first call and
        # shares the first OAuth2Token among all clients: give this client its own (pitfall 1).
        self._api_client.configuration.oauth2_token = OAuth2Token(client_id=client_id, client_secret=client_secret)
        # The SDK leaves urllib3's default Retry(3) in place, which sleeps out a 429's or 503's
        # Retry-After (hours, for the daily limit) inside the call, holding the worker and the
        # tenant's slot, and silently re-sends a PUT after a read timeout. Retrying is the task's job.
        self._api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
        self.accounting = AccountingApi(self._api_client, base_url=endpoints.xero_accounting_base())

    def call(self, operation: str, **kwargs: Any) -> Any:
        """Run `AccountingApi.<operation>(**kwargs)` for this connection's tenant; return its model."""
        if not self.connection.tenant_id:
            raise PermanentError("This Xero connection has no organisation chosen", system="xero", code="no_tenant")
        method = getattr(self.accounting, operation)
        self.calls += 1
        if self.on_call is not None:
            self.on_call()
        for value in kwargs.values():
            without_read_only_defaults(value)
        self.connection = token_ensure_fresh(self.connection, xero_refresh)
        try:
            return self._call_once(method, operation, kwargs)
        except _TokenRejected as rejected:
            # The token looked valid but Xero said 401: refresh once (unless a sibling already did,
            # which the generation tells) and try once more. A second 401 is not a token problem.
            self.connection = token_ensure_fresh(
                self.connection, xero_refresh, force=True, seen_generation=rejected.generation
            )
            try:
                return self._call_once(method, operation, kwargs)
            except _TokenRejected as again:
                raise unauthorized(again.cause, operation=operation, refreshed=True) from again.cause

    # --- internals -------------------------------------------------------------------------------

    def _call_once(self, method: Callable[..., Any], operation: str, kwargs: dict[str, Any]) -> Any:
        tenant_id = self.connection.tenant_id
        generation = self.connection.token_generation
        try:
            with xero_slot(tenant_id, interactive=self.interactive):
                data, _status, headers = method(
                    xero_tenant_id=tenant_id,
                    _request_timeout=REQUEST_TIMEOUT,
                    _return_http_data_only=False,
                    **kwargs,
                )
        except (ExternalAPIError, ApiTypeError, ApiValueError, TypeError):
            raise  # our throttle's RateLimitedError, or a bug in the call: not Xero's doing
        except Exception as exc:
            xero_observe(tenant_id, headers_of(exc))
            if token_problem(exc):
                raise _TokenRejected(generation, exc) from exc
            error = xero_classify(exc, operation=operation)
            if isinstance(exc, RateLimitException):
                # Everyone waits, not just this caller: the next call would only be refused too.
                xero_penalize(tenant_id, error.retry_after or 0, error.code or "429")
            if error.status == 403:
                raise self._forbidden(error) from exc
            raise error from exc
        xero_observe(tenant_id, headers)
        return data

    def _forbidden(self, error: ExternalAPIError) -> ExternalAPIError:
        """A 403 means a missing role or scope, or that the organisation was disconnected; ask
        /connections which, and mark the connection only in the second case."""
        try:
            tenants = {c.get("tenantId") for c in xero_connections(self.connection.access_token)}
        except (RetryableError, PermanentError):
            return error
        if self.connection.tenant_id in tenants:
            return error
        reason = (
            f"The Xero organisation {self.connection.tenant_name or self.connection.tenant_id} is no longer connected"
        )
        lost: AuthorizationLostError = token_mark_lost(self.connection, reason, code="tenant_disconnected")
        return lost

    def _token_for_sdk(self) -> dict[str, Any]:
        """The token as the SDK wants it, WITHOUT refresh_token: the SDK then can never refresh on
        its own (it raises AccessTokenExpiredError instead); rotation belongs to tokens.py."""
        conn = self.connection
        expires_at = conn.token_expires_at
        return {
            "access_token": conn.access_token,
            "token_type": "Bearer",
            "scope": conn.scope.split(),  # a list: a string would be joined letter by letter (pitfall 4)
            "expires_in": 1800,
            "expires_at": expires_at.astimezone(UTC).timestamp() if expires_at else None,
        }


class _TokenRejected(Exception):
    """Xero rejected the access token of generation `generation`."""

    def __init__(self, generation: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.generation = generation
        self.cause = cause
