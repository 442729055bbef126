"""The LOGGING setting: one line per record on stderr, JSON or plain, with context and redaction.

LOG_FORMAT=json (the default with DEBUG off): JSON lines for a log pipeline (python-json-logger);
plain (the default in development): human-readable. Either way each line carries the request /
portal / invoice / job / task ids (connector/logcontext.py), and every handler redacts secrets
(connector/redaction.py). Kept out of settings.py so the settings stay a list of choices.
"""

from __future__ import annotations


def logging_settings(log_format: str, *, level: str) -> dict:
    """Django's LOGGING dict for `log_format` ("json" or "plain") at the root `level`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {
                "()": "connector.logcontext.PlainFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s%(context)s %(message)s",
            },
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "format": "%(levelname)s %(name)s %(message)s %(request_id)s %(portal)s %(invoice)s %(job)s %(task)s %(process)d",
                "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
                "timestamp": True,  # ISO 8601, UTC
            },
        },
        "filters": {
            # One filter for every handler (and, through the record factory it installs, every logger
            # of the process): no secret in a log line. See connector/redaction.py.
            "redact_secrets": {"()": "connector.redaction.RedactSecretsFilter"},
            # The ids of what the line is about (connector/logcontext.py).
            "log_context": {"()": "connector.logcontext.ContextFilter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["log_context", "redact_secrets"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
    }
