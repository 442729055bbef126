"""The shared read path of list GETs: where, If-Modified-Since, order, and page/pageSize."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import request

from sandbox.xero.where import QueryError, Resolver, compile_order, compile_where
from sandbox.xero.wire import parse_if_modified_since

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def arg(name: str) -> str | None:
    """A query parameter by name, ignoring case (Xero's are case-insensitive)."""
    value = request.args.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in request.args.items():
        if key.lower() == wanted:
            return found
    return None


def csv_arg(name: str) -> list[str] | None:
    value = arg(name)
    if value is None or not value.strip():
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def int_arg(name: str) -> int | None:
    value = arg(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise QueryError(f"{name} must be a whole number") from exc


@dataclass
class Page:
    items: list
    pagination: dict | None


def select(
    items: Iterable[dict],
    *,
    fields: set[str],
    resolve: Resolver,
    paged: bool,
    extra: Callable[[dict], bool] | None = None,
) -> Page:
    """Filter, order and (where the endpoint pages) cut one page. Raises QueryError on bad input."""
    predicate = compile_where(arg("where"), fields, resolve)
    order = compile_order(arg("order"), fields, resolve)
    since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
    page_number = int_arg("page") if paged else None
    chosen = []
    for entity in items:
        # Inclusive at second precision: a record updated at 10:00:00.500 matches "10:00:00".
        if since is not None and (entity.get("UpdatedDateUTC") is None or entity["UpdatedDateUTC"] < since):
            continue
        if extra is not None and not extra(entity):
            continue
        if predicate is not None and not predicate(entity):
            continue
        chosen.append(entity)
    if order is not None:
        chosen = order(chosen)
    if page_number is None:
        return Page(chosen, None)
    size = int_arg("pageSize") or DEFAULT_PAGE_SIZE
    size = max(1, min(size, MAX_PAGE_SIZE))
    page_number = max(1, page_number)
    count = len(chosen)
    start = (page_number - 1) * size
    return Page(
        chosen[start : start + size],
        {"page": page_number, "pageSize": size, "pageCount": (count + size - 1) // size, "itemCount": count},
    )
