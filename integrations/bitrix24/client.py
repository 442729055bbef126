"""HTTP client for one Bitrix24 portal's REST API: calls, batches, and lists across pages.

Every HTTP request waits for the portal's shared leaky bucket (bitrix24_slot), so all workers
together stay under Bitrix24's limit instead of meeting 503s. Two kinds of token:

- Background calls (no user_token) use the portal's stored token pair. It is refreshed
  single-flight through token_ensure_fresh; on a refused token (401 expired_token, or a
  NO_AUTH_FOUND left behind by a sibling worker's refresh) the client refreshes once — or picks up
  the sibling's fresh token — and retries once. If the fresh token is refused too, the portal is
  marked needs_reauth and AuthorizationLostError is raised.
- user_token calls act as that Bitrix24 user, so Bitrix24's permissions decide what they see. We
  keep no user refresh tokens (they rotate and would need storage per user), so an expired or
  refused user token raises UserTokenExpiredError / UserTokenRejectedError: the web layer answers
  "reopen the app" and Bitrix24 posts a fresh AUTH_ID.

Use one client per thread or task; it caches the token it last used.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlparse

import requests

from integrations.bitrix24.errors import (
    SYSTEM,
    TokenExpiredError,
    TokenRejectedError,
    UserTokenExpiredError,
    UserTokenRejectedError,
    error_for,
    raise_for_response,
    transport_error,
)
from integrations.bitrix24.oauth import app_info_belongs_to, bitrix24_app_info, bitrix24_refresh
from integrations.bitrix24.php_query import batch_command
from integrations.bitrix24.results import (  # re-exported: callers and tests import them from here
    BATCH_LIMIT,
    PAGE_SIZE,
    BatchResult,
    Bitrix24Response,
    _id_of,
    _rows,
    _section,
    _wrapper_key,
)
from integrations.common.errors import AuthorizationLostError, ExternalAPIError, PermanentError, RateLimitedError
from integrations.common.outbound import OutboundRefused, outbound_check
from integrations.common.throttle import bitrix24_penalize, bitrix24_slot
from integrations.common.tokens import TokenHolder, credentials_update, token_ensure_fresh, token_mark_lost

logger = logging.getLogger(__name__)

# Refresh a little before expiry so a call does not start with a token that dies in flight.
MIN_TOKEN_VALIDITY_S = 120
# Request-rate refusals (the portal's leaky bucket is full), as opposed to the per-method
# OPERATION_TIME_LIMIT.
_BUCKET_FULL = {"QUERY_LIMIT_EXCEEDED", "OVERLOAD_LIMIT"}


class Bitrix24Installation(TokenHolder, Protocol):
    """A portal as the client needs it (accounts.models.Portal implements it)."""

    member_id: str
    domain: str
    client_endpoint: str

    @property
    def is_active(self) -> bool: ...


class Bitrix24Client:
    def __init__(
        self,
        portal: Bitrix24Installation,
        *,
        user_token: str | None = None,
        interactive: bool = False,
        timeout: tuple[float, float] = (5, 30),
    ) -> None:
        self.portal = portal
        self.user_token = user_token
        self.interactive = interactive
        self.timeout = timeout
        self.http = requests.Session()
        self._token: str | None = None
        self._generation: int | None = None

    # --- tokens -----------------------------------------------------------------------------

    def _portal_token(self, *, force: bool = False) -> str:
        portal = self.portal
        near_expiry = portal.token_expires_at is None or portal.token_expires_at <= dt.datetime.now(
            dt.UTC
        ) + dt.timedelta(seconds=MIN_TOKEN_VALIDITY_S)
        if force or self._token is None or near_expiry:
            # On force, seen_generation lets token_ensure_fresh hand back a sibling's newer token
            # instead of spending the refresh token a second time.
            portal = token_ensure_fresh(
                portal,
                bitrix24_refresh,
                force=force,
                min_validity_s=MIN_TOKEN_VALIDITY_S,
                seen_generation=self._generation if force else None,
            )
            self.portal = portal
            self._token = portal.access_token
            self._generation = portal.token_generation
        if not portal.is_active:
            raise AuthorizationLostError(
                f"portal {portal.domain} is {portal.status}: {portal.status_reason}", system=SYSTEM
            )
        return self._token or ""

    def _mark_needs_reauth(self, error: ExternalAPIError) -> None:
        """Through the token module, guarded by the generation like every other write of token
        state: a reconnect that saved a new grant meanwhile is not undone (issue 17)."""
        reason = f"Bitrix24 refused a freshly refreshed token: {error.code or ''} {error.message}".strip()
        token_mark_lost(self.portal, reason, code="token_rejected")
        logger.warning("portal %s needs re-authorisation: %s", self.portal.member_id, reason)

    # --- transport --------------------------------------------------------------------------

    def _post(self, url: str, method: str, body: dict) -> requests.Response:
        try:
            outbound_check(url)
        except OutboundRefused as exc:
            raise PermanentError(f"{method}: not calling {urlparse(url).netloc!r}: {exc}", system=SYSTEM) from None
        with bitrix24_slot(self.portal.member_id, interactive=self.interactive):
            try:
                return self.http.post(url, json=body, timeout=self.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                raise transport_error(exc, method=method) from None

    def _follow_domain_change(self, response: requests.Response, method: str, body: dict) -> requests.Response:
        """Bitrix24 answers 302 to the new address after a domain change (§2.1); requests would
        turn the POST into a GET, so re-POST by hand, once — but only to the address Bitrix24's
        OAuth server names for this portal. A redirect is just an answer from whatever host we
        called; following it blindly would send our token (in the body) wherever it points, and
        storing it would move the portal there for good."""
        location = response.headers.get("Location", "")
        parsed = urlparse(location)
        if parsed.scheme not in ("http", "https") or "/rest/" not in parsed.path:
            raise PermanentError(
                f"{method}: unexpected redirect to {parsed.netloc!r}", system=SYSTEM, status=response.status_code
            )
        client_endpoint = location[: location.index("/rest/") + len("/rest/")]
        install = self._installation_confirmed(str(body.get("auth") or ""), client_endpoint)
        if install is None:
            logging.getLogger("integrations.security").warning(
                "portal %s: redirect to %s refused: Bitrix24's OAuth server does not confirm it",
                self.portal.member_id,
                parsed.netloc,
            )
            raise PermanentError(
                f"{method}: Bitrix24 redirected to {parsed.netloc!r}, which its OAuth server does not confirm "
                "as this portal's address; not followed",
                system=SYSTEM,
                status=response.status_code,
            )
        domain = str(install.get("domain") or parsed.netloc)
        response = self._post(location, method, body)
        if response.status_code < 300:
            credentials_update(self.portal, domain=domain, client_endpoint=client_endpoint)
            logger.info("portal %s moved to %s (confirmed by the OAuth server)", self.portal.member_id, domain)
        return response

    def _installation_confirmed(self, token: str, client_endpoint: str) -> dict | None:
        """app.info's install record when it names `client_endpoint` for this portal, else None."""
        try:
            info = bitrix24_app_info(token)
        except ExternalAPIError as exc:
            if exc.retryable:
                raise
            return None
        raw_install = info.get("install")
        install: dict = raw_install if isinstance(raw_install, dict) else {}
        if not app_info_belongs_to(info, member_id=self.portal.member_id):
            return None
        confirmed = str(install.get("client_endpoint") or "").rstrip("/")
        return install if confirmed and confirmed == client_endpoint.rstrip("/") else None

    def _send(self, method: str, params: Mapping[str, Any] | None, token: str) -> dict:
        try:
            return self._send_once(method, params, token)
        except RateLimitedError as exc:
            if (exc.code or "").upper() not in _BUCKET_FULL:
                raise  # the operating limit blocks one method for minutes: the task's countdown
            # Our bucket and Bitrix24's drift apart by network delay, so a request admitted at the
            # brim can still be refused. The penalty has stopped every worker of this portal; wait
            # it out in the slot and try once more, rather than fail a user's click.
            return self._send_once(method, params, token)

    def _send_once(self, method: str, params: Mapping[str, Any] | None, token: str) -> dict:
        body = {**(params or {}), "auth": token}
        url = f"{self.portal.client_endpoint.rstrip('/')}/{method}.json"
        response = self._post(url, method, body)
        if response.status_code in (301, 302, 307, 308):
            response = self._follow_domain_change(response, method, body)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        try:
            raise_for_response(response.status_code, payload)
        except RateLimitedError as exc:
            # Only the request-rate limit is per portal; the operating limit blocks one method.
            if (exc.code or "").upper() in _BUCKET_FULL:
                bitrix24_penalize(self.portal.member_id, exc.retry_after or 1.0)
            raise
        return payload

    def _call_raw(self, method: str, params: Mapping[str, Any] | None) -> dict:
        if self.user_token is not None:
            try:
                return self._send(method, params, self.user_token)
            except TokenExpiredError as exc:
                raise UserTokenExpiredError(
                    "Your Bitrix24 session has expired; reopen the app.",
                    system=SYSTEM,
                    status=exc.status,
                    code=exc.code,
                ) from None
            except TokenRejectedError as exc:
                raise UserTokenRejectedError(
                    "Bitrix24 did not accept your session; reopen the app.",
                    system=SYSTEM,
                    status=exc.status,
                    code=exc.code,
                ) from None
        try:
            return self._send(method, params, self._portal_token())
        except (TokenExpiredError, TokenRejectedError):
            token = self._portal_token(force=True)
        try:
            return self._send(method, params, token)
        except TokenRejectedError as exc:
            self._mark_needs_reauth(exc)
            raise

    # --- public API -------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Bitrix24Response:
        payload = self._call_raw(method, params)
        return Bitrix24Response(
            result=payload.get("result"),
            total=payload.get("total"),
            next=payload.get("next"),
            time=payload.get("time") or {},
        )

    def result(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call(method, params).result

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any] | None]], *, halt: bool = False) -> BatchResult:
        """Run up to 50 commands in one HTTP request. Later commands may refer to earlier results
        with `$result[key][...]` in their params (Bitrix24 substitutes them)."""
        if len(commands) > BATCH_LIMIT:
            raise ValueError(f"a batch holds at most {BATCH_LIMIT} commands; use batch_all")
        if not commands:
            return BatchResult()
        cmd = {str(key): batch_command(method, params) for key, (method, params) in commands.items()}
        outer = self.call("batch", {"halt": 1 if halt else 0, "cmd": cmd}).result
        outer = outer if isinstance(outer, dict) else {}
        return BatchResult(
            results=_section(outer.get("result")),
            errors={key: error_for(None, body) for key, body in _section(outer.get("result_error")).items()},
            totals={key: int(v) for key, v in _section(outer.get("result_total")).items() if v is not None},
            nexts={key: int(v) for key, v in _section(outer.get("result_next")).items() if v is not None},
        )

    def batch_all(
        self, commands: Mapping[str, tuple[str, Mapping[str, Any] | None]], *, halt: bool = False
    ) -> BatchResult:
        """Any number of commands, sent as consecutive batches of 50 (in order). With halt, stops
        after the first batch that had an error."""
        merged = BatchResult()
        items = list(commands.items())
        for start in range(0, len(items), BATCH_LIMIT):
            chunk = self.batch(dict(items[start : start + BATCH_LIMIT]), halt=halt)
            merged.merge(chunk)
            if halt and chunk.errors:
                break
        return merged

    def list_all(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        fast: bool = False,
        id_field: str | None = None,
    ) -> Iterator[dict]:
        """Every row of a list method, across pages, in as few HTTP requests as possible.

        Default: page 1 with a plain call (it tells the total), then all other pages at once by
        `start` offset in batches of 50 pages. fast=True is the docs' bulk mode for large sets:
        order by id, `>id` filter, start=-1 (no count), 50 pages chained per batch. `key` names
        the list inside a wrapped result when it cannot be guessed."""
        if fast:
            yield from self._list_fast(method, dict(params or {}), key, id_field)
            return
        params = dict(params or {})
        first = self.call(method, params)
        yield from _rows(first.result, key)
        if not first.next or not first.total:
            return
        starts = list(range(first.next, first.total, PAGE_SIZE))
        # One batch carries 50 pages (2,500 rows); yield each batch before fetching the next.
        for chunk in range(0, len(starts), BATCH_LIMIT):
            pages = {f"p{start}": (method, {**params, "start": start}) for start in starts[chunk : chunk + BATCH_LIMIT]}
            outcome = self.batch(pages)
            for page in pages:
                yield from _rows(outcome.value(page), key)

    def _list_fast(self, method: str, params: dict, key: str | None, id_field: str | None) -> Iterator[dict]:
        # crm.item.* filters and orders by camelCase `id`; classic methods by `ID`.
        request_id = id_field or ("id" if method.startswith("crm.item.") else "ID")
        base_filter = dict(params.get("filter") or {})

        def page_params(after: Any) -> dict:
            flt = dict(base_filter)
            if after is not None:
                flt[f">{request_id}"] = after
            return {**params, "order": {request_id: "ASC"}, "filter": flt, "start": -1}

        first = self.call(method, page_params(None))
        rows = _rows(first.result, key)
        yield from rows
        if len(rows) < PAGE_SIZE:
            return
        wrapper = _wrapper_key(first.result, key)
        response_id = next((k for k in rows[0] if k.upper() == "ID"), request_id)
        last_id = _id_of(rows[-1], response_id)
        while True:
            # Page i filters on the last id of page i-1 inside the same batch; halt stops the
            # chain at the first page whose predecessor was short (its [49] does not exist).
            commands = {"c0": (method, page_params(last_id))}
            for i in range(1, BATCH_LIMIT):
                ref = f"$result[c{i - 1}]" + (f"[{wrapper}]" if wrapper else "") + f"[{PAGE_SIZE - 1}][{response_id}]"
                commands[f"c{i}"] = (method, page_params(ref))
            outcome = self.batch(commands, halt=True)
            for name in commands:
                rows = _rows(outcome.value(name), key)
                # Guard against a chain that did not advance: only ids past the last one count.
                rows = [row for row in rows if _id_of(row, response_id) > last_id]
                yield from rows
                if len(rows) < PAGE_SIZE:
                    return
                last_id = _id_of(rows[-1], response_id)
