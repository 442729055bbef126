"""Typed commands: one Bitrix24 REST method with its params and the parser of its answer.

A command does no I/O. `Bitrix24Api` runs it as one call, or several in one `batch` request
(the call count of a batch is one HTTP request however many commands it carries, which is why the
sync code composes batches out of commands rather than calling named methods one by one). The
parser turns the wire answer into the area's frozen dataclasses, so a caller never sees a method
name, a parameter shape or a field's casing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, eq=False)  # compared by identity: a batch outcome is looked up by command
class Command(Generic[T]):
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    parse: Callable[[Any], T] = _identity
    # Where the rows of a list method's answer sit ({"items": [...]}), for paging; None for a plain
    # array or a non-list method.
    list_key: str | None = None
    # The order/filter field of the `>id` paging of this list method (crm.item.* camelCase `id`).
    id_field: str = "ID"

    def wire(self) -> tuple[str, Mapping[str, Any]]:
        return self.method, self.params

    def at(self, start: int) -> Command[T]:
        """The same list command for the page at offset `start`."""
        return replace(self, params={**self.params, "start": start})


R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class ListCommand(Command[list[R]]):
    """A list method: `parse` reads one page, `parse_row` one row (for Bitrix24Api.list_all, which
    pages through every row)."""

    parse_row: Callable[[dict[str, Any]], R] = _identity


def list_command(
    method: str,
    params: Mapping[str, Any],
    row: Callable[[dict[str, Any]], R],
    *,
    list_key: str | None = None,
    id_field: str = "ID",
) -> ListCommand[R]:
    def page(result: Any) -> list[R]:
        return [row(r) for r in rows_of(result, list_key)]

    return ListCommand(method, params, page, list_key, id_field, row)


def ref(key: str, *path: str | int) -> str:
    """A `$result[key][...]` reference to an earlier command of the same batch (Bitrix24
    substitutes it before running the later command)."""
    return f"$result[{key}]" + "".join(f"[{p}]" for p in path)


def rows_of(result: Any, key: str | None) -> list[dict[str, Any]]:
    """The rows of a list answer: a plain array, or wrapped ({"items": [...]}); an empty PHP array
    may arrive as {} or []."""
    if key is not None:
        result = result.get(key) if isinstance(result, dict) else None
    elif isinstance(result, dict) and len(result) == 1:
        result = next(iter(result.values()))
    if isinstance(result, dict):
        return [] if not result else [r for r in result.values() if isinstance(r, dict)]
    return [r for r in result or [] if isinstance(r, dict)] if isinstance(result, list) else []


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_decimal(value: Any) -> Decimal | None:
    """Money and quantities exactly as Bitrix24 wrote them (it sends numbers or numeric strings)."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def as_str(value: Any) -> str:
    return "" if value is None else str(value)


def yes(value: Any) -> bool:
    """Bitrix24's booleans: true/false, "Y"/"N", 1/0 (older gateways answer either)."""
    return value in (True, "Y", "y", 1, "1", "true")
