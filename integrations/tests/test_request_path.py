"""The shortcuts of the per-request path: the throttle's Redis counter, content negotiation, the one-statement
idempotency claim."""

import threading
import uuid

import pytest
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import IdempotencyKey
from integrations.services.idempotency import ClaimOutcome, idempotency_key_claim, idempotency_key_complete
from integrations.throttling import LEASE_FROM, LEASE_PARTS, window_counter_incr, window_permit_take

URL = "/api/v1/channel"


@pytest.fixture
def redis_cache():
    """A Redis cache under a key prefix of its own (CI and the benchmarks run Redis on localhost)."""
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    backend = RedisCache("redis://127.0.0.1:6379/15", {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    yield backend
    backend._cache.get_client(write=True).delete(*[backend.make_key(f"window-{n}") for n in range(3)])


def test_the_redis_counter_counts_in_one_window_and_expires_with_it(redis_cache):
    counts = [window_counter_incr("window-0", 61, backend=redis_cache) for _ in range(3)]

    client = redis_cache._cache.get_client()
    assert counts == [1, 2, 3]
    assert 59 <= client.ttl(redis_cache.make_key("window-0")) <= 61
    assert redis_cache.get("window-0") == 3  # the cache's own key, readable through the cache API


def test_the_redis_counter_continues_a_window_opened_through_the_cache_api(redis_cache):
    redis_cache.add("window-1", 1, timeout=61)

    assert window_counter_incr("window-1", 61, backend=redis_cache) == 2


def test_the_redis_counter_counts_a_lease_at_once(redis_cache):
    counts = [window_counter_incr("window-2", 61, amount=10, backend=redis_cache) for _ in range(2)]

    assert counts == [10, 20]
    assert 59 <= redis_cache._cache.get_client().ttl(redis_cache.make_key("window-2")) <= 61


def _spend_until_refused(key: str, budget: int, admitted: list[int], ready: threading.Barrier) -> None:
    """One worker thread: take permits until the window refuses one; count what it was given."""
    ready.wait()
    count = 0
    while window_permit_take(key, 61, budget, window_ends=2e9, now=1e9):
        count += 1
    admitted.append(count)


@pytest.mark.parametrize("budget", [LEASE_FROM, 1234])
def test_threads_leasing_permits_admit_exactly_the_budget_between_them(budget):
    key = f"lease-{uuid.uuid4().hex}"
    admitted: list[int] = []
    ready = threading.Barrier(4)
    threads = [threading.Thread(target=_spend_until_refused, args=(key, budget, admitted, ready)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(admitted) == budget
    assert window_permit_take(key, 61, budget, window_ends=2e9, now=1e9) is False


def test_a_thread_is_refused_early_by_at_most_the_leases_other_threads_hold():
    key, budget = f"lease-{uuid.uuid4().hex}", 1000
    lease = budget // LEASE_PARTS
    holder_took = threading.Event()

    def holder():  # another worker: takes one lease, spends one permit of it
        window_permit_take(key, 61, budget, window_ends=2e9, now=1e9)
        holder_took.set()

    thread = threading.Thread(target=holder)
    thread.start()
    holder_took.wait()
    thread.join()
    admitted = 0
    while window_permit_take(key, 61, budget, window_ends=2e9, now=1e9):
        admitted += 1

    assert admitted == budget - lease


def test_a_small_budget_is_counted_request_by_request():
    key = f"lease-{uuid.uuid4().hex}"

    admitted = [window_permit_take(key, 61, 3, window_ends=2e9, now=1e9) for _ in range(4)]

    assert admitted == [True, True, True, False]
    assert window_counter_incr(key, 61, amount=0) == 4  # every request counted, none leased


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_the_usual_accept_headers_get_json(api, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}

    response = api.get(URL, **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_other_accept_headers_are_still_negotiated(api):
    assert api.get(URL, HTTP_ACCEPT="text/html, application/json;q=0.9").status_code == 200
    refused = api.get(URL, HTTP_ACCEPT="text/html")
    assert refused.status_code == 406
    assert refused.json()["error"]["code"] == "not_acceptable"
    assert api.get(URL, {"format": "json"}).status_code == 200
    assert api.get(URL, {"format": "xml"}, HTTP_ACCEPT="*/*").status_code == 404


def _claim(channel, key="k-1", fingerprint="f" * 64):
    return idempotency_key_claim(channel=channel, key=key, method="POST", path="/x", fingerprint=fingerprint)


@pytest.mark.django_db
def test_a_claim_is_one_statement_and_its_completion_another(channel):
    with CaptureQueriesContext(connection) as captured:
        claim = _claim(channel)
        idempotency_key_complete(record=claim.record, status=201, body='{"id": 1}')

    record = IdempotencyKey.objects.get()
    assert len(captured) == 2, [query["sql"] for query in captured.captured_queries]
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.record.pk == record.pk
    assert (record.state, record.response_status, record.response_body) == ("completed", 201, '{"id": 1}')
    assert record.locked_at == claim.record.locked_at
    assert record.completed_at <= timezone.now()
    assert _claim(channel).outcome is ClaimOutcome.REPLAY


@pytest.mark.django_db
def test_a_taken_key_leaves_the_callers_transaction_usable(channel):
    _claim(channel)

    with transaction.atomic():
        again = _claim(channel)
        assert IdempotencyKey.objects.count() == 1  # no aborted transaction: the next statement runs

    assert again.outcome is ClaimOutcome.IN_PROGRESS


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit')")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_claim_and_the_answer_commit_without_waiting_for_the_flush(channel):
    with CaptureQueriesContext(connection) as captured:
        claim = _claim(channel)
        idempotency_key_complete(record=claim.record, status=201, body='{"id": 1}')

    assert [("synchronous_commit', 'off', true" in query["sql"]) for query in captured.captured_queries] == [True] * 2
    assert _synchronous_commit() == "on"  # for the statement's own transaction only, not the connection's
    record = IdempotencyKey.objects.get()
    assert (record.state, record.response_status, record.response_body) == ("completed", 201, '{"id": 1}')


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_the_claim_and_the_answer_leave_its_commit_durable(channel):
    with transaction.atomic():
        claim = _claim(channel)
        idempotency_key_complete(record=claim.record, status=201, body='{"id": 1}')
        assert _synchronous_commit() == "on"  # the caller's writes (a ledger's, say) still wait for their flush

    assert IdempotencyKey.objects.get().state == "completed"
