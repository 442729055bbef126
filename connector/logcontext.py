"""Which request, portal, invoice and job a log line is about, on every line, without passing it around.

Context lives in contextvars (one value per thread / per asyncio task):

- `RequestContextMiddleware` gives each HTTP request an id (the caller's `X-Request-ID` when it is a
  sane token, else a new one; echoed in the response header) and remembers the request, so lines
  logged after a frame sign-in carry that request's portal too.
- Celery tasks get the task id as their request id, and the portal / job / inbox event named by
  their arguments (`portal_id`, `job_id`, `event_id`) — see `celery_task_context`.
- `bind(portal=..., invoice=..., job=...)` sets more for a block.
- Every sync outcome (a SyncLogEntry: one per invoice pushed, pulled, refused, failed...) is also
  one log line, `sync.outcome`, with that invoice's ids (`sync_outcome_logged`).

`ContextFilter` copies them onto each record as `request_id`, `portal`, `invoice`, `job` and `task`;
the JSON formatter (production) writes them as fields, `PlainFormatter` (development) as
" portal=3 invoice=42" after the logger's name. The secrets-redaction filter
(connector/redaction.py) is a separate filter on the same handlers.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

FIELDS = ("request_id", "portal", "invoice", "job", "task")

_vars: dict[str, contextvars.ContextVar[str]] = {
    name: contextvars.ContextVar(f"log_{name}", default="") for name in FIELDS
}
_request: contextvars.ContextVar[Any] = contextvars.ContextVar("log_request", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current() -> dict[str, str]:
    values = {name: var.get() for name, var in _vars.items()}
    if not values["portal"]:
        portal = getattr(_request.get(), "portal", None)
        if portal is not None and getattr(portal, "pk", None):
            values["portal"] = str(portal.pk)
    return values


def set_values(**values: Any) -> dict[str, contextvars.Token]:
    tokens = {}
    for name, value in values.items():
        if name in _vars and value is not None:
            tokens[name] = _vars[name].set(str(value))
    return tokens


def reset(tokens: dict[str, contextvars.Token]) -> None:
    for name, token in tokens.items():
        with contextlib.suppress(ValueError):  # set in another context: nothing to undo here
            _vars[name].reset(token)


@contextlib.contextmanager
def bind(**values: Any) -> Iterator[None]:
    """`with bind(portal=p.pk, invoice=42): ...` — lines logged inside carry these ids."""
    tokens = set_values(**values)
    try:
        yield
    finally:
        reset(tokens)


def clear() -> None:
    for var in _vars.values():
        var.set("")
    _request.set(None)


class ContextFilter(logging.Filter):
    """Adds the context fields to every record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = current()
        for name, value in values.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    """The development format: `%(context)s` is " portal=3 invoice=42" (only the ids that are set)."""

    def format(self, record: logging.LogRecord) -> str:
        record.context = "".join(f" {name}={getattr(record, name, '')}" for name in FIELDS if getattr(record, name, ""))
        return super().format(record)


# --- sync outcomes -----------------------------------------------------------------------------------

_outcome_logger = logging.getLogger("sync.outcome")
# Outcomes that change nothing are many (sweeps, echoes): kept out of INFO.
_QUIET_OUTCOMES = {"skipped_unchanged", "echo_dropped"}
_LOUD_OUTCOMES = {"failed": logging.WARNING, "refused": logging.WARNING}


def sync_outcome_logged(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """post_save of SyncLogEntry: the same outcome as one log line, with its portal and invoice."""
    if not created:
        return
    level = logging.DEBUG if instance.outcome in _QUIET_OUTCOMES else _LOUD_OUTCOMES.get(instance.outcome, logging.INFO)
    if not _outcome_logger.isEnabledFor(level):
        return
    ids: dict[str, str] = {"portal": str(instance.portal_id)}
    if instance.object_kind == "invoice" and instance.bitrix24_id:
        ids["invoice"] = str(instance.bitrix24_id)
    what = f"{instance.object_kind} {instance.bitrix24_id or instance.xero_id or ''}".strip()
    number = f" ({instance.invoice_number})" if instance.invoice_number else ""
    message = f": {instance.message}" if instance.message else ""
    _outcome_logger.log(level, "%s %s%s %s%s", instance.direction, what, number, instance.outcome, message, extra=ids)


# --- web -------------------------------------------------------------------------------------------

# Where Bitrix24 and Xero knock; answers there are counted (metrics) by source and outcome.
INBOUND_PATHS = {
    "/bitrix24/events/": "bitrix24",
    "/bitrix24/install/": "bitrix24_install",
    "/xero/webhooks/": "xero",
}


class RequestContextMiddleware:
    """Request id in, request id out, context cleared after; counts inbound webhook answers."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        from connector import metrics

        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        tokens = set_values(request_id=request_id)
        request_token = _request.set(request)
        try:
            response = self.get_response(request)
            source = INBOUND_PATHS.get(request.path)
            if source and request.method == "POST":
                status = response.status_code
                outcome = "accepted" if status < 400 else "refused" if status < 500 else "error"
                metrics.count(metrics.INBOUND_REQUESTS, source, outcome)
            response["X-Request-ID"] = request_id
            return response
        finally:
            _request.reset(request_token)
            reset(tokens)


# --- Celery ----------------------------------------------------------------------------------------

_ARG_FIELDS = {"portal_id": "portal", "job_id": "job", "event_id": "job"}


def celery_task_context(task: Any, task_id: str, args: Any, kwargs: Any) -> dict[str, str]:
    """The context of a task run: its id, and the ids its arguments name."""
    import inspect

    values = {"request_id": task_id or "", "task": getattr(task, "name", "") or ""}
    try:
        params = list(inspect.signature(task.run).parameters)
    except (TypeError, ValueError):
        params = []
    named = dict(zip(params, args or (), strict=False)) | dict(kwargs or {})
    for param, field in _ARG_FIELDS.items():
        if param in named and named[param] is not None:
            value = named[param]
            values[field] = f"inbox:{value}" if param == "event_id" else str(value)
    return values


def celery_signals_connect() -> None:
    """task_prerun binds, task_postrun clears (a pool process runs one task after another)."""
    from celery.signals import task_postrun, task_prerun

    @task_prerun.connect(weak=False)
    def _bind(sender=None, task_id=None, task=None, args=None, kwargs=None, **_: Any) -> None:
        clear()
        set_values(**celery_task_context(task or sender, task_id or "", args, kwargs))

    @task_postrun.connect(weak=False)
    def _clear(**_: Any) -> None:
        clear()
