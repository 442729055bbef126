"""List filters, ordering and select as Bitrix24's list methods read them.

A filter key is an optional operator prefix and a field: `>=updatedTime`, `@id`, `%title`,
`!=stageId`. Values are compared by the field's kind (numbers as numbers, dates as instants), so
"2026-09-01T00:00:00+00:00" and "2026-09-01T03:00:00+03:00" select the same rows, as a day filter
`>=…T00:00:00+02:00` / `<` the next midnight does in api-reference/crm/universal/crm-item-list.md
(data-types.md: a `datetime` is YYYY-MM-DDThh:mm:ss±hh:mm). crm.item.list also takes nested groups
with "logic": "OR"; the classic lists (crm.company.list) do not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.bitrix24.values import parse_instant, to_float, to_int
from sandbox.bitrix24.world import B24Error

# Longest first, so "!=%" is not read as "!=" + "%field".
OPERATORS = ("!=%", "!%=", ">=", "<=", "=%", "%=", "!@", "!%", "!=", ">", "<", "@", "%", "=", "!")

# Field kinds: how values compare.
INT, FLOAT, STR, DATETIME, FLAG = "int", "float", "str", "datetime", "flag"

Predicate = Callable[[dict], bool]


def split_key(key: str) -> tuple[str, str]:
    for op in OPERATORS:
        if key.startswith(op):
            return op, key[len(op) :]
    return "=", key


def _invalid_value(field: str) -> B24Error:
    return B24Error(400, "INVALID_ARG_VALUE", f"Invalid filter: field '{field}' has invalid value")


def _coerce(kind: str, value: Any, field: str) -> Any:
    """A filter value in the field's comparable form; None stays None (matches empty fields)."""
    if value is None or value == "":
        return None
    try:
        if kind == INT:
            return to_int(value)
        if kind == FLOAT:
            return to_float(value)
        if kind == DATETIME:
            if not isinstance(value, str):
                raise ValueError(value)
            return parse_instant(value)
        if kind == FLAG:
            # Booleans filter as Y/N or 1/0 (docs: 1/0 for boolean user fields).
            return {"1": "Y", "0": "N", "true": "Y", "false": "N"}.get(str(value).lower(), str(value).upper())
    except ValueError:
        raise _invalid_value(field) from None
    if isinstance(value, (dict, list)):
        raise _invalid_value(field)
    return str(value)


def _row_value(kind: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        if kind == INT:
            return to_int(value)
        if kind == FLOAT:
            return to_float(value)
        if kind == DATETIME:
            return parse_instant(value)
    except ValueError:
        return None
    return str(value)


def _like(pattern: str) -> re.Pattern:
    """SQL LIKE with `%` (any run) and `_` (one character), case-insensitive like MySQL's collation."""
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


def _values(raw: Any) -> list:
    if isinstance(raw, dict):
        return list(raw.values())
    if isinstance(raw, list):
        return raw
    return [raw]


def _leaf(op: str, field: str, kind: str, raw: Any, get: Callable[[dict, str], Any]) -> Predicate:
    multiple = kind.endswith("[]")
    kind = kind.rstrip("[]")

    def row_values(row: dict) -> list:
        value = get(row, field)
        if multiple:
            return [_row_value(kind, v) for v in (value or [])] or [None]
        return [_row_value(kind, value)]

    if op in ("@", "!@") or (op in ("=", "!=", "!") and isinstance(raw, (list, dict))):
        wanted = {_coerce(kind, v, field) for v in _values(raw)}
        negate = op in ("!@", "!=", "!")
        return lambda row: any(v in wanted for v in row_values(row)) != negate

    if op in ("%", "!%", "=%", "%=", "!=%", "!%="):
        if isinstance(raw, (list, dict)):
            raise _invalid_value(field)
        text = "" if raw is None else str(raw)
        pattern = _like(f"%{text}%" if op in ("%", "!%") else text)
        negate = op.startswith("!")
        return lambda row: any(v is not None and bool(pattern.match(str(v))) for v in row_values(row)) != negate

    wanted = _coerce(kind, raw, field)
    if op in ("=", "!=", "!"):
        negate = op != "="
        return lambda row: (wanted in row_values(row)) != negate

    compare = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }[op]
    if wanted is None:
        raise _invalid_value(field)

    def ordered(row: dict) -> bool:
        for value in row_values(row):
            try:
                if value is not None and compare(value, wanted):
                    return True
            except TypeError:
                return False
        return False

    return ordered


def compile_filter(
    spec: Any,
    kinds: dict[str, str],
    get: Callable[[dict, str], Any] = lambda row, field: row.get(field),
    *,
    allow_logic: bool = True,
    unknown: str = "error",
) -> Predicate:
    """A predicate for rows. `kinds` maps each filterable field to INT/FLOAT/STR/DATETIME/FLAG
    (suffix "[]" for multiple fields). `unknown` is "error" (crm.item) or "ignore" (classic lists)."""
    if spec is None or spec == "" or spec == []:
        return lambda row: True
    if isinstance(spec, list):
        spec = {str(i): group for i, group in enumerate(spec)}
    if not isinstance(spec, dict):
        raise B24Error(400, "INVALID_ARG_VALUE", "Invalid filter: filter must be an object")
    logic = "AND"
    parts: list[Predicate] = []
    for key, raw in spec.items():
        key = str(key)
        if key.lower() == "logic":
            if not allow_logic:
                continue
            logic = str(raw).upper()
            if logic not in ("AND", "OR"):
                raise B24Error(400, "INVALID_ARG_VALUE", f"Invalid filter: unknown logic '{raw}'")
            continue
        if key.isdigit() and isinstance(raw, (dict, list)):
            if allow_logic:
                parts.append(compile_filter(raw, kinds, get, allow_logic=True, unknown=unknown))
            continue
        op, field = split_key(key)
        if field not in kinds:
            if unknown == "ignore":
                continue
            raise B24Error(400, "INVALID_ARG_VALUE", f"Invalid filter: field '{field}' is not allowed in filter")
        parts.append(_leaf(op, field, kinds[field], raw, get))
    if logic == "OR" and parts:
        return lambda row: any(p(row) for p in parts)
    return lambda row: all(p(row) for p in parts)


def sort_rows(
    rows: list[dict],
    order: Any,
    kinds: dict[str, str],
    get: Callable[[dict, str], Any] = lambda row, field: row.get(field),
    *,
    default: tuple[str, str] | None = None,
    unknown: str = "error",
) -> list[dict]:
    """Rows sorted by `order` ({field: "ASC"|"DESC"}, case-insensitive); empty values first when
    ascending, as MySQL sorts NULLs. Rows arrive in id order, so the default needs no sort."""
    if isinstance(order, list) or not order:
        order = {}
    if not isinstance(order, dict):
        raise B24Error(400, "INVALID_ARG_VALUE", "Invalid order: order must be an object")
    keys: list[tuple[str, bool]] = []
    for field, direction in order.items():
        if field not in kinds:
            if unknown == "ignore":
                continue
            raise B24Error(400, "INVALID_ARG_VALUE", f"Invalid order: field '{field}' is not allowed in order")
        direction = str(direction).upper()
        if direction not in ("ASC", "DESC"):
            raise B24Error(400, "INVALID_ARG_VALUE", f"Invalid order: direction '{direction}' of field '{field}'")
        keys.append((field, direction == "DESC"))
    if not keys:
        if default and default[1] == "DESC":
            return list(reversed(rows))
        return rows
    out = list(rows)
    for field, descending in reversed(keys):
        kind = kinds[field].rstrip("[]")

        def key(row, field=field, kind=kind):
            value = _row_value(kind, get(row, field))
            return (value is not None, value if value is not None else 0)

        try:
            out.sort(key=key, reverse=descending)
        except TypeError:
            out.sort(key=lambda row, field=field: str(get(row, field)), reverse=descending)
    return out


def select_fields(select: Any, all_fields: Iterable[str], *, always: Iterable[str] = ("id",)) -> list[str]:
    """The fields a list returns: "*" (or nothing) means all; names not known are skipped."""
    names = list(all_fields)
    if isinstance(select, str):
        select = [select]
    if isinstance(select, dict):
        select = list(select.values())
    if not select or "*" in select:
        return names
    wanted = set(always) | {str(s) for s in select}
    return [n for n in names if n in wanted]
