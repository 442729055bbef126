"""The token store the API clients persist credentials through (integrations.common.tokens.TokenStore).

The clients and the single-flight refresh never write a model: a Portal or XeroConnection hands
them `row.token_store()`, and every write goes through here, each one UPDATE guarded by the
generation the writer read (compare-and-set), so a refresh that read an older generation — or a
"lost" mark made on a stale copy — never overwrites a grant saved meanwhile (a reconnect, a
sibling's refresh).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from django.db import models
from django.utils import timezone

from integrations.common.tokens import TokenSet

Row = TypeVar("Row", bound=models.Model)

# What a refresh answer may update besides the tokens (TokenSet.extra), where the row has the column:
# Bitrix24 sends its endpoints and domain with every token; Xero's claims name the user and consent.
# Anything else in `extra` (an id_token, say) is kept out of the database on purpose.
REFRESH_EXTRA_FIELDS = frozenset({"client_endpoint", "server_endpoint", "domain", "xero_user_id", "auth_event_id"})
# What a client may report about its credentials outside a refresh: Bitrix24's confirmed new
# address after a domain change. Tokens and statuses only ever change through the guarded writes.
FACT_FIELDS = frozenset({"domain", "client_endpoint", "server_endpoint"})


class ModelTokenStore(Generic[Row]):
    """The store of one Portal or XeroConnection row (by model and primary key)."""

    def __init__(self, row: Row) -> None:
        self._model: type[Row] = type(row)
        self._pk = row.pk
        self._columns = {f.name for f in self._model._meta.concrete_fields}

    @property
    def lock_key(self) -> str:
        return f"{self._model._meta.label_lower}:{self._pk}"

    def load(self) -> Row:
        return self._model._default_manager.get(pk=self._pk)

    def save_refreshed(self, *, generation: int, tokens: TokenSet, refresh_token: str) -> bool:
        updates: dict[str, Any] = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token or refresh_token,
            "token_expires_at": tokens.expires_at,
            "token_generation": generation + 1,
        }
        if tokens.scope:
            updates["scope"] = tokens.scope
        # Only values actually given: an answer without an endpoint must not blank the stored one.
        updates.update(
            {k: v for k, v in tokens.extra.items() if k in REFRESH_EXTRA_FIELDS and k in self._columns and v}
        )
        return self._guarded_update(generation, updates)

    def mark_lost(self, *, generation: int, reason: str) -> bool:
        lost = self._model.token_status_lost  # type: ignore[attr-defined]
        return self._guarded_update(generation, {"status": lost, "status_reason": reason[:2000]})

    def save_facts(self, **fields: str) -> None:
        unknown = set(fields) - (FACT_FIELDS & self._columns)
        if unknown:
            raise ValueError(f"{self._model.__name__} facts a client may not write: {sorted(unknown)}")
        self._model._default_manager.filter(pk=self._pk).update(**self._stamped(fields))

    def _guarded_update(self, generation: int, updates: dict[str, Any]) -> bool:
        saved = self._model._default_manager.filter(pk=self._pk, token_generation=generation).update(
            **self._stamped(updates)
        )
        return bool(saved)

    def _stamped(self, updates: dict[str, Any]) -> dict[str, Any]:
        if "updated_at" in self._columns:
            return {**updates, "updated_at": timezone.now()}  # QuerySet.update() skips auto_now
        return updates
