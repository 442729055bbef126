"""Reading Bitrix24's official REST documentation (../shared/spec/bitrix24/, from bitrix24/b24restdocs)
for its own request and response examples, and comparing JSON shapes.

The pages are read where they are (never copied into the project); a test that needs one skips with
a message naming the missing file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "bitrix24"

_FENCE = re.compile(r"```(?:json|http|bash|js|javascript)?\s*\n(.*?)```", re.S)
_CURL_DATA = re.compile(r"-d\s+'(\{.*?\})'\s*\\?\s*\n", re.S)
ISO_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


def page(relative: str) -> str:
    path = DOCS / relative
    if not path.is_file():
        pytest.skip(
            f"Bitrix24's documentation page {relative} is not at {path}: put bitrix24/b24restdocs' pages in "
            "shared/spec/bitrix24/ beside the checkout to run the contract tests (the project keeps no copy)."
        )
    return path.read_text(encoding="utf-8")


def _loads(text: str) -> Any:
    return json.loads(text.replace("\\/", "/"))


def documented_request(relative: str) -> dict:
    """The params of the page's cURL (OAuth) example (its `auth` dropped)."""
    text = page(relative)
    for match in _CURL_DATA.finditer(text):
        try:
            body = _loads(match.group(1))
        except ValueError:
            continue
        body.pop("auth", None)
        return body
    return {}


def documented_responses(relative: str) -> list[dict]:
    """Every JSON answer of the page's response section(s) that carries `result` (errors excluded)."""
    text = page(relative)
    out = []
    for section in re.split(r"\n## ", text):
        if not section.lower().startswith("response"):
            continue
        for block in _FENCE.findall(section):
            try:
                body = _loads(block)
            except ValueError:
                continue
            if isinstance(body, dict) and "result" not in body and "time" in body and "error" not in body:
                # Some pages (catalog lists) leave out the `result` wrapper their own tables describe.
                body = {"result": {k: v for k, v in body.items() if k not in ("total", "time")}, **body}
                body = {k: v for k, v in body.items() if k == "result" or k in ("total", "time")}
            if isinstance(body, dict) and "result" in body:
                out.append(body)
    return out


def documented_event(relative: str) -> list[dict]:
    """The JSON payload examples of an event page (what the handler receives)."""
    text = page(relative)
    out = []
    for block in _FENCE.findall(text):
        try:
            body = _loads(block)
        except ValueError:
            continue
        if isinstance(body, dict) and "event" in {k.lower() for k in body}:
            out.append(body)
    return out


# --- shapes ------------------------------------------------------------------------------------------
def kind(value: Any) -> str:
    """The type of a JSON value as a client must read it: numbers vs strings, Y/N flags, dates."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        if value in ("Y", "N"):
            return "Y/N"
        if ISO_DATETIME.match(value):
            return "datetime"
        if ISO_DATE.match(value):
            return "date"
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def shape_differences(documented: Any, ours: Any, where: str = "result") -> tuple[list[str], list[str]]:
    """(differences, keys the documentation shows that ours lacks).

    A difference is a container where the docs have a scalar (or the other way round), or a scalar of
    another kind ("5" for 5, "Y" for true, a date written otherwise). null on either side is no
    difference (fields are often empty). Lists are compared element by element against the docs'
    first element; objects key by key for the keys both have; empty strings are compatible with
    every string-like kind.
    """
    diffs: list[str] = []
    missing: list[str] = []
    a, b = kind(documented), kind(ours)
    if "null" in (a, b):
        return diffs, missing
    if a == "object" and b == "object":
        if _is_map(documented) and _is_map(ours):  # keyed by id: compare the values' shapes
            sample = next(iter(documented.values()))
            for key, value in ours.items():
                d, m = shape_differences(sample, value, f"{where}[{key}]")
                diffs += d
                missing += m
            return diffs, missing
        for key, value in documented.items():
            if key not in ours:
                missing.append(f"{where}.{key}")
                continue
            d, m = shape_differences(value, ours[key], f"{where}.{key}")
            diffs += d
            missing += m
        return diffs, missing
    if a == "list" and b == "list":
        if documented and ours:
            for index, item in enumerate(ours[:3]):
                d, m = shape_differences(documented[0], item, f"{where}[{index}]")
                diffs += d
                missing += m
        return diffs, missing
    string_like = {"string", "Y/N", "datetime", "date"}
    if a != b and not (a in string_like and b in string_like and "" in (documented, ours)):
        diffs.append(f"{where}: documented {a} {documented!r:.60}, sandbox {b} {ours!r:.60}")
    return diffs, missing


def _is_map(value: dict) -> bool:
    return bool(value) and all(re.fullmatch(r"-?\d+", str(k)) for k in value)
