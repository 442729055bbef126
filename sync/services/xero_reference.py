"""A per-tenant cache of Xero's reference data: active accounts, tax rates, currencies.

The setup page's selects and the "Add New Product" page's account-code suggestions read it on every
request (the latter on every keystroke), so reading it never calls Xero while it is fresh: one
Redis GET of a small stamp, and the parsed data comes from a per-process memo keyed by that stamp.

Refresh (xero_reference_refresh): when the data is older than XERO_REFERENCE_MAX_AGE_S, or on
demand. Accounts are re-read with If-Modified-Since (minus an overlap, xero-api.md §2.4) and merged
by AccountID: changed ACTIVE accounts replace their entry, ones that became ARCHIVED/DELETED leave.
Once a day the chart is read in full, because a deleted account may simply stop being listed.
Tax rates and currencies have no If-Modified-Since and are small: read in full each time.
One refresh per tenant at a time (a Redis NX lock); others keep serving what is cached.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from accounts.models import Portal, XeroConnection
from connector.coordination import redis_client
from integrations.xero.client import XeroClient
from integrations.xero.types import Account, Currency, TaxRate

logger = logging.getLogger(__name__)

DEFAULT_MAX_AGE_S = 15 * 60
FULL_REFRESH_AGE_S = 24 * 3600
# UpdatedDateUTC has milliseconds, the header seconds: re-read a little before the newest we saw.
MODIFIED_OVERLAP = timedelta(seconds=2)
REFRESH_LOCK_S = 60
# Kept well past the refresh age: stale data still serves the selects while Xero is unreachable.
CACHE_TTL_S = 7 * 24 * 3600

REVENUE_TYPES = {"REVENUE", "SALES", "OTHERINCOME"}
BANK_TYPES = {"BANK"}

_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


class XeroNotConnected(Exception):
    """The portal has no usable Xero connection; the message says what to do."""

    def __init__(self, message: str = "Connect Xero first (on the app's home page).") -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ReferenceData:
    fetched_at: float = 0.0
    full_at: float = 0.0
    accounts_modified: str = ""  # ISO time of the newest UpdatedDateUTC seen
    accounts: dict[str, dict] = field(default_factory=dict)  # by AccountID
    tax_rates: list[dict] = field(default_factory=list)
    currencies: list[dict] = field(default_factory=list)
    # Derived once per stamp for the keystroke path: (code lower, name lower, revenue?, account dict).
    index: list[tuple[str, str, bool, dict]] = field(default_factory=list, repr=False)

    def to_json(self) -> str:
        return json.dumps(
            {
                "fetched_at": self.fetched_at,
                "full_at": self.full_at,
                "accounts_modified": self.accounts_modified,
                "accounts": self.accounts,
                "tax_rates": self.tax_rates,
                "currencies": self.currencies,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ReferenceData:
        data = json.loads(raw)
        out = cls(
            fetched_at=float(data.get("fetched_at") or 0),
            full_at=float(data.get("full_at") or 0),
            accounts_modified=data.get("accounts_modified") or "",
            accounts=data.get("accounts") or {},
            tax_rates=data.get("tax_rates") or [],
            currencies=data.get("currencies") or [],
        )
        out.build_index()
        return out

    def build_index(self) -> None:
        ordered = sorted(self.accounts.values(), key=lambda a: (a["type"] not in REVENUE_TYPES, a["code"], a["name"]))
        self.index = [(a["code"].lower(), a["name"].lower(), a["type"] in REVENUE_TYPES, a) for a in ordered]

    def stamp(self) -> str:
        return f"{self.fetched_at:.6f}"


# --- storage: Redis when there is one, else this process (the embedded single-process mode) ---------

_local_store: dict[str, bytes] = {}
_memo: dict[str, tuple[str, ReferenceData]] = {}
_memo_lock = threading.Lock()


def _keys(tenant_id: str) -> tuple[str, str, str]:
    base = f"sync:xero_ref:{tenant_id}"
    return f"{base}:data", f"{base}:stamp", f"{base}:lock"


def _store_get(key: str) -> bytes | None:
    client = redis_client()
    if client is None:
        return _local_store.get(key)
    return client.get(key)


def _store_save(tenant_id: str, data: ReferenceData) -> None:
    data_key, stamp_key, _ = _keys(tenant_id)
    payload = data.to_json().encode()
    client = redis_client()
    if client is None:
        _local_store[data_key], _local_store[stamp_key] = payload, data.stamp().encode()
        return
    # Data first, then the stamp readers check: a reader never sees a stamp without its data.
    pipe = client.pipeline(transaction=True)
    pipe.set(data_key, payload, ex=CACHE_TTL_S)
    pipe.set(stamp_key, data.stamp(), ex=CACHE_TTL_S)
    pipe.execute()


def _lock_take(tenant_id: str) -> bool:
    client = redis_client()
    if client is None:
        return True
    return bool(client.set(_keys(tenant_id)[2], "1", nx=True, ex=REFRESH_LOCK_S))


def _lock_release(tenant_id: str) -> None:
    client = redis_client()
    if client is not None:
        client.delete(_keys(tenant_id)[2])


def _cached(tenant_id: str) -> ReferenceData | None:
    """What is cached for the tenant, parsed at most once per process and stamp."""
    data_key, stamp_key, _ = _keys(tenant_id)
    raw_stamp = _store_get(stamp_key)
    if raw_stamp is None:
        return None
    stamp = raw_stamp.decode()
    with _memo_lock:
        hit = _memo.get(tenant_id)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    raw = _store_get(data_key)
    if raw is None:
        return None
    data = ReferenceData.from_json(raw)
    with _memo_lock:
        _memo[tenant_id] = (data.stamp(), data)
    return data


# --- reading from Xero ------------------------------------------------------------------------------


def _connection(portal: Portal) -> XeroConnection:
    connection = XeroConnection.objects.filter(portal=portal).first()
    if connection is None:
        raise XeroNotConnected("Xero is not connected yet. Connect it on the app's home page first.")
    if not connection.is_active:
        raise XeroNotConnected(
            f"The Xero connection is {connection.get_status_display().lower()}. Reconnect Xero on the app's home page."
        )
    return connection


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    match = _MS_DATE.match(str(value or ""))
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).isoformat()
    return ""


def _account(account: Account) -> dict:
    return {
        "id": account.account_id,
        "code": account.code,
        "name": account.name,
        "type": account.type,
        "status": account.status,
        "tax_type": account.tax_type,
        "payments_allowed": account.enable_payments_to_account,
        "updated": _iso(account.updated_date_utc),
    }


def _tax_rate(rate: TaxRate) -> dict:
    return {
        "tax_type": rate.tax_type,
        "name": rate.name,
        # A rate for the selects and the exactness check's label, not money (JSON has no Decimal).
        "rate": float(rate.effective_rate) if rate.effective_rate is not None else None,
        "revenue": rate.can_apply_to_revenue,
        "report_tax_type": rate.report_tax_type,
    }


def _currency(currency: Currency) -> dict:
    return {"code": currency.code, "description": currency.description}


def _fetch(connection: XeroConnection, current: ReferenceData | None, *, full: bool) -> ReferenceData:
    client = XeroClient(connection, interactive=True)
    now = time.time()
    data = ReferenceData(full_at=current.full_at if current else 0.0)
    incremental = (
        not full and current is not None and current.accounts_modified and now - current.full_at < FULL_REFRESH_AGE_S
    )
    if incremental:
        since = datetime.fromisoformat(current.accounts_modified) - MODIFIED_OVERLAP
        changed = client.accounts_list(modified_since=since)
        accounts = dict(current.accounts)
        for model in changed:
            account = _account(model)
            if account["status"] == "ACTIVE" and account["code"]:
                accounts[account["id"]] = account
            else:
                accounts.pop(account["id"], None)  # archived or deleted since: no longer offered
        newest = max([current.accounts_modified, *(_account(m)["updated"] for m in changed)])
    else:
        listed = client.accounts_list(active_only=True)
        # Accounts without a code (some bank accounts) cannot be put on an invoice line.
        accounts = {a["id"]: a for a in map(_account, listed) if a["code"]}
        newest = max((a["updated"] for a in accounts.values()), default="")
        data.full_at = now
    data.accounts = accounts
    data.accounts_modified = newest
    data.tax_rates = [_tax_rate(rate) for rate in client.tax_rates_list(active_only=True)]
    data.currencies = [_currency(currency) for currency in client.currencies_list()]
    data.fetched_at = now
    data.build_index()
    return data


def _max_age_s() -> float:
    return float(getattr(settings, "XERO_REFERENCE_MAX_AGE_S", DEFAULT_MAX_AGE_S))


def xero_reference_refresh(portal: Portal, *, full: bool = False) -> ReferenceData:
    """Read Xero now (incrementally unless `full`) and cache the result. If another refresh of the
    tenant is running, return what is cached instead of calling Xero a second time."""
    connection = _connection(portal)
    tenant_id = connection.tenant_id
    current = _cached(tenant_id)
    if not _lock_take(tenant_id):
        if current is not None:
            return current
        # Nothing to serve yet: wait for the sibling's first fill rather than doubling it.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.2)
            current = _cached(tenant_id)
            if current is not None:
                return current
    try:
        data = _fetch(connection, current, full=full)
        _store_save(tenant_id, data)
        with _memo_lock:
            _memo[tenant_id] = (data.stamp(), data)
        return data
    finally:
        _lock_release(tenant_id)


def xero_reference(portal: Portal) -> ReferenceData:
    """The cached data, refreshed first when missing or older than the max age."""
    connection = _connection(portal)
    current = _cached(connection.tenant_id)
    if current is not None and time.time() - current.fetched_at < _max_age_s():
        return current
    return xero_reference_refresh(portal)


def xero_accounts(portal: Portal) -> list[dict]:
    """Active accounts with a code, revenue accounts first, then by code."""
    return [entry[3] for entry in xero_reference(portal).index]


def xero_bank_accounts(portal: Portal) -> list[dict]:
    """Accounts a payment can be recorded to: bank accounts, and others Xero allows payments to."""
    return [a for a in xero_accounts(portal) if a["type"] in BANK_TYPES or a["payments_allowed"]]


def xero_tax_rates(portal: Portal) -> list[dict]:
    return list(xero_reference(portal).tax_rates)


def xero_currencies(portal: Portal) -> list[dict]:
    return list(xero_reference(portal).currencies)


def xero_accounts_suggest(*, portal: Portal, query: str, limit: int = 10) -> list[dict]:
    """Accounts whose code starts with `query` or whose name contains it (case-insensitive), revenue
    accounts first; within each group exact code, code prefix, then name matches. An empty query
    lists the first accounts (revenue first)."""
    q = (query or "").strip().lower()
    ranked: list[tuple[int, int, dict]] = []
    for position, (code, name, revenue, account) in enumerate(xero_reference(portal).index):
        if not q:
            rank = 3
        elif code == q:
            rank = 0
        elif code.startswith(q):
            rank = 1
        elif name.startswith(q):
            rank = 2
        elif q in name:
            rank = 3
        else:
            continue
        ranked.append(((0 if revenue else 1) * 10 + rank, position, account))
    ranked.sort(key=lambda row: (row[0], row[1]))
    return [{"code": a["code"], "name": a["name"], "type": a["type"]} for _, _, a in ranked[: max(0, limit)]]
