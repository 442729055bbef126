"""Settings for the connector, all read from the environment (django-environ).

With no environment at all the service runs on an embedded default that needs no server: an SQLite
file and kombu's filesystem broker. With DATABASE_URL and REDIS_URL it runs on PostgreSQL and Redis.
With DEBUG off it refuses to start without SECRET_KEY and FIELD_ENCRYPTION_KEY.
"""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

from connector.logging_config import logging_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments pass the environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Off unless asked for: a deployment that forgets to set it must not serve debug pages or run on
# development keys. `make run`, `make test` and the test suite set DEBUG=1 themselves.
DEBUG = env.bool("DEBUG", default=False)

# What .env.example and the development fallbacks ship with: never acceptable in production.
_PLACEHOLDERS = {
    "change-me-to-a-long-random-string",
    "dev-only-insecure-secret-key-change-me",
}
# A fixed key for development only (DEBUG on), so a fresh clone runs with nothing set. It is refused
# in production like the placeholders; the encryption key is never derived from SECRET_KEY, so
# leaking one never reveals the other.
_DEV_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtZmVybmV0LWtleS0wMDA="


def _required_in_production(name: str, dev_default: str) -> str:
    value = env.str(name, default="")
    if DEBUG:
        return value or dev_default
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. It is required when DEBUG is off (production); see .env.example."
        )
    if value in _PLACEHOLDERS or value == _DEV_FIELD_ENCRYPTION_KEY or "change-me" in value:
        raise ImproperlyConfigured(f"{name} is still the placeholder from .env.example; set a real value.")
    return value


SECRET_KEY = _required_in_production("SECRET_KEY", "dev-only-insecure-secret-key-change-me")
if not DEBUG and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY is too short: use at least 50 random characters.")
# Fernet key (urlsafe base64 of 32 bytes) for tokens and secrets at rest.
FIELD_ENCRYPTION_KEY = _required_in_production("FIELD_ENCRYPTION_KEY", _DEV_FIELD_ENCRYPTION_KEY)
try:
    if len(base64.urlsafe_b64decode(FIELD_ENCRYPTION_KEY.encode())) != 32:
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY is not a Fernet key (urlsafe base64 of 32 bytes); generate one with "
        '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
    ) from None

PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
# The host of PUBLIC_URL is the one name the service answers to; ALLOWED_HOSTS adds others (a
# second name behind the proxy). Development also answers on the loopback names.
_public_host = urlparse(PUBLIC_URL).hostname or ""
ALLOWED_HOSTS = [h for h in [_public_host, *env.list("ALLOWED_HOSTS", default=[])] if h]
if DEBUG:
    ALLOWED_HOSTS += ["localhost", "127.0.0.1", "[::1]"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_URL])

# Where the two APIs live. SANDBOX_URL points every endpoint at the local fake (python -m sandbox);
# the endpoint helpers in integrations/endpoints.py read it at call time so tests can set it late.
SANDBOX_URL = env.str("SANDBOX_URL", default="").rstrip("/")

XERO_CLIENT_ID = env.str("XERO_CLIENT_ID", default="")
XERO_CLIENT_SECRET = env.str("XERO_CLIENT_SECRET", default="")
XERO_WEBHOOK_KEY = env.str("XERO_WEBHOOK_KEY", default="")
# The install check compares app.info's client_id with this one: without it any app's token would
# do, so production refuses to start without it (accounts/services/portal.py refuses installs too).
BITRIX24_CLIENT_ID = env.str("BITRIX24_CLIENT_ID", default="")
if not DEBUG and not BITRIX24_CLIENT_ID:
    raise ImproperlyConfigured(
        "BITRIX24_CLIENT_ID is not set. It is required when DEBUG is off (production): installs are "
        "verified against it; see .env.example."
    )
BITRIX24_CLIENT_SECRET = env.str("BITRIX24_CLIENT_SECRET", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # Locks out password guessing on Django admin's login (the only password form we have).
    "axes",
    "accounts",
    "sync",
]

MIDDLEWARE = [
    # Outermost on the way out: it replaces X-Frame-Options on frame views (see the module).
    "connector.middleware.FrameAncestorsMiddleware",
    # A request id for every log line of the request (and the X-Request-ID answer header).
    "connector.logcontext.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Refuses NUL characters before any view, and turns a database DataError into a 400.
    "connector.input_guard.InputGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Bitrix24's events and Xero's webhooks are answered here, without the pages' middleware below.
    "connector.inbound.InboundEndpointsMiddleware",
    # Static files (the app's CSS/JS) straight from the app server, also under gunicorn.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes documents: it turns a lockout signalled by its backend into a 429 page.
    "axes.middleware.AxesMiddleware",
]

# axes first: it refuses a locked-out username/address before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)  # hours
# Per username and address: guessing one admin's password from many addresses still locks that
# pair, and one noisy address cannot lock every admin out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

ROOT_URLCONF = "connector.urls"
WSGI_APPLICATION = "connector.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "connector.context_processors.bitrix24",
                "sync.web.context.sync_state",
            ],
        },
    },
]

# The embedded mode's files (SQLite database, filesystem broker): git-ignored, removed by `make clean`.
EMBEDDED_DIR = Path(env.str("EMBEDDED_DIR", default=str(BASE_DIR / ".run")))
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{EMBEDDED_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode: SQLite has no row locks, so every transaction takes the write lock when it
    # begins (IMMEDIATE): claims of jobs and inbox rows are serialised between the web server and
    # the worker, and a read-then-write never fails on a lock upgrade. Waiters queue for 30 s; WAL
    # lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis carries the broker, the locks and the shared throttles. Without it the service still runs
# (filesystem broker, process-local coordination) but only as a single worker process.
REDIS_URL = env.str("REDIS_URL", default="")
if not REDIS_URL:
    # Embedded mode: what the worker leaves for the pages (import progress) goes through a folder
    # both processes see. With Redis the code uses Redis itself.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(EMBEDDED_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The app's pages speak the portal's language (LANG of Bitrix24's frame POST, connector.i18n):
# English, and Bitrix24's largest markets translated; others fall back to English.
LANGUAGES = [("en", "English"), ("ru", "Русский"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve from the apps' static folders too, so a checkout works without `collectstatic`.
WHITENOISE_USE_FINDERS = True
# WhiteNoise warns about a missing STATIC_ROOT on every start until `collectstatic` has run once.
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(exist_ok=True)

# --- HTTPS (production) -------------------------------------------------------------------------
# `manage.py check --deploy` is clean with DEBUG off (tests/test_security_settings.py runs it).
# Behind a TLS-terminating proxy, Django learns the scheme from X-Forwarded-Proto. Only trust it
# when the proxy always sets (overwrites) it: TRUST_X_FORWARDED_PROTO=false when Django is reached
# directly, or any client could claim HTTPS.
if env.bool("TRUST_X_FORWARDED_PROTO", default=True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes call these over plain HTTP inside the network; a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$", r"^metrics/?$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Django's default COOP, same-origin, cuts window.opener between the app's pages and the Xero window
# they open; same-origin-allow-popups keeps it, and the Xero window's own pages send unsafe-none
# (connector.middleware.opener_kept) so the "connected" page can tell the app frame.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin-allow-popups"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True

# --- Logs ---------------------------------------------------------------------------------------
# One line per record on stderr. LOG_FORMAT=json (the default with DEBUG off): JSON lines for a log
# pipeline (python-json-logger); plain (the default in development): human-readable. Either way
# each line carries the request / portal / invoice / job / task ids (connector/logcontext.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = logging_settings(LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))

# --- Metrics ------------------------------------------------------------------------------------
# GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`; unset, the endpoint is off (404).
# Celery workers serve their own counters on WORKER_METRICS_PORT (internal only) when it is set.
# With several processes per container (gunicorn workers, Celery's pool), PROMETHEUS_MULTIPROC_DIR
# must name an empty folder at start (see connector/metrics.py and docker-compose.yml).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
if env.str("PROMETHEUS_MULTIPROC_DIR", default=""):
    # prometheus-client writes each process's counters there; it must exist before the first one.
    with contextlib.suppress(OSError):
        Path(env.str("PROMETHEUS_MULTIPROC_DIR")).mkdir(parents=True, exist_ok=True)

# --- Celery -------------------------------------------------------------------------------------
# Delivery is at-least-once: the PostgreSQL inbox/outbox is the source of truth and every task is
# idempotent, so these settings favour redelivery over loss. tests/test_celery_settings.py pins them.

# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-url
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
# The filesystem broker's folders (embedded mode): messages are files, one folder for all queues.
BROKER_DIR = Path(env.str("BROKER_DIR", default=str(EMBEDDED_DIR / "broker")))
if not REDIS_URL:
    for _sub in ("out", "processed", "control"):
        # A read-only image (production runs with Redis) must still load these settings.
        with contextlib.suppress(OSError):
            (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
# The longest a task may run (hard limit) and the longest retry countdown we ever schedule. The
# Redis visibility timeout must stay well above both, or Redis redelivers a task that is still
# running or still waiting for its countdown, "again and again in a loop" (Celery's Redis caveats).
TASK_HARD_TIME_LIMIT_S = 300
MAX_RETRY_DELAY_S = 600
# Push passes wait for a quiet moment so a burst (an import, an invoice and then its rows) goes out
# in one pass, never longer than the bound after the oldest waiting change (sync/services/debounce.py).
PUSH_QUIET_S = env.float("PUSH_QUIET_S", default=0.8)
PUSH_MAX_WAIT_S = env.float("PUSH_MAX_WAIT_S", default=30.0)
# While changes still arrive at PUSH_BURST_RATE a second or faster (an import's events), the bound
# stretches to PUSH_BURST_MAX_WAIT_S, so one import goes out in one pass, not cut in two by the bound.
PUSH_BURST_RATE = env.float("PUSH_BURST_RATE", default=5.0)
PUSH_BURST_MAX_WAIT_S = env.float("PUSH_BURST_MAX_WAIT_S", default=90.0)
# An invoice read with no product rows that Bitrix24 changed less than this long ago waits for them
# (an import or a person sets the rows a moment after creating it); after that it is held.
PUSH_NO_ROWS_GRACE_S = env.float("PUSH_NO_ROWS_GRACE_S", default=60.0)
# Budget-aware pushing (sync/services/xero_budget.py): when the last hour's pace kept up this many
# hours would spend more of the organisation's Xero day than automatic work has left, automatic passes
# are spaced so the rest lasts that long. 0 turns it off.
PUSH_BUDGET_HORIZON_H = env.float("PUSH_BUDGET_HORIZON_H", default=8.0)
# How many invoices a push pass takes while other portals push too (sync/services/push/pipeline.py
# SHARED_CLAIM_LIMIT): one Xero write batch, so a backlog holds a worker ~2 s a turn. Measured with
# bench fairness (10,000-invoice backfill beside 19 busy portals): 50 -> turns of 1.8 s, 227 Xero
# calls for the backfill (floor ~210); 200 -> turns of 8.6 s, ~222 per 10,000.
PUSH_SHARED_CLAIM_LIMIT = env.int("PUSH_SHARED_CLAIM_LIMIT", default=50)
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 4 * 3600}
    if REDIS_URL
    else {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Broadcasts (worker remote control): kombu's default is ./control in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
        # How often the worker looks for new message files (kombu's default: every second).
        "polling_interval": 0.2,
        "store_processed": False,
    }
)
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
CELERY_TASK_ACKS_LATE = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# https://docs.celeryq.dev/en/stable/userguide/optimizing.html#reserve-one-task-at-a-time
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-serializer
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-time-limit
CELERY_TASK_TIME_LIMIT = TASK_HARD_TIME_LIMIT_S
CELERY_TASK_SOFT_TIME_LIMIT = TASK_HARD_TIME_LIMIT_S - 30
# Results are not used: outcomes live in the database (sync log), so nothing is stored in Redis.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-ignore-result
CELERY_TASK_IGNORE_RESULT = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-cancel-long-running-tasks-on-connection-loss
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-connection-retry-on-startup
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-default-queue
CELERY_TASK_DEFAULT_QUEUE = "connector"
CELERY_TIMEZONE = TIME_ZONE
# The safety nets of sync/tasks/sweeps.py. `expires` drops a run that waited longer than its period
# (workers down), so a backlog of identical sweeps never piles up.
# https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#beat-entries
CELERY_BEAT_SCHEDULE: dict = {
    # Every 15 s: with the push heartbeat (ALIVE_TTL_S 15 s) a killed worker's jobs are back in ~30 s.
    "sweep-stuck": {"task": "sync.tasks.sweeps.sweep_stuck_task", "schedule": 15.0, "options": {"expires": 12}},
    "sweep-bitrix24-changes": {
        "task": "sync.tasks.sweeps.sweep_bitrix24_changes_task",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    "offline-events-drain": {
        "task": "sync.tasks.sweeps.offline_events_drain_task",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    "sweep-xero-changes": {
        "task": "sync.tasks.sweeps.sweep_xero_changes_task",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    "expired-credentials-delete": {
        "task": "accounts.tasks.expired_credentials_delete_task",
        "schedule": 3600.0,
        "options": {"expires": 1800},
    },
    # Every linked invoice compared with Xero (sync.services.reconcile): ceil(n/50) Xero reads a portal.
    "reconcile-nightly": {
        "task": "sync.tasks.reconcile.reconcile_nightly_task",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
    "tokens-keepalive": {
        "task": "sync.tasks.sweeps.tokens_keepalive_task",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
}

# --- API limits ---------------------------------------------------------------------------------
# Client-side throttles (integrations/common/throttle.py), shared by all workers through Redis.
# Xero per tenant: 5 in flight, 60 per rolling minute, a daily budget with a reserve that only
# interactive (user-click) calls may spend; 10,000/min for the whole app. Bitrix24 per portal: a
# leaky bucket (Enterprise plans: 250 and 5/s). RATE_LIMIT_TIME_SCALE divides every window, so tests
# and benches can run against the sandbox's faster clock (its time_scale).
XERO_CONCURRENT_LIMIT = env.int("XERO_CONCURRENT_LIMIT", default=5)
XERO_MINUTE_LIMIT = env.int("XERO_MINUTE_LIMIT", default=60)
XERO_DAILY_LIMIT = env.int("XERO_DAILY_LIMIT", default=5000)
# Kept for clicks: a share of the organisation's daily limit (learnt from X-DayLimit-Remaining: 1,000
# on the Starter tier, so 100), at most XERO_DAILY_RESERVE calls (500: the 5,000 tier's figure).
XERO_DAILY_RESERVE_SHARE = env.float("XERO_DAILY_RESERVE_SHARE", default=0.10)
XERO_DAILY_RESERVE = env.int("XERO_DAILY_RESERVE", default=500)
XERO_APP_MINUTE_LIMIT = env.int("XERO_APP_MINUTE_LIMIT", default=10000)
BITRIX24_BURST = env.int("BITRIX24_BURST", default=50)
BITRIX24_DRAIN_PER_S = env.float("BITRIX24_DRAIN_PER_S", default=2.0)
RATE_LIMIT_TIME_SCALE = env.float("RATE_LIMIT_TIME_SCALE", default=1.0)
# The longest a caller sleeps for its turn; past it, RateLimitedError(retry_after) hands the job
# back to Celery with a countdown instead of holding a worker.
RATE_LIMIT_MAX_WAIT_S = env.float("RATE_LIMIT_MAX_WAIT_S", default=30.0)
# A Xero slot held by a worker that died mid-call frees itself after this long (real seconds); it
# must exceed the client's longest call (5 s connect + 60 s read).
XERO_SLOT_LEASE_S = env.float("XERO_SLOT_LEASE_S", default=120.0)
