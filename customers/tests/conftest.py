"""Fixtures for the customer service tests: the ledger's balance types, staff and channel actors."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model

from core.actors import Actor
from integrations.tests.factories import ChannelFactory
from points.services.lifetimes import balance_types_ensure_defaults


@pytest.fixture(autouse=True)
def _balance_types(request):
    # Joining and the email bonus accrue points; transactional tests flush the migration's balance types.
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = bool(marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    request.getfixturevalue("transactional_db" if transactional else "db")
    balance_types_ensure_defaults()


@pytest.fixture
def staff(db) -> Actor:
    return Actor(user=get_user_model().objects.create(username="manager", is_staff=True))


@pytest.fixture
def site(db):
    return ChannelFactory(code="site", name="Web site")


@pytest.fixture
def site_actor(site) -> Actor:
    return Actor(channel=site)


@pytest.fixture
def run_together():
    """``run_together(*calls)``: every call in its own thread with its own connection, all released at once
    on a barrier; each call's result or exception, in order (as in points/tests/test_concurrency.py)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("race tests need PostgreSQL: its row locks are what they prove")

    def run_all(*calls: Callable[[], object]) -> list[object]:
        barrier = threading.Barrier(len(calls))
        outcomes: list[object] = [None] * len(calls)

        def run(index: int, call: Callable[[], object]) -> None:
            try:
                barrier.wait()
                outcomes[index] = call()
            except Exception as error:
                outcomes[index] = error
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
        return outcomes

    return run_all
