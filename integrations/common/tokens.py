"""Single-flight OAuth refresh for Xero connections and Bitrix24 portals (style §B.6, xero-api.md §1.3).

Both providers rotate refresh tokens: each refresh returns a new refresh token and soon kills the
old one. If two workers refresh the same grant at once, each keeps a different new pair and the
loser's pair dies at the next rotation — the `invalid_grant` every forum complains about. So:

1. A token with more than `min_validity_s` left is used as is (no lock, no query).
2. Otherwise one worker at a time refreshes, under the Redis lock `oauth:refresh:<grant>`.
   After taking it we re-read the row: if the generation moved, a sibling refreshed and we use its
   pair.
3. The new pair is saved in ONE compare-and-set on the generation (`WHERE token_generation = <read
   generation>`) before anyone uses it, so a lost response can never leave us using a pair the
   database lacks, and a stale refresh never overwrites a newer grant.
4. `invalid_grant` is re-checked once against the row (a sibling may have rotated); if it stands,
   the row is marked as needing re-authorisation and AuthorizationLostError ends the work. No retry
   loops on a dead grant.

This module never writes a row itself: the credentials (TokenHolder) hand it their TokenStore,
which accounts implements (accounts/token_store.py) and which does each write as that
compare-and-set. The clients (integrations.xero, integrations.bitrix24) write nothing else either;
the one non-token fact a client learns (Bitrix24's confirmed new address) goes through
`credentials_update`, i.e. the same store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, TypeVar

from django.utils import timezone

from connector import metrics
from integrations.common.errors import AuthorizationLostError, RetryableError
from integrations.common.locks import LockTimeout, redis_lock

logger = logging.getLogger(__name__)

StoredRow = TypeVar("StoredRow", covariant=True)


class TokenHolder(Protocol):
    """What a credentials row offers the clients and this module: the token columns, and the store
    that persists them. accounts' Portal and XeroConnection implement it; integrations never
    import them (issue 17's layers)."""

    # Declared by the row's model (class attributes), so this module never guesses by model name:
    # which API the grant is for, and the statuses meaning "working" and "the user must reconnect".
    token_system: ClassVar[str]
    token_status_active: ClassVar[str]
    token_status_lost: ClassVar[str]

    access_token: str
    refresh_token: str
    token_expires_at: datetime | None
    token_generation: int
    scope: str
    status: str
    status_reason: str

    def token_store(self) -> TokenStore[Any]: ...


class TokenStore(Protocol[StoredRow]):
    """Where one grant's token state is kept (accounts/token_store.py). Every write is a
    compare-and-set on `token_generation`: a writer that read an older generation changes nothing."""

    @property
    def lock_key(self) -> str:
        """Names the grant for the refresh lock (stable across processes), e.g. "accounts.portal:7"."""
        ...

    def load(self) -> StoredRow:
        """A fresh copy of the row as stored now."""
        ...

    def save_refreshed(self, *, generation: int, tokens: TokenSet, refresh_token: str) -> bool:
        """Store `tokens` as generation + 1 if the stored generation is still `generation`
        (`refresh_token` is kept when the provider sent none); whether it was saved."""
        ...

    def mark_lost(self, *, generation: int, reason: str) -> bool:
        """Mark the grant as needing the user to reconnect, if still at `generation`."""
        ...

    def save_facts(self, **fields: str) -> None:
        """Save what a client learned about the credentials (Bitrix24's confirmed new address)."""
        ...


# A Portal or a XeroConnection: the row comes back as it went in.
TokenRow = TypeVar("TokenRow", bound=TokenHolder)

# The lock outlives a refresh: the token endpoint's timeout (5 s connect + 20 s read) plus saving.
REFRESH_LOCK_TTL_S = 60.0
# Callers queue behind a refresh in progress for this long before giving the job back to Celery.
REFRESH_LOCK_WAIT_S = 30.0


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str = ""
    # What else the provider said with the tokens (Bitrix24: its endpoints and domain; Xero: the
    # user and consent). The store decides which of it is kept (accounts/token_store.py).
    extra: dict = field(default_factory=dict)


class InvalidGrantError(Exception):
    """The token endpoint answered invalid_grant: this refresh token is dead (or already rotated)."""


def _is_fresh(row: TokenHolder, min_validity_s: float) -> bool:
    if not row.access_token or row.token_expires_at is None:
        return False
    return row.token_expires_at - timezone.now() > timedelta(seconds=min_validity_s)


def _is_active(row: TokenHolder) -> bool:
    return row.status == row.token_status_active


def _lost(row: TokenHolder, reason: str, code: str = "invalid_grant") -> AuthorizationLostError:
    return AuthorizationLostError(
        f"The authorisation was lost and needs the user to reconnect: {reason}",
        system=row.token_system,
        code=code,
    )


def token_ensure_fresh(
    instance: TokenRow,
    refresh: Callable[[str], TokenSet],
    *,
    force: bool = False,
    min_validity_s: float = 120,
    seen_generation: int | None = None,
) -> TokenRow:
    """Return the row with an access token valid for at least `min_validity_s` more seconds.

    `refresh(refresh_token) -> TokenSet` calls the provider; it raises InvalidGrantError for a dead
    grant and RetryableError for a network/5xx failure (which simply propagates). `force=True` is for
    "the API answered 401 although the token looked valid": it refreshes unless the generation has
    moved past `seen_generation` (default: the instance's), i.e. unless a sibling already did.

    Returns `instance` itself when nothing had to change, otherwise a fresh copy from the store.
    Raises AuthorizationLostError when the grant is dead, RetryableError when another worker holds
    the refresh lock for too long.
    """
    seen = instance.token_generation if seen_generation is None else seen_generation
    if not force and _is_fresh(instance, min_validity_s) and _is_active(instance):
        return instance
    store = instance.token_store()
    if not _is_active(instance):
        # The copy in hand may be older than the row (a reconnect saved since it was read): the
        # stored status decides, not a stale one.
        current = store.load()
        if not _is_active(current):
            raise _lost(current, current.status_reason or f"status is {current.status}")
        if not force and _is_fresh(current, min_validity_s):
            return current
    try:
        with redis_lock(f"oauth:refresh:{store.lock_key}", ttl_s=REFRESH_LOCK_TTL_S, wait_s=REFRESH_LOCK_WAIT_S):
            return _refresh_locked(store, refresh, force=force, seen=seen, min_validity_s=min_validity_s)
    except LockTimeout:
        raise RetryableError(
            "Another worker is refreshing this token and has not finished; try again shortly.",
            system=instance.token_system,
            code="refresh_in_progress",
            retry_after=5,
        ) from None


def _refresh_locked(
    store: TokenStore[Any],
    refresh: Callable[[str], TokenSet],
    *,
    force: bool,
    seen: int,
    min_validity_s: float,
) -> Any:
    row = store.load()
    system = row.token_system
    if not _is_active(row):
        raise _lost(row, row.status_reason or f"status is {row.status}")
    if row.token_generation != seen and (force or _is_fresh(row, min_validity_s)):
        metrics.count(metrics.TOKEN_REFRESHES, system, "sibling")
        return row  # a sibling refreshed while we waited for the lock
    if not force and _is_fresh(row, min_validity_s):
        return row
    if not row.refresh_token:
        _mark_lost(store, row, "no refresh token is stored")
        raise _lost(row, "no refresh token is stored")

    try:
        tokens = refresh(row.refresh_token)
    except InvalidGrantError as exc:
        # We hold the lock, but a flow outside it (a reconnect saving a new grant) may have rotated.
        again = store.load()
        if again.token_generation != row.token_generation:
            metrics.count(metrics.TOKEN_REFRESHES, system, "sibling")
            return again
        metrics.count(metrics.TOKEN_REFRESHES, system, "lost")
        reason = f"the refresh token was rejected (invalid_grant{': ' + str(exc) if str(exc) else ''})"
        _mark_lost(store, row, reason)
        raise _lost(row, reason) from exc
    except Exception:
        metrics.count(metrics.TOKEN_REFRESHES, system, "error")
        raise

    # Bitrix24 and Xero always rotate; should a provider not send one, the old one still stands.
    saved = store.save_refreshed(generation=row.token_generation, tokens=tokens, refresh_token=row.refresh_token)
    metrics.count(metrics.TOKEN_REFRESHES, system, "refreshed" if saved else "sibling")
    if not saved:
        # Someone wrote a newer grant without the lock (a reconnect); theirs wins, ours is dropped.
        logger.warning("token refresh for %s lost the compare-and-set; using the newer row", store.lock_key)
    return store.load()


def credentials_update(row: TokenHolder, **fields: str) -> None:
    """Save non-token facts a client learned about its credentials (Bitrix24's confirmed new address
    after a domain change) through the row's store, and on the row in hand."""
    row.token_store().save_facts(**fields)
    for name, value in fields.items():
        setattr(row, name, value)


def token_mark_lost(instance: TokenHolder, reason: str, *, code: str = "disconnected") -> AuthorizationLostError:
    """Mark the row as needing the user to reconnect (unless a newer grant was saved meanwhile).

    Returns the AuthorizationLostError to raise, so call sites read `raise token_mark_lost(...)`.
    """
    _mark_lost(instance.token_store(), instance, reason)
    return _lost(instance, reason, code)


def _mark_lost(store: TokenStore[Any], row: TokenHolder, reason: str) -> None:
    logger.warning("%s lost its authorisation: %s", store.lock_key, reason)
    # Guarded by the generation: a reconnect that saved a new grant meanwhile must not be undone.
    store.mark_lost(generation=row.token_generation, reason=reason)
