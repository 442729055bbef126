"""`batch`: up to 50 commands in one request, run in order, later ones reading earlier results
through `$result[key][field]...` (docs §2.3).

The answer's sections are PHP arrays serialised by json_encode: empty -> [], keys 0..n-1 -> a
JSON list, anything else -> an object. Clients that expect `{}` for "no errors" break here as
they would on a real portal.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import unquote

from sandbox.bitrix24.params import parse_query
from sandbox.bitrix24.values import to_yn
from sandbox.bitrix24.world import B24Error, Ctx, ListResult, rest_method

MAX_COMMANDS = 50
_REFERENCE = re.compile(r"\$(result|result_error|result_total|result_next|result_time)((?:\[[^\]]*\])+)")
_PART = re.compile(r"\[([^\]]*)\]")


def php_array(section: dict) -> Any:
    if not section:
        return []
    keys = list(section)
    if all(isinstance(k, int) for k in keys) and keys == list(range(len(keys))):
        return [section[k] for k in keys]
    return {str(k): v for k, v in section.items()}


def _lookup(sections: dict, kind: str, path: str) -> Any:
    """The value a reference names. A part that is not there ends the walk: the value reached so
    far (the nearest parent) is what the reference becomes, without an error, as on a real
    portal, which walks the path key by key and stops at the first missing one. So
    `$result[add][product][id]` against an answer `{"element": {...}}` gives the whole answer."""
    value: Any = sections[kind]
    for part in _PART.findall(path):
        if isinstance(value, dict):
            key = part if part in value else (int(part) if part.isdigit() and int(part) in value else None)
            if key is None:
                break
            value = value[key]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            break
    return value


def _php_string(value: Any) -> str:
    """How PHP turns the value into text inside a longer string: an array becomes "Array"."""
    if isinstance(value, (dict, list)):
        return "Array"
    if isinstance(value, bool):
        return "1" if value else ""
    return "" if value is None else str(value)


def _substitute(value: Any, sections: dict) -> Any:
    """Replace references in every string parameter. A parameter that is exactly one reference
    takes the referenced value as it is (a list stays a list); inside longer text it is written
    as PHP writes it."""
    if isinstance(value, dict):
        return {k: _substitute(v, sections) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, sections) for v in value]
    if not isinstance(value, str) or "$result" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:
        return _lookup(sections, whole.group(1), whole.group(2))
    return _REFERENCE.sub(lambda m: _php_string(_lookup(sections, m.group(1), m.group(2))), value)


def _command(raw: Any) -> tuple[str, dict]:
    if not isinstance(raw, str) or not raw.strip():
        raise B24Error(400, "ERROR_METHOD_NOT_FOUND", "Method not found!")
    method, _, query = raw.strip().partition("?")
    method = unquote(method).strip()
    if method.endswith(".json"):
        method = method[: -len(".json")]
    return method, parse_query(query)


@rest_method("batch")
def batch(ctx: Ctx, params: dict) -> Any:
    commands = params.get("cmd") or {}
    if isinstance(commands, list):
        items = list(enumerate(commands))
    elif isinstance(commands, dict):
        items = list(commands.items())
    else:
        raise B24Error(400, "INVALID_ARG_VALUE", "Parameter 'cmd' must be an array of commands")
    if len(items) > MAX_COMMANDS:
        raise B24Error(400, "ERROR_BATCH_LENGTH_EXCEEDED", f"Max batch length exceeded ({MAX_COMMANDS})")
    try:
        halt = to_yn(params.get("halt", 0)) == "Y"
    except ValueError:
        halt = False

    sections: dict[str, dict] = {
        k: {} for k in ("result", "result_error", "result_total", "result_next", "result_time")
    }
    world = ctx.world
    for key, raw in items:
        started = time.time()
        method = ""
        try:
            method, command_params = _command(raw)
            command_params.pop("auth", None)
            if method.lower() == "batch":
                raise B24Error(405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
            command_params = _substitute(command_params, sections)
            out: ListResult = world.call(ctx, method, command_params)
        except B24Error as error:
            sections["result_error"][key] = error.body()
            sections["result_time"][key] = _time(world, started, method)
            if halt:
                break
            continue
        sections["result"][key] = out.result
        if out.total is not None:
            sections["result_total"][key] = out.total
        if out.next is not None:
            sections["result_next"][key] = out.next
        sections["result_time"][key] = _time(world, started, method)
    return {name: php_array(section) for name, section in sections.items()}


def _time(world, started: float, method: str = "") -> dict:
    return world.time_block(started, method)
