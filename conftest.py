"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from customers.tests.factories import CustomerFactory
from integrations.models import Channel
from integrations.scopes import ALL_SCOPES
from integrations.services.channels import api_key_issue
from integrations.tests.factories import ChannelFactory


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        default=False,
        help="run the property-based ledger tests with ten times as many examples (minutes, not seconds)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    database = settings.DATABASES["default"]
    vendor = database["ENGINE"].rsplit(".", 1)[-1]
    return f"database: {vendor} ({database.get('HOST') or 'file'}:{database['NAME']})"


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    # Throttle counters live in the cache; a test must not inherit another's.
    from django.core.cache import cache

    from integrations.selectors import api_keys_cache_clear

    cache.clear()
    api_keys_cache_clear()  # a key's id from another test's rolled-back data must not be trusted


@pytest.fixture
def channel(db) -> Channel:
    return ChannelFactory(scopes=sorted(ALL_SCOPES))


@pytest.fixture
def channel_client() -> Callable[..., APIClient]:
    """``channel_client(channel)`` → an APIClient authenticated with a fresh key of that channel."""

    def make(channel: Channel) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(channel=channel, name='test').raw_key}")
        return client

    return make


@pytest.fixture
def api(channel: Channel, channel_client: Callable[..., APIClient]) -> APIClient:
    """A client of a channel holding every scope."""
    return channel_client(channel)


@pytest.fixture
def customer(db):
    return CustomerFactory()


@pytest.fixture
def sms_outbox() -> list:
    """The SMS sent during the test (the locmem SMS backend of the test settings)."""
    from integrations import sms

    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()
