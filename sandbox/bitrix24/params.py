"""Method parameters from a request, the way Bitrix24's PHP front end sees them.

JSON bodies keep their types. Form bodies and query strings use PHP brackets (`filter[>=ID]=5`,
`select[]=id`) and carry only strings; arrays whose keys are 0..n-1 become lists, as PHP's
json_encode would show them. `batch` command strings are parsed with the same rules.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from sandbox.bitrix24.world import B24Error

_NAME = re.compile(r"^([^\[]+)((?:\[[^\]]*\])*)(.*)$")
_SUBKEY = re.compile(r"\[([^\]]*)\]")


def parse_query(query: str) -> dict:
    """`a[b][]=1&a[b][]=2&c=3` -> {"a": {"b": ["1", "2"]}, "c": "3"}."""
    out: dict = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        _assign(out, name, value)
    return listify(out)


def parse_pairs(pairs: list[tuple[str, str]]) -> dict:
    out: dict = {}
    for name, value in pairs:
        _assign(out, name, value)
    return listify(out)


def _assign(out: dict, name: str, value: str) -> None:
    match = _NAME.match(name)
    if not match:
        return
    head, brackets, _trailing = match.groups()
    keys = [head] + _SUBKEY.findall(brackets)
    target: Any = out
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if key == "":
            # `x[]`: append with the next free integer key, as PHP does.
            key = str(sum(1 for k in target if str(k).isdigit()))
        if last:
            target[key] = value
        else:
            child = target.get(key)
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            target = child


def listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: listify(v) for k, v in value.items()}
        keys = list(converted)
        numeric = keys and all(isinstance(k, str) and k.isdigit() for k in keys)
        if numeric and sorted(int(k) for k in keys) == list(range(len(keys))):
            return [converted[str(i)] for i in range(len(keys))]
        return converted
    if isinstance(value, list):
        return [listify(v) for v in value]
    return value


def request_params(request) -> dict:
    """Query string and body merged (body wins). Malformed JSON is the caller's error, not a 500."""
    params = parse_pairs(list(request.args.items(multi=True)))
    raw = request.get_data(cache=True)
    content_type = (request.mimetype or "").lower()
    if content_type == "application/json" or (not content_type and raw.lstrip()[:1] in (b"{", b"[")):
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise B24Error(400, "INVALID_REQUEST", "Malformed JSON in the request body") from None
            if not isinstance(body, dict):
                raise B24Error(400, "INVALID_REQUEST", "The JSON body must be an object of parameters")
            params.update(body)
    elif request.form:
        params.update(parse_pairs(list(request.form.items(multi=True))))
    return params
