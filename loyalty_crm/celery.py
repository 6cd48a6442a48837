"""Celery application.

With ``CELERY_BROKER_URL`` unset (the embedded default) tasks run eagerly, in-process;
with it set (production: Redis) they go to the worker, and beat runs ``CELERY_BEAT_SCHEDULE``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.local")

app = Celery("loyalty_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
