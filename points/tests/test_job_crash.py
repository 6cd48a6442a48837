"""The expiry job survives its worker being killed mid-run: a real Celery worker on Redis is ``kill -9``-ed
after some chunks committed, the broker delivers the unacknowledged task again to a new worker, and in the
end every due lot expired exactly once.

The task is acknowledged late and Redis re-delivers an unacknowledged message once it is older than the
visibility timeout — in production hours, here 5 seconds (``CELERY_VISIBILITY_TIMEOUT``); the new worker
restores such messages when it starts.
"""

import re
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from points.models import Allocation, Entry, Lot
from points.services import points_reconcile
from points.tests.helpers import D
from points.tests.seeding import seed_accounts, seed_lots
from tests.helpers import start_celery_worker

BROKER = "redis://127.0.0.1:6379/13"
VISIBILITY_TIMEOUT = 5
ACCOUNTS, LOTS_PER_ACCOUNT = 300, 100
LOTS = ACCOUNTS * LOTS_PER_ACCOUNT
CHUNK = 500

pytestmark = pytest.mark.slow


def start_worker(log: Path) -> subprocess.Popen:
    return start_celery_worker(
        stdout=log.open("w"),
        CELERY_BROKER_URL=BROKER,
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        POINTS_EXPIRY_CHUNK_SIZE=str(CHUNK),
    )


def wait_for(condition: Callable[[], bool], *, timeout: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout}s")
        time.sleep(every)


def expired() -> int:
    return Entry.objects.filter(kind=Entry.Kind.EXPIRE).count()


@pytest.mark.django_db(transaction=True)
def test_expiry_killed_mid_run_is_delivered_again_and_expires_every_lot_exactly_once(tmp_path):
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL: the worker is a separate process")
    broker = redis.Redis.from_url(BROKER)
    broker.flushdb()
    # given 30,000 lots due, over 300 accounts
    now = timezone.now().replace(microsecond=0)
    accounts = seed_accounts(accounts=ACCOUNTS, now=now)
    seed_lots(
        accounts=accounts, lots_per_account=LOTS_PER_ACCOUNT, amount=D(2), expires_at=now - timedelta(days=1), now=now
    )
    sender = Celery(broker=BROKER, set_as_current=False)
    workers = []
    try:
        # when the expiry task runs on a worker that is killed after some of its chunks committed
        workers.append(start_worker(tmp_path / "first.log"))
        task_id = sender.send_task("points.tasks.expire_due").id
        wait_for(lambda: expired() >= 2 * CHUNK, timeout=60)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        done_before_the_kill = expired()
        assert 0 < done_before_the_kill < LOTS, "the worker must die mid-run"
        assert done_before_the_kill % CHUNK == 0, "a chunk is all or nothing"
        # the message is still waiting for its acknowledgement; a new worker restores it once it is older
        # than the visibility timeout
        [(_, delivered_at)] = broker.zrange("unacked_index", 0, -1, withscores=True)
        time.sleep(max(0.0, delivered_at + VISIBILITY_TIMEOUT + 1 - time.time()))
        workers.append(start_worker(tmp_path / "second.log"))
        wait_for(lambda: expired() == LOTS and "succeeded" in (tmp_path / "second.log").read_text(), timeout=60)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=10)
        sender.close()
        broker.flushdb()

    # then the second worker ran the very same task and finished the lots the first one had not
    second_log = (tmp_path / "second.log").read_text()
    assert f"Task points.tasks.expire_due[{task_id}] received" in second_log
    finished = re.search(rf"Task points\.tasks\.expire_due\[{task_id}\] succeeded in [\d.]+s: (\d+)", second_log)
    assert int(finished.group(1)) == LOTS - done_before_the_kill
    # and every lot expired exactly once
    assert expired() == LOTS
    per_lot = Allocation.objects.filter(entry__kind=Entry.Kind.EXPIRE).values("lot").annotate(times=Count("pk"))
    assert per_lot.count() == LOTS
    assert {row["times"] for row in per_lot} == {1}
    assert Lot.objects.filter(state=Lot.State.EXPIRED).count() == LOTS
    assert points_reconcile() == []
