"""Fixtures for the customer service tests: the ledger's balance types, staff and channel actors."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from core.actors import Actor
from integrations.tests.factories import ChannelFactory
from points.services.lifetimes import balance_types_ensure_defaults
from tests.helpers import run_together as run_race


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
    """``tests.helpers.run_together``, refused off PostgreSQL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("race tests need PostgreSQL: its row locks are what they prove")

    return run_race
