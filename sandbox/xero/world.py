"""XeroWorld: the organisations, the identity server's state, and the collaborators every call uses
(rate limiter, Idempotency-Key store, webhook emitter)."""

from __future__ import annotations

from datetime import datetime

from flask import Response, request

from sandbox.xero import (
    contacts,
    credit_notes,
    identity,
    invoice_render,
    items,
    payments,
    reference,
    settings,
)
from sandbox.xero.idempotency import IdempotencyStore
from sandbox.xero.limits import XeroLimiter
from sandbox.xero.store import Organisation
from sandbox.xero.webhooks import WebhookEmitter
from sandbox.xero.wire import api_error, json_response, problem


class XeroWorld:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.limiter = XeroLimiter(sandbox)
        self.idempotency = IdempotencyStore(sandbox)
        self.webhooks = WebhookEmitter(sandbox)
        self.organisations: dict[str, Organisation] = {}
        self.identity = identity.Identity()
        self._fresh()

    def _fresh(self) -> None:
        first = Organisation(reference.DEFAULT_ORGANISATION_NAME)
        self.organisations = {first.id: first}
        self.identity = identity.Identity()

    def reset(self) -> None:
        with self.sandbox.lock:
            self._fresh()
            self.limiter.reset()
            self.idempotency.reset()
            self.webhooks.reset()

    def limits_changed(self) -> None:
        """After POST /_sandbox/limits: the limiter starts fresh windows when the clock's pace changed."""
        self.limiter.limits_changed()

    # --- organisations ---------------------------------------------------------------------------
    def add_organisation(self, name: str, base_currency: str) -> Organisation:
        with self.sandbox.lock:
            org = Organisation(name, base_currency)
            self.organisations[org.id] = org
            return org

    def default_organisation(self) -> Organisation:
        return next(iter(self.organisations.values()))

    def find_invoice(self, invoice_id: str) -> tuple[Organisation, dict] | None:
        for org in self.organisations.values():
            invoice = org.invoices.get(invoice_id.lower())
            if invoice is not None:
                return org, invoice
        return None

    # --- auth ------------------------------------------------------------------------------------
    def authenticate(self) -> tuple[identity.Grant | None, Response | None]:
        """The grant behind the request's bearer token, or the 401 Xero answers."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        with self.sandbox.lock:
            stored = self.identity.access_tokens.get(token) if scheme.lower() == "bearer" else None
            grant = self.identity.grants.get(stored.grant_id) if stored else None
            if stored is None or grant is None or grant.revoked:
                return None, json_response(401, problem(401, "AuthenticationUnsuccessful"))
            if self.sandbox.clock.now() >= stored.expires_at:
                detail = identity.token_expired_detail(stored.expires_at)
                return None, json_response(401, problem(401, detail))
            return grant, None

    def connected_organisation(self, grant: identity.Grant, tenant_id: str) -> Organisation | None:
        org = self.organisations.get(tenant_id)
        if org is None:
            return None
        for connection in self.identity.connections_of(grant.id):
            if connection.tenant_id == tenant_id:
                return org
        return None

    # --- webhooks --------------------------------------------------------------------------------
    def emit(self, tenant_id: str, events: list[tuple[str, str, str]]) -> None:
        """Hand changes to the emitter. Called after sandbox.lock is released: emit only queues."""
        for category, event_type, resource_id in events:
            self.webhooks.emit(
                tenant_id,
                category,
                event_type,
                resource_id,
                occurred_at=self._changed_at(tenant_id, category, resource_id),
            )

    def _changed_at(self, tenant_id: str, category: str, resource_id: str) -> datetime | None:
        """The resource's UpdatedDateUTC as the change left it (a later change, made meanwhile, can only
        make it later): the time the event occurred."""
        with self.sandbox.lock:
            org = self.organisations.get(tenant_id)
            if org is None:
                return None
            store = {"INVOICE": org.invoices, "CONTACT": org.contacts}.get(category)
            resource = store.get(resource_id) if store is not None else None
            value = resource.get("UpdatedDateUTC") if resource else None
        return value if isinstance(value, datetime) else None

    # --- control API contract --------------------------------------------------------------------
    def snapshot(self) -> dict:
        with self.sandbox.lock:
            return {
                "organisations": [self._snapshot_org(org) for org in self.organisations.values()],
                "identity": self.identity.snapshot(),
                "webhooks": self.webhooks.snapshot(),
                "idempotency": self.idempotency.snapshot(),
            }

    def _snapshot_org(self, org: Organisation) -> dict:
        return {
            "tenant_id": org.id,
            "name": org.name,
            "base_currency": org.base_currency,
            "organisation": settings.render_organisation(org),
            "contacts": [contacts.render_contact(contact) for contact in org.contacts.values()],
            "invoices": [invoice_render.render_invoice(org, invoice) for invoice in org.invoices.values()],
            "credit_notes": [credit_notes.render_credit_note(org, note) for note in credit_notes.store(org).values()],
            "items": [items.render_item(item) for item in org.items.values()],
            "payments": [payments.render_payment(org, payment) for payment in org.payments.values()],
            "accounts": [settings.render_account(account) for account in org.accounts.values()],
            "tax_rates": [settings.render_tax_rate(rate) for rate in org.tax_rates.values()],
            "currencies": settings.currency_rows(org),
        }

    def fault_response(self, fault) -> Response:
        status = fault.status
        headers = {}
        if status == 429:
            # Short on purpose: an injected 429 should be waited out quickly by the client under test.
            headers = {"Retry-After": "1", "X-Rate-Limit-Problem": "minute"}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after))
        if fault.body is not None:
            return json_response(status, fault.body, headers)
        if status == 429:
            body = {"Title": "Too Many Requests", "Status": 429, "Detail": "Rate limit exceeded"}
        elif status == 400:
            body = api_error(10, "ValidationException", "A validation exception occurred")
        elif status == 404:
            return Response("The resource you're looking for cannot be found", status=404, mimetype="text/plain")
        elif status in (401, 403):
            body = problem(status, "AuthenticationUnsuccessful")
        elif status == 503:
            body = problem(503, "The Xero API is temporarily unavailable. Please try again shortly.")
        else:
            body = problem(
                status,
                "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current "
                "service status.",
            )
        return json_response(status, body, headers)
