"""PHP-style query encoding of nested parameters, for the command strings of a `batch` call.

Bitrix24 parses each batch command with PHP's parse_str, so nested params become bracketed keys:
{"filter": {">=updatedTime": "2026-01-01"}} -> "filter[%3E%3DupdatedTime]=2026-01-01". Brackets
stay literal (as in the docs' examples); key names and values are percent-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote


def _scalar(value: Any) -> str:
    # PHP's http_build_query sends booleans as 1/0; Bitrix24's "Y"/"N" fields are plain strings.
    if value is True:
        return "1"
    if value is False:
        return "0"
    return str(value)


def _value(value: Any) -> str:
    # `$result[cmd][0][ID]` references to earlier commands must reach Bitrix24's batch
    # substitution unchanged; `$`, `[` and `]` are literal in a PHP query value, so keeping them
    # unencoded changes nothing for ordinary values.
    return quote(_scalar(value), safe="$[]")


def _pairs(prefix: str, value: Any) -> list[str]:
    if value is None:
        return []  # as http_build_query: a null parameter is not sent
    if isinstance(value, Mapping):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    else:
        return [f"{prefix}={_value(value)}"]
    if not items:
        # http_build_query drops an empty array, which would turn `filter[@id]=[]` ("none of
        # these") into no filter at all ("everything"). Send an empty value instead: it still
        # matches nothing.
        return [f"{prefix}="]
    out: list[str] = []
    for key, sub in items:
        out.extend(_pairs(f"{prefix}[{quote(str(key), safe='')}]", sub))
    return out


def php_query(params: Mapping[str, Any] | None) -> str:
    """Encode params the way PHP's http_build_query would (see the module docstring)."""
    out: list[str] = []
    for key, value in (params or {}).items():
        out.extend(_pairs(quote(str(key), safe=""), value))
    return "&".join(out)


def batch_command(method: str, params: Mapping[str, Any] | None = None) -> str:
    """One batch `cmd` entry: "crm.item.get?entityTypeId=31&id=5"."""
    query = php_query(params)
    return f"{method}?{query}" if query else method
