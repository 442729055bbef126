"""Secrets never reach a log line, a sync log entry or a job error.

`redact(text)` replaces every secret it recognises with "[redacted]":
- the values of parameters that carry one, however they are written: `client_secret=…` in a URL
  (an unreachable OAuth server puts its whole URL in the error), `"refresh_token": "…"` in JSON or a
  repr, `auth[access_token]=…` in an event form, `ft=…` (frame tokens) in an access-log line;
- `Bearer …` / `Basic …` credentials;
- the configured secrets themselves (client secrets, the webhook key, SECRET_KEY, the encryption
  key), wherever they appear.

`RedactSecretsFilter` applies it to log records. It sits on the handlers of Django's LOGGING, and
its first use also installs it as the record factory, so records of every logger in the process are
redacted when they are made, including those of handlers configured outside Django (Celery's
worker log, gunicorn's access log). Tracebacks are redacted too: exception messages are where URLs
with secrets in them end up.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

# Parameter names whose values are secrets (case-insensitive), in every spelling we meet.
SECRET_NAMES = (
    "client_secret",
    "access_token",
    "refresh_token",
    "id_token",
    "application_token",
    "auth_id",
    "refresh_id",
    "auth",
    "ft",
    "frame_token",
    "token",
    "password",
    "webhook_key",
    "secret",
    "x-xero-signature",
)
_NAMES = "|".join(re.escape(n) for n in sorted(SECRET_NAMES, key=len, reverse=True))
# name=value in URLs, forms and plain text; `auth[access_token]=`, `auth%5Baccess_token%5D=` too.
_PARAM = re.compile(
    rf"(?i)((?:^|(?<=[?&\s,;(\[{{\"'])|(?<=%5B)|(?<=\[))(?:{_NAMES})(?:\]|%5D)?\s*=\s*)(?!\[redacted\])([^&\s,;)\]}}\"']+)"
)
# An OAuth authorization code, only in a query string: "code" alone is too common a word.
_URL_CODE = re.compile(r"(?i)([?&]code=)(?!\[redacted\])([^&\s\"']+)")
# "name": "value" / 'name': 'value' in JSON and Python reprs.
_QUOTED = re.compile(rf"(?i)([\"'](?:auth\[)?(?:{_NAMES})\]?[\"']\s*:\s*[\"'])(?!\[redacted\])([^\"']+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}")
_MIN_LITERAL = 8  # shorter configured values would redact ordinary words


def _configured_secrets() -> list[str]:
    try:
        from django.conf import settings

        names = (
            "XERO_CLIENT_SECRET",
            "BITRIX24_CLIENT_SECRET",
            "XERO_WEBHOOK_KEY",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEY",
        )
        values = [str(getattr(settings, name, "") or "") for name in names]
    except Exception:  # settings not configured (a plain script): patterns still apply
        return []
    return sorted((v for v in values if len(v) >= _MIN_LITERAL), key=len, reverse=True)


def redact(text: Any, *, also: tuple[str, ...] | list[str] = ()) -> str:
    """`text` as a string with every recognised secret replaced by [redacted]; `also` names more
    literal secrets (a portal's own tokens, which no pattern can recognise when they stand alone)."""
    text = str(text)
    extra = sorted((v for v in also if v and len(v) >= _MIN_LITERAL), key=len, reverse=True)
    for literal in [*extra, *_configured_secrets()]:
        text = text.replace(literal, REDACTED)
    text = _PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    text = _URL_CODE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _QUOTED.sub(lambda m: m.group(1) + REDACTED, text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Render the record's message and traceback once, redacted (idempotent)."""
    if getattr(record, "_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what there is, never lose the record
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters print exc_text when set (logging.Formatter and python-json-logger alike); the
        # live exception is dropped so no formatter can render it again unredacted.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._redacted = True
    return record


_installed = False


def install_record_factory() -> None:
    """Redact every record of the process when it is made (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True


class RedactSecretsFilter(logging.Filter):
    """The one filter for every handler: redacts, never drops."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        install_record_factory()

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True
