"""Database connections in the worker live as they do in the web process.

Celery's Django fixup closes every database connection before and after each task unless
CELERY_DB_REUSE_MAX is set (celery/fixups/django.py). Every task then opens a new PostgreSQL
connection: a TCP and auth handshake, a new backend process on the server and Django's session
setup, for tasks that often take a few milliseconds (an inbox batch, a push pass of unchanged
invoices). Profiled under the ingest bench, opening connections was a fifth of the worker's time.

Here the fixup is told never to close (DB_REUSE_MAX far beyond any worker's life) and each task
is bracketed instead by what Django does around a request: close_old_connections, which closes a
connection past CONN_MAX_AGE or one an error left unusable, and with CONN_HEALTH_CHECKS checks a
kept one before its first use, so a database restart costs a task nothing.
"""

from __future__ import annotations

from typing import Any

# The fixup closes after this many tasks (it counts two calls a task).
DB_REUSE_MAX = 10**9


def worker_db_connections_kept(app: Any) -> None:
    """Connect the bracketing; `app` is the Celery application (before the worker starts)."""
    from celery.signals import task_postrun, task_prerun
    from django.db import close_old_connections

    app.conf.update(CELERY_DB_REUSE_MAX=DB_REUSE_MAX)  # the key the fixup reads, as it spells it

    def bracket(task: Any = None, **_: Any) -> None:
        # A task run eagerly runs inside its caller (a request, a test's transaction): its
        # connection is the caller's to manage, as the fixup also leaves it.
        if not getattr(getattr(task, "request", None), "is_eager", False):
            close_old_connections()

    task_prerun.connect(bracket, weak=False)
    task_postrun.connect(bracket, weak=False)
