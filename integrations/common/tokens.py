"""Single-flight OAuth refresh for Xero connections and Bitrix24 portals (style §B.6, xero-api.md §1.3).

Both providers rotate refresh tokens: each refresh returns a new refresh token and soon kills the
old one. If two workers refresh the same grant at once, each keeps a different new pair and the
loser's pair dies at the next rotation — the `invalid_grant` every forum complains about. So:

1. A token with more than `min_validity_s` left is used as is (no lock, no query).
2. Otherwise one worker at a time refreshes, under the Redis lock `oauth:refresh:<model>:<pk>`.
   After taking it we re-read the row: if the generation moved, a sibling refreshed and we use its
   pair.
3. The new pair is saved in ONE UPDATE guarded by `WHERE token_generation = <read generation>`
   before anyone uses it, so a lost response can never leave us using a pair the database lacks.
4. `invalid_grant` is re-checked once against the row (a sibling may have rotated); if it stands,
   the row is marked as needing re-authorisation and AuthorizationLostError ends the work. No retry
   loops on a dead grant.

Works for any model with the token fields of accounts.models.Portal and XeroConnection
(access_token, refresh_token, token_expires_at, token_generation, scope, status, status_reason).
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


class TokenHolder(Protocol):
    """What a credentials row offers the clients and this module: the token columns. accounts'
    Portal and XeroConnection implement it; integrations never import them (issue 17's layers).
    The row is saved through its own model (`type(row).objects`), compare-and-set on the
    generation."""

    # Declared by the row's model (class attributes), so this module never guesses by model name:
    # which API the grant is for, and the statuses meaning "working" and "the user must reconnect".
    token_system: ClassVar[str]
    token_status_active: ClassVar[str]
    token_status_lost: ClassVar[str]

    pk: Any
    access_token: str
    token_expires_at: datetime | None
    token_generation: int
    scope: str
    status: str
    status_reason: str


# A Portal or a XeroConnection: the row comes back as it went in.
TokenRow = TypeVar("TokenRow", bound=TokenHolder)

# The lock outlives a refresh: the token endpoint's timeout (5 s connect + 20 s read) plus saving.
REFRESH_LOCK_TTL_S = 60.0
# Callers queue behind a refresh in progress for this long before giving the job back to Celery.
REFRESH_LOCK_WAIT_S = 30.0

# Columns a provider's refresh answer may also update (TokenSet.extra); Bitrix24 sends its endpoints
# with every token. Anything else in `extra` is kept out of the database on purpose.
_EXTRA_FIELDS = {"client_endpoint", "server_endpoint", "domain", "xero_user_id", "auth_event_id"}


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str = ""
    extra: dict = field(default_factory=dict)


class InvalidGrantError(Exception):
    """The token endpoint answered invalid_grant: this refresh token is dead (or already rotated)."""


def _system_of(model: Any) -> str:
    return str(model.token_system)


def _lost_status(model: Any) -> str:
    return str(model.token_status_lost)


def _active_status(model: Any) -> str:
    return str(model.token_status_active)


def _is_fresh(row: Any, min_validity_s: float) -> bool:
    if not row.access_token or row.token_expires_at is None:
        return False
    return row.token_expires_at - timezone.now() > timedelta(seconds=min_validity_s)


def _lost(row: Any, reason: str, code: str = "invalid_grant") -> AuthorizationLostError:
    return AuthorizationLostError(
        f"The authorisation was lost and needs the user to reconnect: {reason}",
        system=_system_of(type(row)),
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

    Returns `instance` itself when nothing had to change, otherwise a fresh copy from the database.
    Raises AuthorizationLostError when the grant is dead, RetryableError when another worker holds
    the refresh lock for too long.
    """
    model: Any = type(instance)  # a Django model: saved through model.objects
    row: Any = instance
    seen = row.token_generation if seen_generation is None else seen_generation
    if row.status != _active_status(model):
        raise _lost(row, row.status_reason or f"status is {row.status}")
    if not force and _is_fresh(instance, min_validity_s):
        return instance

    name = f"oauth:refresh:{model._meta.label_lower}:{instance.pk}"
    try:
        with redis_lock(name, ttl_s=REFRESH_LOCK_TTL_S, wait_s=REFRESH_LOCK_WAIT_S):
            return _refresh_locked(model, instance.pk, refresh, force=force, seen=seen, min_validity_s=min_validity_s)
    except LockTimeout:
        raise RetryableError(
            "Another worker is refreshing this token and has not finished; try again shortly.",
            system=_system_of(model),
            code="refresh_in_progress",
            retry_after=5,
        ) from None


def _refresh_locked(
    model: Any,
    pk: int,
    refresh: Callable[[str], TokenSet],
    *,
    force: bool,
    seen: int,
    min_validity_s: float,
) -> Any:
    row = model.objects.get(pk=pk)
    if row.status != _active_status(model):
        raise _lost(row, row.status_reason or f"status is {row.status}")
    if row.token_generation != seen and (force or _is_fresh(row, min_validity_s)):
        metrics.count(metrics.TOKEN_REFRESHES, _system_of(model), "sibling")
        return row  # a sibling refreshed while we waited for the lock
    if not force and _is_fresh(row, min_validity_s):
        return row
    if not row.refresh_token:
        _mark_lost(row, "no refresh token is stored")
        raise _lost(row, "no refresh token is stored")

    system = _system_of(model)
    try:
        tokens = refresh(row.refresh_token)
    except InvalidGrantError as exc:
        # We hold the lock, but a flow outside it (a reconnect saving a new grant) may have rotated.
        again = model.objects.get(pk=pk)
        if again.token_generation != row.token_generation:
            metrics.count(metrics.TOKEN_REFRESHES, system, "sibling")
            return again
        metrics.count(metrics.TOKEN_REFRESHES, system, "lost")
        reason = f"the refresh token was rejected (invalid_grant{': ' + str(exc) if str(exc) else ''})"
        _mark_lost(row, reason)
        raise _lost(row, reason) from exc
    except Exception:
        metrics.count(metrics.TOKEN_REFRESHES, system, "error")
        raise

    updates = {
        "access_token": tokens.access_token,
        # Bitrix24 and Xero always rotate; should a provider not send one, the old one still stands.
        "refresh_token": tokens.refresh_token or row.refresh_token,
        "token_expires_at": tokens.expires_at,
        "token_generation": row.token_generation + 1,
    }
    if tokens.scope:
        updates["scope"] = tokens.scope
    concrete = {f.name for f in model._meta.concrete_fields}
    # Only values actually given: an answer without an endpoint must not blank the stored one.
    updates.update({k: v for k, v in tokens.extra.items() if k in _EXTRA_FIELDS and k in concrete and v})
    if "updated_at" in concrete:
        updates["updated_at"] = timezone.now()  # QuerySet.update() skips auto_now
    saved = model.objects.filter(pk=pk, token_generation=row.token_generation).update(**updates)
    metrics.count(metrics.TOKEN_REFRESHES, system, "refreshed" if saved else "sibling")
    if not saved:
        # Someone wrote a newer grant without the lock (a reconnect); theirs wins, ours is dropped.
        logger.warning("token refresh for %s %s lost the compare-and-set; using the newer row", model.__name__, pk)
    return model.objects.get(pk=pk)


def credentials_update(row: TokenHolder, **fields: Any) -> None:
    """Save non-token facts a client learned about its credentials row (Bitrix24's confirmed new
    address after a domain change), on the row and in the database: the one other write a client
    makes, kept here beside the token writes rather than in the client."""
    model: Any = type(row)
    model.objects.filter(pk=row.pk).update(**fields)
    for name, value in fields.items():
        setattr(row, name, value)


def token_mark_lost(instance: Any, reason: str, *, code: str = "disconnected") -> AuthorizationLostError:
    """Mark the row as needing the user to reconnect (unless a newer grant was saved meanwhile).

    Returns the AuthorizationLostError to raise, so call sites read `raise token_mark_lost(...)`.
    """
    _mark_lost(instance, reason)
    return _lost(instance, reason, code)


def _mark_lost(row: Any, reason: str) -> None:
    model = type(row)
    logger.warning("%s %s lost its authorisation: %s", model.__name__, row.pk, reason)
    # Guarded by the generation: a reconnect that saved a new grant meanwhile must not be undone.
    updates: dict[str, Any] = {"status": _lost_status(model), "status_reason": reason[:2000]}
    if "updated_at" in {f.name for f in model._meta.concrete_fields}:
        updates["updated_at"] = timezone.now()  # QuerySet.update() skips auto_now
    model.objects.filter(pk=row.pk, token_generation=row.token_generation).update(**updates)
