"""Xero's wire format: /Date()/ values, money rounding, query booleans, envelopes and error bodies.

Everything the handlers answer goes through these helpers so the shapes stay the same everywhere.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask import Response

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
PROVIDER_NAME = "Xero Sandbox"
CENT = Decimal("0.01")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MS_DATE = re.compile(r"^/Date\((?P<ms>-?\d+)(?P<tz>[+-]\d{4})?\)/$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def new_id() -> str:
    return str(uuid.uuid4())


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


def utc_now() -> datetime:
    """Real wall time with millisecond precision, as Xero stores UpdatedDateUTC."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --- dates ---------------------------------------------------------------------------------------
def ms_date(value: date | datetime | None) -> str | None:
    """A date (midnight UTC) or an instant as Xero's /Date(ms+0000)/."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    millis = (value - EPOCH) // timedelta(milliseconds=1)
    return f"/Date({millis}+0000)/"


def date_string(value: date | None) -> str | None:
    return None if value is None else f"{value.isoformat()}T00:00:00"


def instant_string(value: datetime | None) -> str | None:
    """The ISO companion of UpdatedDateUTC, e.g. 2019-11-14 18:10:38+00:00."""
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S+00:00")


def iso_utc(value: datetime) -> str:
    """Identity's createdDateUtc form: 7 fractional digits, no zone."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


def parse_date(value: object) -> date:
    """A date as Xero accepts it on writes: YYYY-MM-DD[THH:MM:SS] or /Date(ms[+hhmm])/."""
    if isinstance(value, str):
        match = _MS_DATE.match(value.strip())
        if match:
            instant = EPOCH + timedelta(milliseconds=int(match["ms"]))
            return instant.date()
        text = value.strip()
        try:
            return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a valid date")


def parse_if_modified_since(value: str | None) -> datetime | None:
    """The If-Modified-Since header, cut to whole seconds (Xero compares at second precision).

    Accepts what clients send: ISO (with or without zone, the SDK sends isoformat()) and HTTP dates.
    An unreadable value is ignored, like a plain HTTP server would.
    """
    if not value:
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


# --- numbers -------------------------------------------------------------------------------------
def to_decimal(value: object) -> Decimal:
    """A JSON number or numeric string as Decimal; ValueError for anything else (bools included)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a number") from exc
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return number


def round_money(value: Decimal, places: int = 2) -> Decimal:
    """Half-up rounding, as Xero rounds amounts and per-line tax."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def parse_bool(value: str | None, default: bool) -> bool:
    """Query booleans, case-insensitively: the SDK sends Python's True/False."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")


# --- bodies --------------------------------------------------------------------------------------
def json_response(status: int, body: object, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def without_nulls(value: object) -> object:
    """Xero leaves out fields it has no value for; the SDK cannot parse a null /Date()/ field."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def envelope(key: str, items: list, pagination: dict | None = None, warnings: list | None = None) -> dict:
    body = {
        "Id": new_id(),
        "Status": "OK",
        "ProviderName": PROVIDER_NAME,
        "DateTimeUTC": ms_date(utc_now()).replace("+0000", ""),
    }
    if pagination is not None:
        body["pagination"] = pagination
    if warnings:
        body["Warnings"] = warnings
    body[key] = without_nulls(items)
    return body


def validation_exception(elements: list[dict]) -> dict:
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": without_nulls(elements),
    }


def api_error(number: int, kind: str, message: str) -> dict:
    return {"ErrorNumber": number, "Type": kind, "Message": message}


def no_data(entity: str) -> dict:
    return api_error(
        17,
        "NoDataProcessedException",
        f"No data has been processed for this endpoint. This endpoint is expecting {entity} data to be specifed "
        "in the request body.",
    )


def problem(status: int, detail: str) -> dict:
    """The problem-details body of 401/403 (and 5xx) answers."""
    titles = {401: "Unauthorized", 403: "Forbidden", 500: "An error occurred", 503: "Service Unavailable"}
    return {
        "Type": None,
        "Title": titles.get(status, "Error"),
        "Status": status,
        "Detail": detail,
        "Instance": new_id(),
        "Extensions": {},
    }


def validation_errors(messages: list[str]) -> list[dict]:
    return [{"Message": message} for message in messages]
