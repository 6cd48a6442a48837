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
from tests.helpers import REPO, clean_env

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
    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
    worker = subprocess.Popen(
        [
            str(REPO / ".venv/bin/celery"),
            "-A",
            "loyalty_crm",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env=clean_env(DATABASE_URL=database_url, CELERY_BROKER_URL=BROKER),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sender = Celery(broker=BROKER)
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
