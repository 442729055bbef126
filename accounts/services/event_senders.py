"""Who an inbound delivery comes from, kept for a moment in the process: every delivery asks.

The portal a Bitrix24 event names (event_sender_verify) and the portals connected to the Xero
organisation a webhook names (xero_tenant_portals).

A burst brings hundreds of events a second from one portal, and each one's check (the stored
application_token against the delivered one) read the portal's row again: a round trip, the
decryption of the token and a model built, a fifth of a delivery's CPU (profiled). Here the row a
check read is kept for SENDER_KEPT_S seconds in the process (Django's local-memory cache: per
process, thread-safe, bounded in entries; a copy comes back each time, so no two requests share an
instance).

Only a row that matched a delivered token is kept, and a kept row never refuses: a token that does
not match the kept one is checked against the database again (a re-install's new token is accepted
at once). A portal saved or deleted in this process is forgotten at once (signals, registered in
accounts.apps); one changed by another process is seen within SENDER_KEPT_S. What that window can
let through is harmless: an event only asks for an invoice to be read with our own token, and the
worker checks the portal's state again before any work (sync.services.gate).

Xero's tenants are kept the same way, only when some portal is connected to them (a connection
made a moment ago is seen at once), and the row a webhook is stored with only says which portal's
inbox task takes it: the worker reads the tenant's portals again (sync.services.inbox).
"""

from __future__ import annotations

import hashlib

from django.core.cache.backends.locmem import LocMemCache
from django.db import connection

from accounts.errors import Unverified
from accounts.models import Portal, XeroConnection
from connector.rows import row_by
from integrations.bitrix24.inbound import application_token_matches

SENDER_KEPT_S = 2.0
# What an event's check and its handlers read; the other fields load when read.
EVENT_CHECK_FIELDS = ("member_id", "domain", "application_token", "status", "invoice_mode")

_kept = LocMemCache("accounts.event_senders", {"TIMEOUT": SENDER_KEPT_S, "OPTIONS": {"MAX_ENTRIES": 5000}})


def _key(member_id: str, kind: str = "portal") -> str:
    # A member_id or tenant id is whatever the delivery claims: hashed, so any text is a valid key.
    return f"{kind}:{hashlib.sha256(member_id.encode()).hexdigest()}"


def event_sender_verify(member_id: str, application_token: str) -> Portal:
    """The portal of this member_id when its stored application_token matches the delivered one
    (constant time); Unverified when there is no such portal, it has no token, or it does not match."""
    key = _key(member_id)
    kept = _kept.get(key)
    if kept is not None and application_token_matches(kept.application_token, application_token):
        return kept
    portal = row_by(Portal, "member_id", member_id, fields=EVENT_CHECK_FIELDS)
    if portal is None or not portal.application_token:
        raise Unverified("Unknown or uninstalled portal.")
    if not application_token_matches(portal.application_token, application_token):
        raise Unverified("application_token does not match.")
    _kept.set(key, portal)
    return portal


def event_sender_forget(member_id: str) -> None:
    """Drop what is kept of this portal (it was saved or deleted in this process)."""
    _kept.delete(_key(member_id))


def event_senders_forget_all() -> None:
    _kept.clear()


def xero_tenant_portals(tenant_ids: list[str]) -> list[tuple[str, int]]:
    """(tenant id, portal id) of the Xero connections of these tenants (lower-case ids), oldest
    connection first, in a plain SELECT when not kept (see connector.rows for why not the ORM)."""
    found: list[tuple[str, int]] = []
    unknown = []
    for tenant in tenant_ids:
        kept = _kept.get(_key(tenant, "tenant"))
        if kept is None:
            unknown.append(tenant)
        else:
            found += [(tenant, portal_id) for portal_id in kept]
    if unknown:
        read: dict[str, list[int]] = {}
        for tenant, portal_id in _tenant_rows(unknown):
            read.setdefault(tenant.lower(), []).append(portal_id)
        for tenant, portal_ids in read.items():
            _kept.set(_key(tenant, "tenant"), portal_ids)
            found += [(tenant, portal_id) for portal_id in portal_ids]
    return found


def xero_tenant_forget(tenant_id: str) -> None:
    _kept.delete(_key((tenant_id or "").lower(), "tenant"))


def _tenant_rows(tenant_ids: list[str]) -> list[tuple[str, int]]:
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('tenant_id')}, {quote('portal_id')} FROM {quote(XeroConnection._meta.db_table)} "
        f"WHERE {quote('tenant_id')} IN ({', '.join(['%s'] * len(tenant_ids))}) ORDER BY {quote('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, tenant_ids)
        return list(cursor.fetchall())
