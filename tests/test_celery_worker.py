"""The production wiring: a real Celery worker on Redis runs the scheduled purge against PostgreSQL."""

import subprocess
import time
from datetime import timedelta

import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone

from integrations.models import IdempotencyKey
from integrations.tests.factories import ChannelFactory
from tests.helpers import start_celery_worker

BROKER = "redis://127.0.0.1:6379/14"
pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
def test_worker_on_redis_runs_the_idempotency_purge():
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL: the worker is a separate process")
    channel = ChannelFactory()
    past = timezone.now() - timedelta(days=8)
    IdempotencyKey.objects.create(
        channel=channel,
        key="old",
        method="POST",
        path="/x",
        fingerprint="f",
        created_at=past,
        locked_at=past,
        expires_at=past + timedelta(days=7),
    )
    worker = start_celery_worker(stdout=subprocess.DEVNULL, CELERY_BROKER_URL=BROKER)
    sender = Celery(broker=BROKER, set_as_current=False)  # shared tasks of later tests stay eager
    try:
        sender.send_task("integrations.tasks.idempotency_keys_purge")
        deadline = time.monotonic() + 60
        while IdempotencyKey.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not IdempotencyKey.objects.exists()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        sender.close()
