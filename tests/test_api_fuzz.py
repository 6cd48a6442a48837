"""Property-based fuzzing of the whole channel API from its own OpenAPI schema (schemathesis).

Whatever a channel sends — valid or not — the answer is never a 5xx, its status is one the schema
documents, and its body matches the documented schema (so the docs cannot drift from the code).
"""

import uuid

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from integrations.scopes import ALL_SCOPES
from integrations.services.channels import api_key_issue
from integrations.tests.factories import ChannelFactory
from loyalty_crm.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection_open():
    # Like Django's test Client: the WSGI handler would close the connection holding the test transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def channel_headers(db) -> dict[str, str]:
    channel = ChannelFactory(scopes=sorted(ALL_SCOPES), rate_limit="100000/min")
    return {"Authorization": f"Bearer {api_key_issue(channel=channel, name='fuzz').raw_key}"}


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_as_documented(case, channel_headers):
    headers = {**channel_headers, "Idempotency-Key": str(uuid.uuid4())}
    # Rejecting every schema-violating value is not the contract (DRF coerces 0 → "0"); answering
    # it with a documented 4xx or a documented success is.
    case.call_and_validate(headers=headers, excluded_checks=[negative_data_rejection, positive_data_acceptance])
