"""Reservations (F-ORD-7, F-TIER-3): the tier's item limit and extra days, idempotent numbers, cancel, fulfil,
the expiry job, the API, the admin, and a race on the limit against PostgreSQL's row locks."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from functools import partial

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import orders.admin_reservations  # noqa: F401 (registers the admin until orders/admin.py imports it)
from core.actors import Actor
from customers.exceptions import CustomerMerged
from customers.tests.factories import CustomerFactory, StoreFactory
from integrations.scopes import Scope
from integrations.tests.factories import ChannelFactory
from orders.exceptions import (
    OrderInvalid,
    ReservationExists,
    ReservationLimitExceeded,
    ReservationNotActive,
    ReservationNotFound,
)
from orders.models import Reservation
from orders.services import reservations
from orders.services.reservations import (
    ReservationItem,
    reservation_cancel,
    reservation_create,
    reservation_find,
    reservation_fulfil,
    reservations_expire_due,
)
from orders.tasks import reservations_expire_task
from points.services import points_reconcile
from points.services.lifetimes import balance_types_ensure_defaults
from programmes.demo import programmes_ensure_demo
from programmes.models import Programme, Tier
from programmes.services import tier_assign_manual
from tests.helpers import run_together

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _demo_and_reconcile(request):
    """Transactional tests flush the migrations' programmes: put them back. Every scenario leaves the ledger
    reconciled (reservations never touch points)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    if marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        balance_types_ensure_defaults()
        programmes_ensure_demo()
    else:
        request.getfixturevalue("db")
    yield
    assert points_reconcile() == []


def tier(code: str) -> Tier:
    return Tier.objects.get(programme=Programme.objects.get(code="retail"), code=code)


def in_tier(code: str, **kwargs):
    customer = CustomerFactory(**kwargs)
    tier_assign_manual(customer=customer, tier=tier(code), actor=Actor(channel=ChannelFactory()), reason="test")
    return customer


def items(*quantities: int) -> list[ReservationItem]:
    return [ReservationItem(sku=f"SKU-{i}", quantity=q, name=f"Item {i}") for i, q in enumerate(quantities, 1)]


def reserve(channel, customer, *quantities: int, now=NOW, **kwargs):
    return reservation_create(
        channel=channel,
        number=kwargs.pop("number", None) or f"R-{next(_numbers)}",
        customer=customer,
        items=kwargs.pop("items", None) or items(*quantities),
        now=now,
        **kwargs,
    )


def row_state() -> list[tuple]:
    return list(Reservation.objects.order_by("pk").values_list("pk", "number", "status", "item_count", "closed_at"))


# --- the tier's limit and days -----------------------------------------------------------------


@pytest.mark.parametrize(("code", "limit"), [("basic", 5), ("silver", 5), ("gold", 7), ("platinum", 7)])
def test_the_tier_limits_the_items_reserved_at_once(channel, code, limit):
    customer = in_tier(code)
    reserve(channel, customer, 2)
    reserve(channel, customer, limit - 3, 1)
    before = row_state()

    with pytest.raises(ReservationLimitExceeded) as refused:
        reserve(channel, customer, 1)

    assert refused.value.code == "reservation_item_limit"
    assert refused.value.status_code == 422
    assert refused.value.extra == {"limit": limit, "reserved": limit, "requested": 1}
    assert row_state() == before


def test_one_reservation_above_the_limit_is_refused_and_nothing_is_written(channel):
    customer = in_tier("silver")

    with pytest.raises(ReservationLimitExceeded) as refused:
        reserve(channel, customer, 4, 2)

    assert refused.value.extra == {"limit": 5, "reserved": 0, "requested": 6}
    assert Reservation.objects.count() == 0


def test_a_customer_without_a_tier_row_has_the_entry_tiers_limit(channel):
    customer = CustomerFactory()
    reserve(channel, customer, 5)

    with pytest.raises(ReservationLimitExceeded):
        reserve(channel, customer, 1)


def test_other_customers_reservations_do_not_count(channel):
    reserve(channel, in_tier("silver"), 5)

    outcome = reserve(channel, in_tier("silver"), 5)

    assert outcome.reservation.item_count == 5


@pytest.mark.parametrize(("code", "days"), [("silver", 3), ("gold", 4), ("platinum", 4)])
def test_a_reservation_lasts_the_base_days_plus_the_tiers_bonus(channel, code, days):
    outcome = reserve(channel, in_tier(code), 1)

    reservation = Reservation.objects.get()
    assert outcome.replayed is False
    assert (reservation.created_at, reservation.expires_at) == (NOW, NOW + timedelta(days=days))
    assert (reservation.status, reservation.closed_at) == (Reservation.Status.ACTIVE, None)


def test_the_base_length_comes_from_the_setting(channel, settings):
    settings.RESERVATION_DAYS = 10

    reserve(channel, in_tier("gold"), 1)

    assert Reservation.objects.get().expires_at == NOW + timedelta(days=11)


def test_the_base_length_defaults_to_three_days():
    assert settings.RESERVATION_DAYS == 3


def test_items_are_stored_as_sent_and_counted_by_quantity(channel):
    store = StoreFactory()
    reserve(
        channel,
        in_tier("silver"),
        items=[ReservationItem("CHAIR-1", 2, "Kitchen chair"), ReservationItem("SOFA-1")],
        store=store,
        number="R-77",
    )

    reservation = Reservation.objects.get()
    assert (reservation.channel, reservation.number, reservation.store) == (channel, "R-77", store)
    assert reservation.items == [
        {"sku": "CHAIR-1", "quantity": 2, "name": "Kitchen chair"},
        {"sku": "SOFA-1", "quantity": 1, "name": ""},
    ]
    assert reservation.item_count == 3


def test_cancelled_fulfilled_and_expired_reservations_free_their_items(channel):
    customer = in_tier("silver")
    cancelled = reserve(channel, customer, 2).reservation
    fulfilled = reserve(channel, customer, 2).reservation
    past = reserve(channel, customer, 1, now=NOW - timedelta(days=3)).reservation  # expires exactly at NOW
    reservation_cancel(reservation=cancelled, now=NOW)
    reservation_fulfil(reservation=fulfilled, now=NOW)

    # The expired one counts no more although the job has not marked it yet.
    assert Reservation.objects.get(pk=past.pk).status == Reservation.Status.ACTIVE
    outcome = reserve(channel, customer, 5)

    assert outcome.reservation.item_count == 5


def test_the_limit_counts_a_reservation_until_its_expiry(channel):
    customer = in_tier("silver")
    reserve(channel, customer, 3, now=NOW - timedelta(days=3) + timedelta(seconds=1))

    with pytest.raises(ReservationLimitExceeded) as refused:
        reserve(channel, customer, 3)

    assert refused.value.extra["reserved"] == 3


# --- validation and idempotency -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "sent", "errors"),
    [
        ("R-1", [], {"items": ["empty"]}),
        ("", [ReservationItem("A")], {"number": ["invalid"]}),
        ("R-1", [ReservationItem("A"), ReservationItem("A", 2)], {"items.1.sku": ["duplicate"]}),
        ("R-1", [ReservationItem("A", 0)], {"items.0.quantity": ["invalid"]}),
        (
            "R-1",
            [ReservationItem("", 1), ReservationItem("B", 1, "x" * 201)],
            {"items.0.sku": ["invalid"], "items.1.name": ["max_length"]},
        ),
    ],
)
def test_invalid_reservations_are_refused_naming_the_field(channel, number, sent, errors):
    with pytest.raises(OrderInvalid) as refused:
        reservation_create(channel=channel, number=number, customer=CustomerFactory(), items=sent, now=NOW)

    got = {field: [error["code"] for error in found] for field, found in refused.value.fields.items()}
    assert got == errors
    assert Reservation.objects.count() == 0


def test_the_same_number_with_the_same_content_replays(channel):
    customer = in_tier("silver")
    first = reserve(channel, customer, 5, number="R-1")

    again = reservation_create(
        channel=channel, number="R-1", customer=customer, items=list(reversed(items(5))), now=NOW + timedelta(hours=1)
    )

    assert again.replayed is True
    assert again.reservation.pk == first.reservation.pk
    assert Reservation.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda: {"items": items(2)},
        lambda: {"customer": CustomerFactory()},
        lambda: {"store": StoreFactory()},
    ],
    ids=["items", "customer", "store"],
)
def test_the_same_number_with_other_content_is_refused(channel, change):
    customer = in_tier("silver")
    reserve(channel, customer, 1, number="R-1")
    before = row_state()
    arguments = {"items": items(1), "customer": customer, "store": None} | change()

    with pytest.raises(ReservationExists):
        reservation_create(channel=channel, number="R-1", now=NOW, **arguments)
    assert row_state() == before


def test_numbers_are_per_channel(channel):
    customer = in_tier("gold")
    reserve(channel, customer, 1, number="R-1")

    outcome = reserve(ChannelFactory(), customer, 1, number="R-1")

    assert outcome.replayed is False
    assert Reservation.objects.count() == 2


def test_a_merged_duplicate_cannot_reserve(channel):
    survivor = CustomerFactory()
    duplicate = CustomerFactory(merged_into=survivor, merged_at=NOW)

    with pytest.raises(CustomerMerged):
        reserve(channel, duplicate, 1)

    assert Reservation.objects.count() == 0


# --- cancel and fulfil ------------------------------------------------------------------------------


def test_cancel_frees_the_items_and_a_second_cancel_changes_nothing(channel):
    reservation = reserve(channel, in_tier("silver"), 2).reservation
    later = NOW + timedelta(hours=2)

    first = reservation_cancel(reservation=reservation, reason="changed mind", now=later)
    second = reservation_cancel(reservation=reservation, now=later + timedelta(hours=1))

    assert (first.replayed, second.replayed) == (False, True)
    reservation.refresh_from_db()
    assert (reservation.status, reservation.closed_at) == (Reservation.Status.CANCELLED, later)


def test_fulfil_an_active_reservation_then_neither_cancel_nor_fulfil_again_changes_it(channel):
    reservation = reserve(channel, in_tier("silver"), 2).reservation
    later = NOW + timedelta(days=1)

    assert reservation_fulfil(reservation=reservation, now=later).replayed is False
    assert reservation_fulfil(reservation=reservation, now=later).replayed is True
    with pytest.raises(ReservationNotActive) as refused:
        reservation_cancel(reservation=reservation, now=later)

    assert refused.value.extra == {"number": reservation.number, "status": "fulfilled"}
    reservation.refresh_from_db()
    assert (reservation.status, reservation.closed_at) == (Reservation.Status.FULFILLED, later)


@pytest.mark.parametrize("close", [reservation_cancel, reservation_fulfil])
def test_a_reservation_past_its_expiry_can_be_neither_cancelled_nor_fulfilled(channel, close):
    reservation = reserve(channel, in_tier("gold"), 2).reservation
    before = row_state()

    with pytest.raises(ReservationNotActive) as refused:
        close(reservation=reservation, now=reservation.expires_at)

    assert refused.value.extra["status"] == "expired"
    assert row_state() == before


def test_fulfilling_a_cancelled_reservation_is_refused(channel):
    reservation = reserve(channel, in_tier("silver"), 2).reservation
    reservation_cancel(reservation=reservation, now=NOW)
    before = row_state()

    with pytest.raises(ReservationNotActive):
        reservation_fulfil(reservation=reservation, now=NOW)

    assert row_state() == before


def test_find_is_per_channel(channel):
    reservation = reserve(channel, in_tier("silver"), 1, number="R-9").reservation

    assert reservation_find(channel=channel, number="R-9") == reservation
    with pytest.raises(ReservationNotFound):
        reservation_find(channel=ChannelFactory(), number="R-9")


# --- the expiry job ----------------------------------------------------------------------------------


def test_the_expiry_job_marks_due_reservations_once_and_a_second_run_changes_nothing(channel):
    customer = in_tier("gold")
    due = [reserve(channel, customer, 1, now=NOW - timedelta(days=days)).reservation for days in (4, 5)]
    live = reserve(channel, customer, 1).reservation
    cancelled = reserve(channel, customer, 1, now=NOW - timedelta(days=6)).reservation
    reservation_cancel(reservation=cancelled, now=NOW - timedelta(days=5))

    first = reservations_expire_due(now=NOW, chunk_size=1)
    after_first = row_state()
    second = reservations_expire_due(now=NOW + timedelta(minutes=1))

    assert (first, second) == (2, 0)
    assert row_state() == after_first
    statuses = dict(Reservation.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in due] == ["expired", "expired"]
    assert statuses[live.pk] == "active"
    assert statuses[cancelled.pk] == "cancelled"
    assert set(Reservation.objects.filter(pk__in=[r.pk for r in due]).values_list("closed_at", flat=True)) == {NOW}


def test_the_expiry_task_runs_the_job_and_beat_runs_it_hourly(channel):
    reserve(channel, in_tier("silver"), 1, now=timezone.now() - timedelta(days=4))

    assert reservations_expire_task.delay().get() == 1
    assert Reservation.objects.get().status == Reservation.Status.EXPIRED
    assert settings.CELERY_BEAT_SCHEDULE["orders-reservations-expire"] == {
        "task": reservations_expire_task.name,
        "schedule": timedelta(hours=1),
    }


# --- API -------------------------------------------------------------------------------------------


def post(client, url, body=None, *, key=None):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or f"k-{next(_numbers)}")


def create_url(customer) -> str:
    return f"/api/v1/customers/{customer.pk}/reservations"


BODY = {
    "number": "R-1042",
    "items": [{"sku": "CHAIR-1", "quantity": 2, "name": "Kitchen chair"}, {"sku": "SOFA-1", "name": "Sofa"}],
}


def test_api_create_answers_201_with_the_reservation(api, channel):
    customer = in_tier("gold")
    store = StoreFactory(code="msk-1")

    response = post(api, create_url(customer), BODY | {"store": "msk-1"})

    assert response.status_code == 201, response.json()
    reservation = Reservation.objects.get()
    body = response.json()
    assert body == {
        "number": "R-1042",
        "source": channel.code,
        "customer_id": customer.pk,
        "store": store.code,
        "items": [
            {"sku": "CHAIR-1", "quantity": 2, "name": "Kitchen chair"},
            {"sku": "SOFA-1", "quantity": 1, "name": "Sofa"},
        ],
        "item_count": 3,
        "status": "active",
        "created_at": body["created_at"],
        "expires_at": body["expires_at"],
        "closed_at": None,
    }
    assert reservation.expires_at - reservation.created_at == timedelta(days=4)


def test_api_create_replayed_under_a_new_key_answers_200_and_writes_nothing(api):
    customer = in_tier("silver")
    first = post(api, create_url(customer), BODY)

    again = post(api, create_url(customer), BODY)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Reservation.objects.count() == 1


def test_api_create_above_the_limit_is_422_with_the_figures_and_writes_nothing(api):
    customer = in_tier("silver")
    assert post(api, create_url(customer), BODY).status_code == 201
    before = row_state()

    response = post(api, create_url(customer), {"number": "R-2", "items": [{"sku": "X", "quantity": 3}]})

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["limit"], error["reserved"], error["requested"]) == ("reservation_item_limit", 5, 3, 3)
    assert row_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "R-1", "items": []}, "items.non_field_errors"),
        ({"items": [{"sku": "A"}]}, "number"),
        ({"number": "R-1", "items": [{"sku": "A", "quantity": 0}]}, "items.0.quantity"),
        ({"number": "R-1", "items": [{"sku": "A"}, {"sku": "A"}]}, "items"),
        ({"number": "R-1", "store": "nowhere", "items": [{"sku": "A"}]}, "store"),
    ],
)
def test_api_create_with_a_bad_body_is_400_naming_the_field(api, body, field):
    response = post(api, create_url(CustomerFactory()), body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert Reservation.objects.count() == 0


def test_api_create_with_a_taken_number_and_other_items_is_refused(api):
    customer = in_tier("silver")
    post(api, create_url(customer), BODY)
    before = row_state()

    response = post(api, create_url(customer), BODY | {"items": [{"sku": "OTHER"}]})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "reservation_exists"
    assert row_state() == before


def test_api_create_for_an_unknown_customer_is_404(api):
    response = post(api, "/api/v1/customers/999999/reservations", BODY)

    assert (response.status_code, response.json()["error"]["code"]) == (404, "customer_not_found")
    assert Reservation.objects.count() == 0


def test_api_needs_the_orders_scopes(channel_client):
    reader = channel_client(ChannelFactory(scopes=[Scope.ORDERS_READ]))
    customer = CustomerFactory()

    refused = post(reader, create_url(customer), BODY)
    listed = reader.get(create_url(customer))

    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "missing_scope")
    assert listed.status_code == 200
    assert Reservation.objects.count() == 0


def test_api_create_needs_an_idempotency_key(api):
    response = api.post(create_url(CustomerFactory()), BODY, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "idempotency_key_required")


# Statements of POST /customers/{id}/reservations in production (savepoints, which stand for BEGIN/COMMIT inside a
# test, left out): the idempotency claim (the API key was looked up on its first use, and the worker trusts it for
# API_KEY_CACHE_SECONDS), the customer, the customer's row lock, the number look-up
# under it, the customer's programme and tier row (and the programme's tiers when the customer has no row yet:
# the entry tier), the reserved count, the insert, the idempotency record's completion.
CREATE_STATEMENTS = 9


@pytest.mark.parametrize(("tier_row", "statements"), [(True, CREATE_STATEMENTS), (False, CREATE_STATEMENTS + 1)])
def test_api_create_takes_a_fixed_number_of_statements(api, tier_row, statements):
    customer = in_tier("silver") if tier_row else CustomerFactory()
    reserve(ChannelFactory(), customer, 1)  # counted by the same one statement however many there are
    post(api, create_url(customer), {"number": "R-0", "items": [{"sku": "A"}]})  # the API key's first use

    with CaptureQueriesContext(connection) as captured:
        response = post(api, create_url(customer), BODY)

    sent = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert response.status_code == 201
    assert len(sent) == statements, "\n".join(sent)
    locks = [sql for sql in sent if "FOR NO KEY UPDATE" in sql]
    assert len(locks) == 1
    assert 'FROM "customers_customer"' in locks[0]
    assert sent.index(locks[0]) < next(i for i, sql in enumerate(sent) if 'SUM("orders_reservation"' in sql)


def test_api_lists_the_customers_reservations_active_first_then_newest(api, channel):
    customer = in_tier("gold")
    expired = reserve(channel, customer, 1, now=NOW - timedelta(days=10)).reservation
    older_active = reserve(channel, customer, 1, now=NOW - timedelta(days=2)).reservation
    cancelled = reserve(channel, customer, 1, now=NOW - timedelta(days=1)).reservation
    reservation_cancel(reservation=cancelled, now=NOW)
    newer_active = reserve(channel, customer, 1, now=NOW - timedelta(hours=1)).reservation
    reserve(channel, in_tier("gold"), 1)  # someone else's

    response = api.get(create_url(customer))
    active = api.get(create_url(customer), {"status": "active"})
    lapsed = api.get(create_url(customer), {"status": "expired"})

    assert response.status_code == 200
    assert [(r["number"], r["status"]) for r in response.json()["results"]] == [
        (newer_active.number, "active"),
        (older_active.number, "active"),
        (cancelled.number, "cancelled"),
        (expired.number, "expired"),  # not marked by the job yet: shown as it is
    ]
    assert [r["number"] for r in active.json()["results"]] == [newer_active.number, older_active.number]
    assert [r["number"] for r in lapsed.json()["results"]] == [expired.number]


def test_api_cancel_and_fulfil(api, channel):
    customer = in_tier("silver")
    to_cancel = reserve(channel, customer, 1, now=timezone.now()).reservation
    to_fulfil = reserve(channel, customer, 1, now=timezone.now()).reservation

    cancelled = post(api, f"/api/v1/reservations/{to_cancel.number}/cancel", {"reason": "changed mind"})
    fulfilled = post(api, f"/api/v1/reservations/{to_fulfil.number}/fulfil")
    late = post(api, f"/api/v1/reservations/{to_cancel.number}/fulfil")

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (fulfilled.status_code, fulfilled.json()["status"]) == (200, "fulfilled")
    assert (late.status_code, late.json()["error"]["code"], late.json()["error"]["status"]) == (
        409,
        "reservation_not_active",
        "cancelled",
    )
    assert dict(Reservation.objects.values_list("number", "status")) == {
        to_cancel.number: "cancelled",
        to_fulfil.number: "fulfilled",
    }


def test_api_acts_on_another_channels_reservation_named_by_source(api):
    site = ChannelFactory(code="site")
    reservation = reserve(site, in_tier("silver"), 1, number="R-5", now=timezone.now()).reservation

    mine = post(api, "/api/v1/reservations/R-5/fulfil")
    theirs = post(api, "/api/v1/reservations/R-5/fulfil?source=site")
    unknown = post(api, "/api/v1/reservations/R-5/fulfil?source=nowhere")

    assert (mine.status_code, mine.json()["error"]["code"]) == (404, "reservation_not_found")
    assert (theirs.status_code, theirs.json()["source"]) == (200, "site")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "reservation_not_found")
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.FULFILLED


def test_api_a_number_with_a_nul_character_is_not_found(api):
    response = post(api, "/api/v1/reservations/R%00X/cancel")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "reservation_not_found")


# --- admin -------------------------------------------------------------------------------------------


def list_url() -> str:
    return reverse("admin:orders_reservation_changelist")


def test_admin_lists_reservations_and_finds_them_by_number_or_phone(admin_client, channel):
    customer = in_tier("silver", phone="+79161234567")
    reservation = reserve(channel, customer, 1, number="R-31").reservation
    other = reserve(channel, in_tier("silver"), 1, number="R-32").reservation

    everything = admin_client.get(list_url(), {"status__exact": "active"})
    by_phone = admin_client.get(list_url(), {"q": "8 916 123-45-67"})
    by_number = admin_client.get(list_url(), {"q": "R-32"})
    page = admin_client.get(reverse("admin:orders_reservation_change", args=[reservation.pk]))

    assert everything.status_code == 200
    assert list(everything.context["cl"].result_list) == [other, reservation]
    assert list(by_phone.context["cl"].result_list) == [reservation]
    assert list(by_number.context["cl"].result_list) == [other]
    assert page.status_code == 200
    assert "SKU-1" in page.content.decode()


def test_admin_cancel_asks_for_a_reason_then_cancels_and_logs_it(admin_client, admin_user, channel):
    reservation = reserve(channel, in_tier("silver"), 1, now=timezone.now()).reservation
    fulfilled = reserve(channel, in_tier("silver"), 1, now=timezone.now()).reservation
    reservation_fulfil(reservation=fulfilled)
    selected = {"action": "cancel_reservations", "_selected_action": [reservation.pk, fulfilled.pk]}

    confirmation = admin_client.post(list_url(), selected)
    unreasoned = admin_client.post(list_url(), selected | {"confirmed": "yes", "reason": ""})
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.ACTIVE
    done = admin_client.post(list_url(), selected | {"confirmed": "yes", "reason": "Customer called"}, follow=True)

    assert confirmation.status_code == 200
    assert "Customer called" not in confirmation.content.decode()
    assert reservation.number in confirmation.content.decode()
    assert '<textarea name="reason"' in confirmation.content.decode()
    assert 'name="confirmed" value="yes"' in confirmation.content.decode()
    assert unreasoned.status_code == 200
    assert unreasoned.context["form"].errors == {"reason": ["This field is required."]}
    assert dict(Reservation.objects.values_list("pk", "status")) == {
        reservation.pk: "cancelled",
        fulfilled.pk: "fulfilled",
    }
    texts = [str(message) for message in done.context["messages"]]
    assert "1 reservation cancelled." in texts
    assert any(fulfilled.number in text for text in texts)
    log = LogEntry.objects.get(object_id=str(reservation.pk))
    assert (log.action_flag, log.user, log.change_message) == (CHANGE, admin_user, "Cancelled: Customer called")


def test_admin_cancel_needs_the_change_permission(client, channel):
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reservation"))
    client.force_login(user)
    reservation = reserve(channel, in_tier("silver"), 1, now=timezone.now()).reservation

    page = client.get(list_url())
    refused = client.post(
        list_url(),
        {"action": "cancel_reservations", "_selected_action": [reservation.pk], "confirmed": "yes", "reason": "x"},
    )

    assert page.status_code == 200
    assert "cancel_reservations" not in page.content.decode()
    assert refused.status_code == 200  # the plain list: no action is offered to this user
    assert "Cancel these reservations?" not in refused.content.decode()
    assert Reservation.objects.get().status == Reservation.Status.ACTIVE


# --- races -------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_reservations_over_the_limit_exactly_one_succeeds(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.fail("the race tests need PostgreSQL: its row locks are what they prove")
    channel = ChannelFactory()
    customer = in_tier("silver")
    reserve(channel, customer, 3)  # 2 left: two reservations of 2 cannot both pass
    counted = reservations._reserved_items

    def count_slowly(*args):
        # Widen the window between counting and inserting: without the customer's lock both would count 3.
        total = counted(*args)
        time.sleep(0.3)
        return total

    monkeypatch.setattr(reservations, "_reserved_items", count_slowly)

    outcomes = run_together(*[partial(reserve, channel, customer, 2, number=f"RACE-{i}") for i in range(2)])

    assert [type(o).__name__ for o in outcomes if not hasattr(o, "reservation")] == ["ReservationLimitExceeded"]
    assert Reservation.objects.filter(number__startswith="RACE-").count() == 1
    assert Reservation.objects.filter(customer=customer).values_list("item_count", flat=True).count() == 2
    assert sum(Reservation.objects.filter(customer=customer).values_list("item_count", flat=True)) == 5


@pytest.mark.django_db(transaction=True)
def test_the_same_number_sent_twice_at_once_makes_one_reservation():
    channel = ChannelFactory()
    customer = in_tier("silver")

    outcomes = run_together(*[partial(reserve, channel, customer, 3, number="R-TWICE")] * 2)

    assert [getattr(o, "replayed", o) for o in outcomes].count(False) == 1
    assert sorted(o.replayed for o in outcomes) == [False, True]
    assert Reservation.objects.count() == 1
