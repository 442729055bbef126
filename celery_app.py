"""The Celery application: `celery -A celery_app worker` / `celery -A celery_app beat`."""

import os

from celery import Celery
from celery.signals import setup_logging, worker_process_shutdown, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")

app = Celery("connector")
# Every Celery setting lives in connector/settings.py under the CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["connector", "accounts", "sync"])


@setup_logging.connect
def _django_logging(**_kwargs) -> None:
    """Workers and beat log through Django's LOGGING (JSON lines in production, the ids of the task,
    portal and job on each line, secrets redacted) instead of Celery's own format. Connecting this
    signal is how Celery is told not to configure logging itself."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def _log_context() -> None:
    from connector.logcontext import celery_signals_connect

    celery_signals_connect()


_log_context()


def _db_connections() -> None:
    from connector.celery_db import worker_db_connections_kept

    worker_db_connections_kept(app)


_db_connections()


@worker_ready.connect
def _metrics_exporter(**_kwargs) -> None:
    """The worker's counters on WORKER_METRICS_PORT (an internal port: never publish it)."""
    from django.conf import settings

    if settings.WORKER_METRICS_PORT:
        from connector.metrics import worker_exporter_start

        worker_exporter_start(settings.WORKER_METRICS_PORT)


@worker_process_shutdown.connect
def _metrics_process_gone(pid=None, **_kwargs) -> None:
    """prometheus-client's multiprocess mode: a pool process that exits leaves its files to be merged."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
