"""Probes and metrics for operators: /health/ (alive), /ready/ (can serve), /metrics (Prometheus).

Neither probe shows an error's text: a probe is public, and a database error can name hosts, users
and paths. /ready/ names what is down; the process log has the reason.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connector import metrics
from connector.coordination import redis_client

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Nothing else is checked (a database outage must not make an
    orchestrator restart healthy web processes), nothing is revealed."""
    return JsonResponse({"status": "ok"})


_migrations_done = False


def _database_ready() -> tuple[bool, bool]:
    """(database answers, every migration applied)."""
    global _migrations_done
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        logger.warning("readiness: the database does not answer (%s: %s)", type(exc).__name__, exc)
        return False, False
    if _migrations_done:
        return True, True
    try:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        logger.warning("readiness: could not read the migration state (%s: %s)", type(exc).__name__, exc)
        return True, False
    if pending:
        logger.warning("readiness: %d migration(s) not applied, e.g. %s", len(pending), pending[0][0])
        return True, False
    _migrations_done = True  # migrations are never un-applied under a running service
    return True, True


def _redis_ready() -> str:
    client = redis_client()
    if client is None:
        return "not used"
    try:
        client.ping()
        return "ok"
    except Exception as exc:
        logger.warning("readiness: Redis does not answer (%s: %s)", type(exc).__name__, exc)
        return "down"


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers with every migration applied, and Redis answers (when used).
    503 names what is not ready, without the errors' text."""
    database, migrated = _database_ready()
    checks = {
        "database": "ok" if database else "down",
        "migrations": "ok" if migrated else ("unknown" if not database else "pending"),
        "redis": _redis_ready(),
    }
    down = [name for name, value in checks.items() if value not in ("ok", "not used")]
    body = {"status": "ok" if not down else "not ready", **checks}
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if down else 200)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; `Authorization: Bearer <METRICS_TOKEN>`. Without a configured token the
    endpoint does not exist (404), so it is never public by accident."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off (METRICS_TOKEN is not set)")
    if not metrics.token_valid(request.headers.get("Authorization", ""), token):
        response = HttpResponse("metrics need Authorization: Bearer <METRICS_TOKEN>\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
