"""Channel API of the ledger: balance, history, holds, adjustments (SPEC F-LED, F-INT-2)."""

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.tests.factories import ChannelFactory
from points.api.selectors import hold_get
from points.api.serializers import HoldOutput, hold_answer
from points.models import Account, Entry, Hold, Lot
from points.selectors import points_balance
from points.services import points_accrue, points_hold, points_redeem
from points.tests.helpers import D, assert_consistent, buckets, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def accrue(customer, amount, *, days=365, **kwargs):
    return points_accrue(
        customer=customer,
        amount=amount,
        kind=kwargs.pop("kind", "purchase"),
        operation_key=key("accrue"),
        expires_at=NOW + timedelta(days=days),
        now=NOW,
        **kwargs,
    ).lot


def iso(moment) -> str:
    return timezone.localtime(moment).isoformat()


def post(client, url, body=None, *, idempotency_key="k1"):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=idempotency_key)


def hold_url(customer) -> str:
    return f"/api/v1/customers/{customer.pk}/points/holds"


# --- balance ---------------------------------------------------------------------------------


@pytest.mark.smoke
def test_balance_shows_every_bucket_and_what_expires_soon(api, customer):
    accrue(customer, 100, days=10)
    accrue(customer, 200, days=300)
    points_accrue(customer=customer, amount=50, kind="purchase", operation_key=key(), pending=True, now=NOW)
    points_hold(customer=customer, amount=30, operation_key=key(), now=NOW)

    response = api.get(f"/api/v1/customers/{customer.pk}/points")

    assert response.status_code == 200
    assert response.json() == {
        "balance_type": "retail",
        "available": "270.00",
        "pending": "50.00",
        "held": "30.00",
        "debt": "0.00",
        "expiring_soon": "70.00",  # the hold took its 30 from the soonest-expiring lot
        "expiring_within_days": 30,
    }


def test_balance_of_another_type_and_horizon(api, customer):
    accrue(customer, 100, days=10)
    accrue(customer, 40, days=200, balance_type="b2b")

    retail = api.get(f"/api/v1/customers/{customer.pk}/points", {"expiring_within_days": 5})
    b2b = api.get(f"/api/v1/customers/{customer.pk}/points", {"balance_type": "b2b", "expiring_within_days": 365})

    assert (retail.json()["available"], retail.json()["expiring_soon"]) == ("100.00", "0.00")
    assert (b2b.json()["balance_type"], b2b.json()["available"], b2b.json()["expiring_soon"]) == (
        "b2b",
        "40.00",
        "40.00",
    )


def test_balance_of_a_customer_without_points_is_zero(api, customer):
    response = api.get(f"/api/v1/customers/{customer.pk}/points")

    assert response.json() == {
        "balance_type": "retail",
        "available": "0.00",
        "pending": "0.00",
        "held": "0.00",
        "debt": "0.00",
        "expiring_soon": "0.00",
        "expiring_within_days": 30,
    }


def test_balance_of_unknown_customer_is_404(api, customer):
    response = api.get(f"/api/v1/customers/{customer.pk + 1000}/points")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [({"balance_type": "bonus"}, "balance_type"), ({"expiring_within_days": -1}, "expiring_within_days")],
)
def test_balance_with_bad_query_is_400_naming_the_parameter(api, customer, query, field):
    response = api.get(f"/api/v1/customers/{customer.pk}/points", query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["fields"]) == [field]


def test_reading_points_needs_the_points_read_scope(channel_client, customer):
    client = channel_client(ChannelFactory(scopes=["customers:read", "points:write"]))

    balance = client.get(f"/api/v1/customers/{customer.pk}/points")
    history = client.get(f"/api/v1/customers/{customer.pk}/points/history")

    assert (balance.status_code, balance.json()["error"]["code"]) == (403, "missing_scope")
    assert (history.status_code, history.json()["error"]["code"]) == (403, "missing_scope")


# --- history ---------------------------------------------------------------------------------


def test_history_shows_which_lots_a_redemption_consumed(api, customer):
    late = accrue(customer, 100, days=300)
    soon = accrue(customer, 100, days=10)
    redemption = points_redeem(customer=customer, amount=150, operation_key="erp:order:1042", now=NOW).entries[0]

    response = api.get(f"/api/v1/customers/{customer.pk}/points/history")

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 3
    assert body["results"][0] == {
        "id": redemption.pk,
        "kind": "redeem",
        "amount": "150.00",
        "available_delta": "-150.00",
        "pending_delta": "0.00",
        "held_delta": "0.00",
        "debt_delta": "0.00",
        "created_at": iso(NOW),
        "reason": "",
        "operation_key": "erp:order:1042",
        "hold_id": None,
        "reverses_id": None,
        "source_type": "",
        "source_id": "",
        "allocations": [
            {
                "lot_id": soon.pk,
                "lot_kind": "purchase",
                "lot_expires_at": iso(soon.expires_at),
                "points": "100.00",
                "remaining_delta": "-100.00",
                "held_delta": "0.00",
            },
            {
                "lot_id": late.pk,
                "lot_kind": "purchase",
                "lot_expires_at": iso(late.expires_at),
                "points": "50.00",
                "remaining_delta": "-50.00",
                "held_delta": "0.00",
            },
        ],
    }
    assert [row["kind"] for row in body["results"][1:]] == ["accrue", "accrue"]
    assert [row["allocations"][0]["lot_id"] for row in body["results"][1:]] == [soon.pk, late.pk]


def test_history_is_newest_first_per_balance_type_and_paginated(api, customer):
    first = accrue(customer, 10)
    second = accrue(customer, 20)
    accrue(customer, 5, balance_type="b2b")

    page = api.get(f"/api/v1/customers/{customer.pk}/points/history", {"page_size": 1})
    b2b = api.get(f"/api/v1/customers/{customer.pk}/points/history", {"balance_type": "b2b"})

    assert page.json()["count"] == 2
    assert [row["allocations"][0]["lot_id"] for row in page.json()["results"]] == [second.pk]
    assert page.json()["next"].endswith("page=2&page_size=1")
    assert [row["amount"] for row in b2b.json()["results"]] == ["5.00"]
    assert first.pk != second.pk


def test_history_of_a_hold_shows_points_moved_not_their_sum(api, customer):
    lot = accrue(customer, 100)
    points_hold(customer=customer, amount=40, operation_key=key(), now=NOW)

    response = api.get(f"/api/v1/customers/{customer.pk}/points/history")

    hold_line = response.json()["results"][0]
    assert (hold_line["kind"], hold_line["available_delta"], hold_line["held_delta"]) == ("hold", "-40.00", "40.00")
    assert hold_line["allocations"] == [
        {
            "lot_id": lot.pk,
            "lot_kind": "purchase",
            "lot_expires_at": iso(lot.expires_at),
            "points": "40.00",
            "remaining_delta": "-40.00",
            "held_delta": "40.00",
        }
    ]


@pytest.mark.parametrize("lots", [2, 30])
def test_history_query_count_does_not_grow_with_rows(api, customer, django_assert_max_num_queries, lots):
    for _ in range(lots):
        accrue(customer, 10)
    points_redeem(customer=customer, amount=lots * 10 - 5, operation_key=key(), now=NOW)

    # key lookup, last-used touch, balance type, customer, count, page, allocations with their lots
    with django_assert_max_num_queries(7):
        response = api.get(f"/api/v1/customers/{customer.pk}/points/history", {"page_size": 100})

    assert len(response.json()["results"]) == lots + 1
    assert len(response.json()["results"][0]["allocations"]) == lots


def test_balance_query_count_is_constant(api, customer, django_assert_max_num_queries):
    for _ in range(20):
        accrue(customer, 10, days=5)

    # key lookup, last-used touch, balance type, customer, account, expiring sum
    with django_assert_max_num_queries(6):
        response = api.get(f"/api/v1/customers/{customer.pk}/points")

    assert response.json()["expiring_soon"] == "200.00"


# --- holds -----------------------------------------------------------------------------------


@pytest.mark.smoke
def test_hold_then_commit_spends_the_points_and_replays_identically(api, customer, channel):
    accrue(customer, 500)

    held = post(api, hold_url(customer), {"amount": "300"}, idempotency_key="checkout-1")
    held_again = post(api, hold_url(customer), {"amount": "300"}, idempotency_key="checkout-1")
    hold = Hold.objects.get()
    committed = post(api, f"/api/v1/points/holds/{hold.pk}/commit", idempotency_key="pay-1")
    committed_again = post(api, f"/api/v1/points/holds/{hold.pk}/commit", idempotency_key="pay-1")

    assert held.status_code == 201
    assert held.json() == {
        "id": hold.pk,
        "customer_id": customer.pk,
        "balance_type": "retail",
        "amount": "300.00",
        "state": "open",
        "expires_at": iso(hold.expires_at),
        "created_at": iso(hold.created_at),
        "closed_at": None,
        "balance": {
            "balance_type": "retail",
            "available": "200.00",
            "pending": "0.00",
            "held": "300.00",
            "debt": "0.00",
            "expiring_soon": "0.00",
            "expiring_within_days": 30,
        },
    }
    assert (held_again.status_code, held_again.content, held_again["Idempotent-Replayed"]) == (
        201,
        held.content,
        "true",
    )
    assert committed.status_code == 200
    assert (committed.json()["state"], committed.json()["balance"]["held"]) == ("committed", "0.00")
    assert (committed_again.status_code, committed_again.content) == (200, committed.content)
    assert buckets(customer) == (D(200), D(0), D(0), D(0))
    assert Hold.objects.count() == 1
    assert list(Entry.objects.filter(kind__in=["hold", "redeem"]).values_list("operation_key", flat=True)) == [
        f"api:{channel.pk}:checkout-1",
        f"api:{channel.pk}:pay-1",
    ]
    assert set(Entry.objects.filter(operation_key__startswith="api:").values_list("actor_channel", flat=True)) == {
        channel.pk
    }
    assert_consistent()


@pytest.mark.parametrize("action", ["commit", "release"])
def test_hold_answers_are_what_the_documented_serializer_renders(api, customer, action):
    accrue(customer, 500.5)
    accrue(customer, 80, days=10)  # some of it expiring soon

    held = post(api, hold_url(customer), {"amount": "300.25", "timeout_seconds": 90}, idempotency_key="h").json()
    body = {"amount": "100.1"} if action == "commit" else None
    closed = post(api, f"/api/v1/points/holds/{held['id']}/{action}", body, idempotency_key="c").json()

    assert held["state"] == "open"
    assert closed["state"] == ("committed" if action == "commit" else "released")
    for answer in (held, closed):
        hold = hold_get(hold_id=answer["id"])
        hold.balance = points_balance(customer=customer)
        if answer is held:  # the balance right after the hold, before the second call changed it
            hold.state, hold.closed_at = Hold.State.OPEN, None
            points = ("available", "pending", "held", "debt", "expiring_soon")
            hold.balance = replace(hold.balance, **{name: D(answer["balance"][name]) for name in points})
        assert answer == HoldOutput(hold).data
        assert hold_answer(hold) == HoldOutput(hold).data


def test_hold_then_release_gives_the_points_back(api, customer):
    accrue(customer, 500)
    hold_id = post(api, hold_url(customer), {"amount": "300"}).json()["id"]

    released = post(api, f"/api/v1/points/holds/{hold_id}/release", idempotency_key="k2")

    assert released.status_code == 200
    assert (released.json()["state"], released.json()["balance"]["available"]) == ("released", "500.00")
    assert buckets(customer) == (D(500), D(0), D(0), D(0))
    assert_consistent()


def test_partial_commit_spends_part_and_releases_the_rest(api, customer):
    accrue(customer, 500)
    hold_id = post(api, hold_url(customer), {"amount": "300"}).json()["id"]

    committed = post(api, f"/api/v1/points/holds/{hold_id}/commit", {"amount": "120.50"}, idempotency_key="k2")

    assert committed.json()["state"] == "committed"
    assert buckets(customer) == (D("379.50"), D(0), D(0), D(0))
    assert_consistent()


def test_hold_with_timeout_and_first_order_uses_welcome_points(api, customer):
    points_accrue(
        customer=customer, amount=500, kind="welcome", restriction="first_order", operation_key=key(), now=NOW
    )

    refused = post(api, hold_url(customer), {"amount": "100"}, idempotency_key="k1")
    held = post(
        api, hold_url(customer), {"amount": "100", "first_order": True, "timeout_seconds": 600}, idempotency_key="k2"
    )

    assert refused.status_code == 409
    assert held.status_code == 201
    hold = Hold.objects.get()
    assert hold.expires_at - hold.created_at == timedelta(seconds=600)


def test_hold_of_more_than_spendable_is_409_and_changes_nothing(api, customer):
    accrue(customer, 100)

    response = post(api, hold_url(customer), {"amount": "100.01"})

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "insufficient_points",
            "message": "Not enough spendable points.",
            "fields": {},
            "spendable": "100.00",
            "requested": "100.01",
        }
    }
    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    assert not Hold.objects.exists()
    assert Entry.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "10", "timeout_seconds": 0}, "timeout_seconds"),
        ({"amount": "10", "balance_type": "bonus"}, "balance_type"),
    ],
)
def test_hold_with_bad_input_is_400_and_changes_nothing(api, customer, body, field):
    accrue(customer, 100)

    response = post(api, hold_url(customer), body)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert not Hold.objects.exists()


@pytest.mark.parametrize("sql_functions", [True, False], ids=["sql-functions", "python"])
@pytest.mark.parametrize("offset", [1000, 2**63], ids=["unknown", "past-bigint"])
def test_hold_for_unknown_customer_is_404(api, customer, settings, sql_functions, offset):
    # The hold is tried without reading the customer first: the refusal must still name the customer.
    settings.POINTS_LEDGER_SQL_FUNCTIONS = sql_functions
    response = post(api, f"/api/v1/customers/{customer.pk + offset}/points/holds", {"amount": "10"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"
    assert not Hold.objects.exists()
    assert not Account.objects.exclude(customer=customer).exists()


def test_hold_for_a_customer_without_points_is_409_not_404(api, customer):
    response = post(api, hold_url(customer), {"amount": "10"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_points"


@pytest.mark.parametrize("action", ["commit", "release"])
def test_unknown_hold_is_404(api, action):
    response = post(api, f"/api/v1/points/holds/999999/{action}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "hold_not_found"


def test_committing_a_released_hold_is_409_and_changes_nothing(api, customer):
    accrue(customer, 500)
    hold_id = post(api, hold_url(customer), {"amount": "300"}).json()["id"]
    post(api, f"/api/v1/points/holds/{hold_id}/release", idempotency_key="k2")

    response = post(api, f"/api/v1/points/holds/{hold_id}/commit", idempotency_key="k3")

    assert response.status_code == 409
    assert (response.json()["error"]["code"], response.json()["error"]["state"]) == ("hold_not_open", "released")
    assert buckets(customer) == (D(500), D(0), D(0), D(0))
    assert Hold.objects.get().state == Hold.State.RELEASED


def test_committing_more_than_held_is_400_and_changes_nothing(api, customer):
    accrue(customer, 500)
    hold_id = post(api, hold_url(customer), {"amount": "300"}).json()["id"]

    response = post(api, f"/api/v1/points/holds/{hold_id}/commit", {"amount": "300.01"}, idempotency_key="k2")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_amount"
    assert buckets(customer) == (D(200), D(0), D(300), D(0))
    assert Hold.objects.get().state == Hold.State.OPEN


def test_writing_points_needs_the_points_write_scope(channel_client, customer):
    accrue(customer, 500)
    hold = points_hold(customer=customer, amount=100, operation_key=key(), now=NOW).hold
    client = channel_client(ChannelFactory(scopes=["points:read"]))

    responses = [
        post(client, hold_url(customer), {"amount": "10"}),
        post(client, f"/api/v1/points/holds/{hold.pk}/commit"),
        post(client, f"/api/v1/points/holds/{hold.pk}/release"),
        post(client, f"/api/v1/customers/{customer.pk}/points/adjustments", {"amount": "10", "reason": "x"}),
    ]

    assert [(r.status_code, r.json()["error"]["code"]) for r in responses] == [(403, "missing_scope")] * 4
    assert buckets(customer) == (D(400), D(0), D(100), D(0))
    assert Hold.objects.get().state == Hold.State.OPEN


def test_a_write_without_idempotency_key_is_400_and_changes_nothing(api, customer):
    accrue(customer, 500)

    response = api.post(hold_url(customer), {"amount": "10"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert not Hold.objects.exists()


def test_retry_after_a_crash_does_not_hold_twice(api, customer, channel):
    # Given the first request's hold committed in the ledger, but the process died before its answer was
    # stored (the HTTP key was released or went stale): the retry runs the handler again.
    accrue(customer, 500)
    first = points_hold(customer=customer, amount=300, operation_key=f"api:{channel.pk}:checkout-7", now=NOW).hold

    retry = post(api, hold_url(customer), {"amount": "300"}, idempotency_key="checkout-7")

    assert retry.status_code == 201
    assert retry.json()["id"] == first.pk
    assert Hold.objects.count() == 1
    assert buckets(customer) == (D(200), D(0), D(300), D(0))


def test_a_key_too_long_for_the_ledger_is_hashed_into_the_operation_key(api, customer, channel):
    accrue(customer, 500)

    response = post(api, hold_url(customer), {"amount": "10"}, idempotency_key="k" * 255)

    assert response.status_code == 201
    operation_key = Hold.objects.get().operation_key
    assert operation_key.startswith(f"api-sha256:{channel.pk}:")
    assert len(operation_key) == len(f"api-sha256:{channel.pk}:") + 64


def test_the_same_idempotency_key_from_two_channels_is_two_operations(api, channel_client, customer):
    accrue(customer, 500)
    other = channel_client(ChannelFactory(scopes=["points:write"]))

    post(api, hold_url(customer), {"amount": "100"}, idempotency_key="checkout-1")
    post(other, hold_url(customer), {"amount": "100"}, idempotency_key="checkout-1")

    assert Hold.objects.count() == 2
    assert buckets(customer) == (D(300), D(0), D(200), D(0))


# --- adjustments -----------------------------------------------------------------------------


def adjust_url(customer) -> str:
    return f"/api/v1/customers/{customer.pk}/points/adjustments"


def test_adding_points_creates_a_manual_lot_recorded_with_channel_and_reason(api, customer, channel):
    expires_at = (NOW + timedelta(days=60)).replace(second=0)

    response = post(
        api,
        adjust_url(customer),
        {"amount": "500", "reason": "Late delivery, order 1042", "expires_at": expires_at.isoformat()},
    )

    lot = Lot.objects.get()
    entry = Entry.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "operation_key": f"api:{channel.pk}:k1",
        "entries": [
            {
                "id": entry.pk,
                "kind": "adjust",
                "amount": "500.00",
                "available_delta": "500.00",
                "pending_delta": "0.00",
                "held_delta": "0.00",
                "debt_delta": "0.00",
                "created_at": iso(entry.created_at),
                "reason": "Late delivery, order 1042",
                "operation_key": f"api:{channel.pk}:k1",
                "hold_id": None,
                "reverses_id": None,
                "source_type": "channel",
                "source_id": "",
                "allocations": [
                    {
                        "lot_id": lot.pk,
                        "lot_kind": "manual",
                        "lot_expires_at": iso(expires_at),
                        "points": "500.00",
                        "remaining_delta": "500.00",
                        "held_delta": "0.00",
                    }
                ],
            }
        ],
        "balance": {
            "balance_type": "retail",
            "available": "500.00",
            "pending": "0.00",
            "held": "0.00",
            "debt": "0.00",
            "expiring_soon": "0.00",
            "expiring_within_days": 30,
        },
    }
    assert (entry.actor_channel_id, entry.actor_user_id) == (channel.pk, None)
    assert (lot.kind, lot.expires_at) == ("manual", expires_at)


def test_removing_points_takes_soonest_expiring_first_and_replays(api, customer):
    soon = accrue(customer, 100, days=10)
    accrue(customer, 100, days=300)

    response = post(api, adjust_url(customer), {"amount": "-120", "reason": "Duplicate receipt"})
    again = post(api, adjust_url(customer), {"amount": "-120", "reason": "Duplicate receipt"})

    assert response.status_code == 201
    assert response.json()["entries"][0]["allocations"][0]["lot_id"] == soon.pk
    assert response.json()["balance"]["available"] == "80.00"
    assert (again.status_code, again.content) == (201, response.content)
    assert buckets(customer) == (D(80), D(0), D(0), D(0))
    assert_consistent()


def test_removing_more_than_spendable_is_409_and_changes_nothing(api, customer):
    accrue(customer, 100)

    response = post(api, adjust_url(customer), {"amount": "-100.01", "reason": "Correction"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_points"
    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    assert Entry.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "10"}, "reason"),
        ({"amount": "10", "reason": "   "}, "reason"),
        ({"amount": "0", "reason": "x"}, "amount"),
        ({"amount": "1.001", "reason": "x"}, "amount"),
        ({"amount": "10", "reason": "x", "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"amount": "-10", "reason": "x", "expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),
        ({"amount": "10", "reason": "x", "balance_type": "bonus"}, "balance_type"),
    ],
)
def test_adjustment_with_bad_input_is_400_and_changes_nothing(api, customer, body, field):
    accrue(customer, 100)

    response = post(api, adjust_url(customer), body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["fields"]) == [field]
    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    assert Entry.objects.count() == 1


def test_adjustment_for_unknown_customer_is_404_and_changes_nothing(api, customer):
    response = post(api, f"/api/v1/customers/{customer.pk + 1000}/points/adjustments", {"amount": "5", "reason": "x"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"
    assert not Entry.objects.exists()
