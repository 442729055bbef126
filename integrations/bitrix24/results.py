"""What the Bitrix24 client hands back: one call's answer, a batch's per-command outcome, and the
rows of a list answer (plain or wrapped) with the helpers of paging by id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from integrations.bitrix24.errors import SYSTEM
from integrations.common.errors import ExternalAPIError, PermanentError

PAGE_SIZE = 50
BATCH_LIMIT = 50


@dataclass(frozen=True)
class Bitrix24Response:
    result: Any
    total: int | None = None
    next: int | None = None
    time: dict = field(default_factory=dict)


@dataclass
class BatchResult:
    """Per-command outcome of one or more `batch` calls. A command that failed is in `errors`
    (classified like a whole call); one that did not run (halt) is in neither."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, ExternalAPIError] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    nexts: dict[str, int] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """The result of one command, raising its error if it failed."""
        if key in self.errors:
            raise self.errors[key]
        if key not in self.results:
            raise KeyError(f"batch command {key!r} did not run")
        return self.results[key]

    def merge(self, other: BatchResult) -> None:
        self.results.update(other.results)
        self.errors.update(other.errors)
        self.totals.update(other.totals)
        self.nexts.update(other.nexts)


def _section(raw: Any) -> dict[str, Any]:
    # Bitrix24 serialises an empty section as [] and sequential numeric keys as a JSON array.
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, list):
        return {str(i): v for i, v in enumerate(raw)}
    return {}


def _rows(result: Any, key: str | None) -> list[dict]:
    """The rows of a list method's result: a plain array, or wrapped ({"items": [...]},
    {"productRows": [...]})."""
    if key is not None:
        result = result.get(key) if isinstance(result, dict) else None
    elif isinstance(result, dict) and len(result) == 1:
        result = next(iter(result.values()))
    if isinstance(result, dict) and not result:
        return []  # an empty PHP array may arrive as {}
    if not isinstance(result, list):
        raise PermanentError("not a list result; pass key= to name the list inside it", system=SYSTEM)
    return result


def _wrapper_key(result: Any, key: str | None) -> str | None:
    if key is not None:
        return key
    if isinstance(result, dict) and len(result) == 1:
        return next(iter(result))
    return None


def _id_of(row: Mapping[str, Any], id_key: str) -> int:
    try:
        return int(row[id_key])
    except (KeyError, TypeError, ValueError):
        raise PermanentError(f"list row has no integer {id_key!r}", system=SYSTEM) from None
