"""Settings for the connector, all read from the environment (django-environ).

With no environment at all the service runs on an embedded default that needs no server: an SQLite
file and kombu's filesystem broker. With DATABASE_URL and REDIS_URL it runs on PostgreSQL and Redis.
With DEBUG off it refuses to start without SECRET_KEY and FIELD_ENCRYPTION_KEY.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments pass the environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)


def _required_in_production(name: str, dev_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} is not set. It is required when DEBUG is off (production); see .env.example."
        )
    return dev_default


SECRET_KEY = _required_in_production("SECRET_KEY", "dev-only-insecure-secret-key-change-me")
# Fernet key (urlsafe base64 of 32 bytes) for tokens and secrets at rest. In development it is
# derived from SECRET_KEY so that a fresh clone runs with nothing set.
FIELD_ENCRYPTION_KEY = _required_in_production(
    "FIELD_ENCRYPTION_KEY",
    base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode(),
)

PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else [])
_public_host = PUBLIC_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
if _public_host and _public_host not in ALLOWED_HOSTS and "*" not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_public_host)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_URL])

# Where the two APIs live. SANDBOX_URL points every endpoint at the local fake (python -m sandbox);
# the endpoint helpers in integrations/endpoints.py read it at call time so tests can set it late.
SANDBOX_URL = env.str("SANDBOX_URL", default="").rstrip("/")

XERO_CLIENT_ID = env.str("XERO_CLIENT_ID", default="")
XERO_CLIENT_SECRET = env.str("XERO_CLIENT_SECRET", default="")
XERO_WEBHOOK_KEY = env.str("XERO_WEBHOOK_KEY", default="")
BITRIX24_CLIENT_ID = env.str("BITRIX24_CLIENT_ID", default="")
BITRIX24_CLIENT_SECRET = env.str("BITRIX24_CLIENT_SECRET", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "accounts",
    "sync",
]

MIDDLEWARE = [
    # Outermost on the way out: it replaces X-Frame-Options on frame views (see the module).
    "connector.middleware.FrameAncestorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the app's CSS/JS) straight from the app server, also under gunicorn.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis carries the broker, the locks and the shared throttles. Without it the service still runs
# (filesystem broker, process-local coordination) but only as a single worker process.
REDIS_URL = env.str("REDIS_URL", default="")

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

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Django's default COOP, same-origin, cuts window.opener between the app's pages and the Xero window
# they open; same-origin-allow-popups keeps it, and the Xero window's own pages send unsafe-none
# (connector.middleware.opener_kept) so the "connected" page can tell the app frame.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin-allow-popups"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Celery -------------------------------------------------------------------------------------
# Delivery is at-least-once: the PostgreSQL inbox/outbox is the source of truth and every task is
# idempotent, so these settings favour redelivery over loss. tests/test_celery_settings.py pins them.

# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-url
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _broker_dir = BASE_DIR / ".broker"
    for _sub in ("out", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
# The longest a task may run (hard limit) and the longest retry countdown we ever schedule. The
# Redis visibility timeout must stay well above both, or Redis redelivers a task that is still
# running or still waiting for its countdown, "again and again in a loop" (Celery's Redis caveats).
TASK_HARD_TIME_LIMIT_S = 300
MAX_RETRY_DELAY_S = 600
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 4 * 3600}
    if REDIS_URL
    else {
        "data_folder_in": str(BASE_DIR / ".broker" / "out"),
        "data_folder_out": str(BASE_DIR / ".broker" / "out"),
        "processed_folder": str(BASE_DIR / ".broker" / "processed"),
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
    "sweep-stuck": {"task": "sync.tasks.sweeps.sweep_stuck_task", "schedule": 30.0, "options": {"expires": 25}},
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
