"""gunicorn's settings for the web process: `gunicorn --config gunicorn.conf.py connector.wsgi:application`.

Environment: WEB_CONCURRENCY (worker processes, default 3), GUNICORN_THREADS (threads per worker,
default 4), PORT (default 8000), FORWARDED_ALLOW_IPS (proxies trusted for X-Forwarded-*, default the
loopback only), PROMETHEUS_MULTIPROC_DIR (metrics of all workers; emptied here at start).
https://docs.gunicorn.org/en/stable/settings.html
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from gunicorn import glogging

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# One worker process per core: a delivery is ~1.2 ms of CPU in the web process (gunicorn itself
# ~0.5 ms of it; bench ingest on a quiet 2-core machine) and a process runs Python on one core at a
# time. More processes than cores cost more CPU per request, and PostgreSQL and the Celery worker
# want their share.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads: a delivery also waits on PostgreSQL (the commit) and Redis; threads keep the cores busy
# through those waits. At 600 deliveries a second on a quiet 2-core machine 2 x 8 and 2 x 4 did
# alike (p99 50-84 ms and 43-92 ms, three runs each); 8 leave room for slower database round trips.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Webhook views answer in milliseconds; pages call Bitrix24 for the user, within a few seconds.
timeout = 30
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (memory growth in long-lived processes), not all at once. Not too
# often: a new worker imports the whole app again (~1-2 s of CPU), and at a webhook burst's 500
# requests a second 2,000 requests was a restart every few seconds.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10
# The app (Django, the URLconf and every view: connector/wsgi.py) is loaded once in the master and
# forked: a new or recycled worker starts with it instead of spending ~0.5 s of CPU on Django's
# setup beside its busy siblings, and answers its first deliveries without importing the views
# first (~0.1 s); and the workers share those pages of memory.
# (Code changes then need a restart, not a HUP: the image is replaced on deploy anyway.)
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"
# Heartbeat files in memory, not on the container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's runtime control socket (in $HOME/.gunicorn) is not used; the image's home is read-only.
control_socket_disable = True
# Both logs to stdout/stderr for the container runtime. The access line is JSON with the request id
# that RequestContextMiddleware answers with, so it joins the application's lines.
accesslog = "-"
errorlog = "-"
# The access log skips Bitrix24's and Xero's deliveries that were accepted: hundreds a second in a
# burst, each line costing ~8% of the request (gunicorn builds every header into the line's atoms;
# profiled), and counted anyway (connector_inbound_requests). Refused or failed ones are logged.
ACCESS_LOG_SKIPS = ("/bitrix24/events/", "/xero/webhooks/")
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
if os.environ.get("LOG_FORMAT", "json") == "json":
    access_log_format = (
        '{"logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
        '"status": %(s)s, "bytes": "%(B)s", "duration_ms": %(M)s, "request_id": "%({x-request-id}o)s", '
        '"user_agent": "%(a)s"}'
    )


def on_starting(server) -> None:
    """prometheus-client's multiprocess mode wants an empty folder when the service starts."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        if path.exists():
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        path.mkdir(parents=True, exist_ok=True)


def post_worker_init(worker) -> None:
    """Each request thread of a new worker opens its database and broker connections before the
    first request: a worker started into a burst otherwise opens them all at once while deliveries
    queue (a PostgreSQL backend and a Redis connection per thread). gthread's pool
    (`worker.tpool`, created before this hook) makes a thread per task while none is idle, so tasks
    that wait for each other at a barrier land on `threads` distinct threads. A database that is not
    there yet only means the first requests connect, as before."""
    import threading
    from concurrent.futures import wait

    pool = getattr(worker, "tpool", None)
    if pool is None or threads < 1:
        return
    barrier = threading.Barrier(threads, timeout=10)

    def connect() -> None:
        from django.db import connection

        from sync.services.jobs.dispatch import publish_connection_open

        # Whatever goes wrong here (a database not up yet, a setting) the first request meets and
        # reports; the barrier must still be reached, or the others wait out its timeout.
        with contextlib.suppress(Exception):
            connection.ensure_connection()
        publish_connection_open()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    wait([pool.submit(connect) for _ in range(threads)], timeout=15)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class _AccessLogger(glogging.Logger):
    def access(self, resp, req, environ, request_time) -> None:
        if req.path in ACCESS_LOG_SKIPS and (resp.status_code or 500) < 400:
            return
        super().access(resp, req, environ, request_time)


logger_class = _AccessLogger
