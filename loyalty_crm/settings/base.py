"""Settings shared by every environment; each value that differs comes from the environment.

The embedded default (no variables set) is a SQLite file in the project directory and Celery
tasks running in-process, so that a fresh clone runs with ``make run`` and nothing else.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local .env file is optional; real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-local-development-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "core",
    "integrations",
    "customers",
    "points",
    "catalog",
    "programmes",
    "orders",
    "campaigns",
    "reviews",
    "staff",
    "complaints",
]

# Sessions, staff users and messages: Django's, skipped on channel API requests (core.middleware).
MIDDLEWARE = [
    "core.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.AuthenticationMiddleware",
    "core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "loyalty_crm.urls"
WSGI_APPLICATION = "loyalty_crm.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Services open their own (durable) transactions; a request-wide one would nest them.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)


def database_prepared_statements(database: dict, *, default: bool) -> None:
    """On PostgreSQL, let the server bind parameters, so psycopg prepares a statement once a connection has sent it
    DATABASE_PREPARE_THRESHOLD times and PostgreSQL stops parsing and planning it on every request (a third of
    its CPU on an order placement, bench/orders.py). Pays with persistent connections (CONN_MAX_AGE). Turn it off
    (DATABASE_SERVER_SIDE_BINDING=false) behind a transaction-mode pooler that cannot keep prepared statements
    (PgBouncer before 1.21, or without max_prepared_statements)."""
    if database["ENGINE"] != "django.db.backends.postgresql":
        return
    if env.bool("DATABASE_SERVER_SIDE_BINDING", default=default):
        options = database.setdefault("OPTIONS", {})
        options["server_side_binding"] = True
        options["prepare_threshold"] = env.int("DATABASE_PREPARE_THRESHOLD", default=5)


database_prepared_statements(DATABASES["default"], default=False)  # pays only with persistent connections
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://loyalty-crm")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = env("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
USE_TZ = True

# Phone numbers are stored as E.164; numbers typed without a country code are read in this region.
PHONENUMBER_DEFAULT_REGION = env("PHONENUMBER_DEFAULT_REGION", default="RU")
PHONENUMBER_DB_FORMAT = "E164"

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Loyalty programme ----------------------------------------------------------------------
LOYALTY_CURRENCY = env("LOYALTY_CURRENCY", default="RUB")
# How long a channel's Idempotency-Key is remembered (F-INT-2).
# How long a worker trusts an API key (and its channel) it has looked up: a key revoked or a channel changed in
# another process takes effect within this many seconds (at once in the process that changed it); 0: no cache.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)
IDEMPOTENCY_KEY_TTL = timedelta(days=env.int("IDEMPOTENCY_KEY_TTL_DAYS", default=7))
# How long a retry waits for the first request with its key to finish before answering 409.
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=5.0)
# A request that has held its key this long without finishing is presumed dead; a retry may take over.
IDEMPOTENCY_STALE_AFTER = timedelta(seconds=env.int("IDEMPOTENCY_STALE_AFTER_SECONDS", default=300))

# Points ledger (F-LED). Lifetimes per lot kind live in the database (BalanceType / LotLifetime).
POINTS_DEFAULT_BALANCE_TYPE = env("POINTS_DEFAULT_BALANCE_TYPE", default="retail")
# A refund restores a lot that expired meanwhile, alive for at least this long.
POINTS_REFUND_GRACE_DAYS = env.int("POINTS_REFUND_GRACE_DAYS", default=30)
# A hold nobody commits or releases is released after this long.
POINTS_HOLD_TIMEOUT_MINUTES = env.int("POINTS_HOLD_TIMEOUT_MINUTES", default=30)
# Rows per transaction in the expiry job.
POINTS_EXPIRY_CHUNK_SIZE = env.int("POINTS_EXPIRY_CHUNK_SIZE", default=5000)
# On PostgreSQL, redemptions, holds and hold commits run as one call of a PL/pgSQL function (points 0009) instead of
# a dozen statements; off runs the Python version of the same operations (also what SQLite always runs).
POINTS_LEDGER_SQL_FUNCTIONS = env.bool("POINTS_LEDGER_SQL_FUNCTIONS", default=True)

# Reservations (F-ORD-7): base length in days; each tier adds its reservation_days_bonus.
RESERVATION_DAYS = env.int("RESERVATION_DAYS", default=3)

# Customers (F-ID). Welcome bonus on joining (F-CMP-1; by tier once programme rules exist), email bonus (F-CMP-5).
LOYALTY_WELCOME_BONUS_POINTS = env.int("LOYALTY_WELCOME_BONUS_POINTS", default=500)
LOYALTY_EMAIL_BONUS_POINTS = env.int("LOYALTY_EMAIL_BONUS_POINTS", default=500)
# The consent text the registration SMS and forms show; recorded with every consent given through them.
CONSENT_TEXT_VERSION = env("CONSENT_TEXT_VERSION", default="2026-01")

# Registration codes by SMS (F-ID-2).
SMS_CODE_LENGTH = env.int("SMS_CODE_LENGTH", default=6)
SMS_CODE_TTL_SECONDS = env.int("SMS_CODE_TTL_SECONDS", default=300)
SMS_CODE_MAX_ATTEMPTS = env.int("SMS_CODE_MAX_ATTEMPTS", default=5)
SMS_CODE_RESEND_SECONDS = env.int("SMS_CODE_RESEND_SECONDS", default=60)
SMS_CODE_DAILY_LIMIT = env.int("SMS_CODE_DAILY_LIMIT", default=5)
# Where SMS go: the log (default), an HTTP gateway (SMS_GATEWAY_URL/TOKEN), or memory (tests).
SMS_BACKEND = env("SMS_BACKEND", default="integrations.sms.ConsoleSmsBackend")
SMS_GATEWAY_URL = env("SMS_GATEWAY_URL", default="")
SMS_GATEWAY_TOKEN = env("SMS_GATEWAY_TOKEN", default="")
SMS_GATEWAY_TIMEOUT_SECONDS = env.float("SMS_GATEWAY_TIMEOUT_SECONDS", default=10.0)
SMS_SENDER = env("SMS_SENDER", default="Loyalty")

# Email validation (F-ID-3): the link in the email leads to the site, which calls the confirm API with the token.
EMAIL_VALIDATION_LINK = env("EMAIL_VALIDATION_LINK", default="http://127.0.0.1:8000/confirm-email?token={token}")
EMAIL_VALIDATION_MAX_AGE_HOURS = env.int("EMAIL_VALIDATION_MAX_AGE_HOURS", default=72)

# Outgoing email: EMAIL_URL as in django-environ (smtp+tls://user:password@host:587); the log by default.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Loyalty CRM <noreply@example.com>")

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["integrations.authentication.ChannelKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["integrations.permissions.HasChannelScope"],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.throttling.ChannelRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"channel": env("API_DEFAULT_THROTTLE_RATE", default="1200/min")},
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.api.negotiation.ContentNegotiation",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty CRM API",
    "DESCRIPTION": (
        "Channel API of Loyalty CRM. Authenticate with `Authorization: Bearer <key>` (one key per "
        "channel, issued in the admin). Every mutating call takes an `Idempotency-Key` header. "
        'Every 4xx answer has the body `{"error": {"code", "message", "fields"}}` with a stable '
        "machine-readable `code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets ship with the sidecar package: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=None)
# No broker configured → run tasks in the calling process (embedded default, tests).
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
# An eager task is still serialised through a producer; without a broker Celery would build an AMQP connection
# to localhost for it (never used, but logged as "No hostname was supplied" on every task).
CELERY_BROKER_WRITE_URL = None if CELERY_BROKER_URL else "memory://localhost/"
# Exactly-once effects: a task is acknowledged only after it finished, and one whose worker died
# (even kill -9) is delivered again; the jobs are idempotent, so the re-run changes only what is left.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Redis re-delivers an unacknowledged task after this long: longer than the longest job (expiry of
# 10M lots takes minutes), or a slow job would be started twice in parallel (harmless, but wasted).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=4 * 3600)}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # Right after midnight in the business timezone: points expire at the end of their day.
    "points-expire-due": {"task": "points.tasks.expire_due", "schedule": crontab(hour=0, minute=5)},
    # After the expiry job: tier downgrades (past their grace period), upgrades and ended manual tiers.
    "programmes-tiers-recalculate": {
        "task": "programmes.tasks.tiers_recalculate",
        "schedule": crontab(hour=1, minute=30),
    },
    "points-release-expired-holds": {"task": "points.tasks.release_expired_holds", "schedule": timedelta(minutes=1)},
    "points-unlock-due": {"task": "points.tasks.unlock_due", "schedule": timedelta(minutes=5)},
    "points-run-due-resets": {"task": "points.tasks.run_due_resets", "schedule": timedelta(minutes=15)},
    "orders-reservations-expire": {"task": "orders.tasks.reservations_expire", "schedule": timedelta(hours=1)},
    "idempotency-keys-purge": {
        "task": "integrations.tasks.idempotency_keys_purge",
        "schedule": timedelta(hours=1),
    },
}

# --- Logging --------------------------------------------------------------------------------
LOG_FORMAT = env("LOG_FORMAT", default="text")  # "json" in production
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Requests are logged once, with channel and duration, by core.middleware.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
