"""Test run: PostgreSQL by default (where locks and constraints are real); SQLite when TEST_DATABASE_URL says so.

A separate variable from DATABASE_URL, so a developer's .env pointing the app at SQLite does not
silently move the test suite off PostgreSQL.
"""

from .base import *  # noqa: F403
from .base import DATABASES, database_prepared_statements, env

DATABASES["default"] = env.db("TEST_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/loyalty_crm")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
database_prepared_statements(DATABASES["default"], default=True)  # as in production

# Tests never talk to a broker: tasks run in-process unless a test wires one up itself.
CELERY_BROKER_URL = None
CELERY_TASK_ALWAYS_EAGER = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SMS_BACKEND = "integrations.sms.LocmemSmsBackend"
