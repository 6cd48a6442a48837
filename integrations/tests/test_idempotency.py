"""Idempotency-Key contract of channel writes (SPEC F-INT-2), exercised through POST /api/v1/customers."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from customers.models import Customer
from integrations.models import IdempotencyKey
from integrations.services.idempotency import idempotency_keys_purge
from integrations.tasks import idempotency_keys_purge_task
from integrations.tests.factories import ChannelFactory

URL = "/api/v1/customers"
BODY = {"phone": "8 916 123-45-67", "name": "Anna"}


def post(client, body=BODY, key="order-1042"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(URL, body, format="json", **headers)


@pytest.mark.smoke
@pytest.mark.django_db
def test_retry_with_same_key_replays_identical_response_and_changes_nothing(api):
    first = post(api)
    second = post(api)

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_same_body_with_keys_in_different_order_is_the_same_request(api):
    post(api, {"phone": "+79161234567", "name": "Anna"})

    replay = post(api, {"name": "Anna", "phone": "+79161234567"})

    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"


@pytest.mark.smoke
@pytest.mark.django_db
def test_same_key_with_different_body_is_refused_422_and_changes_nothing(api):
    post(api)

    response = post(api, {"phone": "+79031112233"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert list(Customer.objects.values_list("phone", flat=True)) == ["+79161234567"]


@pytest.mark.django_db
def test_missing_key_on_a_write_that_requires_one_is_400_and_changes_nothing(api):
    response = post(api, key=None)

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "idempotency_key_required",
            "message": "This operation needs an Idempotency-Key header.",
            "fields": {},
        }
    }
    assert Customer.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["x" * 256, "ключ"])
def test_malformed_key_is_refused(api, key):
    response = post(api, key=key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_a_path_longer_than_its_column_once_escaped_is_stored_cut(api):
    number = "Ω" * 100  # 200 bytes, 600 characters escaped

    response = api.post(f"/api/v1/reservations/{number}/fulfil", {}, format="json", HTTP_IDEMPOTENCY_KEY="long")

    record = IdempotencyKey.objects.get(key="long")
    assert response.status_code == 404
    assert record.path.startswith("/api/v1/reservations/%CE%A9")
    assert len(record.path) == IdempotencyKey._meta.get_field("path").max_length


@pytest.mark.django_db
def test_keys_are_scoped_per_channel(api, channel_client):
    other = channel_client(ChannelFactory(scopes=["customers:write"]))
    post(api)

    response = post(other, {"phone": "+79031112233"})

    assert response.status_code == 201
    assert Customer.objects.count() == 2


@pytest.mark.django_db
def test_business_error_is_stored_and_replayed(api, customer):
    body = {"phone": str(customer.phone)}
    first = post(api, body)
    customer.delete()  # even if the conflict disappears, the key's answer stays what it was

    second = post(api, body)

    assert first.status_code == 409
    assert first.json()["error"]["code"] == "customer_exists"
    assert second.status_code == 409
    assert second.content == first.content
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_validation_error_answer_is_replayed_too(api):
    first = post(api, {"phone": "not a phone"})
    second = post(api, {"phone": "not a phone"})

    assert first.status_code == 400
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_refused_request_does_not_consume_the_key(channel_client):
    read_only = ChannelFactory(scopes=["customers:read"])
    client = channel_client(read_only)

    response = post(client)

    assert response.status_code == 403
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_server_error_releases_the_key_so_a_retry_runs_again(api, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("customers.api.views.customer_create", broken)
    api.raise_request_exception = False
    failed = post(api)
    monkeypatch.undo()

    retried = post(api)

    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "server_error"
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert Customer.objects.count() == 1


@pytest.mark.django_db
@override_settings(IDEMPOTENCY_WAIT_SECONDS=0.2)
def test_key_held_by_a_running_request_answers_409_after_waiting(api, channel):
    now = timezone.now()
    IdempotencyKey.objects.create(
        channel=channel,
        key="order-1042",
        method="POST",
        path=URL,
        fingerprint=_fingerprint_of(api),
        created_at=now,
        locked_at=now,
        expires_at=now + timedelta(days=7),
    )

    response = post(api)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "request_in_progress"
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_key_held_by_a_dead_request_is_taken_over(api, channel):
    long_ago = timezone.now() - timedelta(hours=1)
    IdempotencyKey.objects.create(
        channel=channel,
        key="order-1042",
        method="POST",
        path=URL,
        fingerprint=_fingerprint_of(api),
        created_at=long_ago,
        locked_at=long_ago,
        expires_at=long_ago + timedelta(days=7),
    )

    response = post(api)

    assert response.status_code == 201
    assert Customer.objects.count() == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.COMPLETED


@pytest.mark.django_db
def test_expired_key_is_forgotten_and_may_be_used_again(api):
    post(api)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post(api, {"phone": "+79031112233"})

    assert response.status_code == 201
    assert Customer.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_ten_identical_requests_racing_on_postgresql_have_exactly_one_effect(channel_client):
    if connection.vendor != "postgresql":
        pytest.fail("this race test must run on PostgreSQL")
    client_channel = ChannelFactory(scopes=["customers:write"])
    clients = [channel_client(client_channel) for _ in range(10)]
    barrier = threading.Barrier(10)
    responses = [None] * 10

    def send(index: int) -> None:
        try:
            barrier.wait()
            responses[index] = post(clients[index])
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Customer.objects.count() == 1
    assert {response.status_code for response in responses} == {201}
    assert len({response.content for response in responses}) == 1
    assert sum(not response.has_header("Idempotent-Replayed") for response in responses) == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.COMPLETED


@pytest.mark.django_db
def test_purge_deletes_only_expired_keys_and_is_safe_to_run_twice(api):
    post(api, key="old")
    post(api, {"phone": "+79031112233"}, key="fresh")
    IdempotencyKey.objects.filter(key="old").update(expires_at=timezone.now() - timedelta(minutes=1))

    first = idempotency_keys_purge(batch_size=1)
    second = idempotency_keys_purge_task.delay().get()

    assert (first, second) == (1, 0)
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


def _fingerprint_of(client) -> str:
    """The fingerprint the API computes for BODY, taken from a dry request on another key."""
    post(client, key="probe")
    record = IdempotencyKey.objects.get(key="probe")
    Customer.objects.all().delete()
    record.delete()
    return record.fingerprint
