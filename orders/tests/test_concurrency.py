"""Races on orders with real threads on PostgreSQL: the order's row lock (taken before any ledger lock) and the
unique order number, not luck, keep each line delivered once and each number placed once.

Each thread has its own database connection (closed when it ends) and all start together on a barrier; where
a race needs one particular interleaving, the test holds a lock in a third transaction and lets go once the
threads are seen waiting (``pg_stat_activity``), so the outcome does not depend on timing.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from functools import partial

import pytest
from django.db import connection, transaction

from core.actors import Actor
from customers.exceptions import CustomerMerged
from customers.models import Customer
from customers.services import customer_merge
from customers.tests.factories import CustomerFactory, NonMemberFactory
from integrations.tests.factories import ChannelFactory
from orders.exceptions import OrderLineNotPlaced
from orders.models import Order, OrderEvent, OrderLine, Payment
from orders.services import LineRequest, Placed, order_attach_customer, order_deliver, order_place
from orders.tests.factories import D, balances, furniture_lines, key, place, seed_points
from points.locks import account_lock
from points.models import Account, Entry, Lot
from points.services import points_reconcile
from tests.helpers import run_together

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("the race tests need PostgreSQL: its row locks are what they prove")


@pytest.fixture
def channel():
    return ChannelFactory()  # the root fixture asks for ``db``; these tests commit


def errors(outcomes: list[object]) -> list[object]:
    return [outcome for outcome in outcomes if isinstance(outcome, BaseException)]


def assert_reconciled() -> None:
    problems = points_reconcile()
    assert problems == [], problems


def lock_waiters() -> int:
    """How many other sessions of this database wait for a row lock right now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is a snapshot per transaction otherwise
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_lock_waiters(count: int) -> None:
    deadline = time.monotonic() + 10
    while lock_waiters() < count:
        assert time.monotonic() < deadline, f"expected {count} sessions waiting for a lock"
        time.sleep(0.02)


def start(call) -> tuple[threading.Thread, list]:
    """``call`` in a thread of its own (its own connection); its result or exception lands in the list."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            outcome.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_two_deliveries_of_one_line_at_once_deliver_it_once(channel):
    customer = CustomerFactory()
    order = place(channel, customer)

    outcomes = run_together(
        *[partial(order_deliver, order=order, lines=[LineRequest(2)], operation_key=f"deliver:{i}") for i in range(2)]
    )

    deliveries = [outcome for outcome in outcomes if isinstance(outcome, Order)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, OrderLineNotPlaced)]
    assert (len(deliveries), len(refused), len(outcomes)) == (1, 1, 2)
    assert refused[0].code == "order_line_not_placed"
    assert list(order.deliveries.values_list("pk", flat=True)) == [deliveries[0].pk]
    assert list(order.lines.values_list("line_number", "status")) == [(1, "placed"), (2, "delivered"), (3, "placed")]
    assert Entry.objects.filter(kind=Entry.Kind.UNLOCK).count() == 1
    assert OrderEvent.objects.filter(kind=OrderEvent.Kind.DELIVER).count() == 1
    assert balances(customer) == (D(1000), D(5100), D(0))
    assert_reconciled()


def test_the_same_delivery_sent_twice_at_once_has_one_effect(channel):
    customer = CustomerFactory()
    order = place(channel, customer)

    outcomes = run_together(
        *[partial(order_deliver, order=order, lines=[LineRequest(2, Decimal(3))], operation_key="erp:d:1")] * 2
    )

    assert errors(outcomes) == []
    assert len({outcome.pk for outcome in outcomes}) == 1
    assert order.lines.filter(status=OrderLine.Status.DELIVERED).get().quantity == 3
    assert balances(customer) == (D(750), D(5350), D(0))
    assert_reconciled()


def test_deliveries_of_different_lines_at_once_each_get_their_own_sub_order(channel):
    customer = CustomerFactory()
    order = place(channel, customer)

    outcomes = run_together(
        *[partial(order_deliver, order=order, lines=[LineRequest(n)], operation_key=f"d:{n}") for n in (1, 2, 3)]
    )

    assert errors(outcomes) == []
    assert sorted(outcome.number for outcome in outcomes) == [f"{order.number}/{n}" for n in (1, 2, 3)]
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert balances(customer) == (D(6100), D(0), D(0))
    assert_reconciled()


@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "other-keys"])
def test_one_number_placed_twice_at_once_is_one_order_and_the_other_call_replays_it(channel, same_key):
    customer = CustomerFactory()
    seed_points(customer, "1000")
    place_it = partial(
        order_place, channel=channel, number="SITE-42", customer=customer, lines=furniture_lines(), redeem=D(400)
    )

    outcomes = run_together(
        *[partial(place_it, operation_key="site:42" if same_key else f"site:42:{i}") for i in range(2)]
    )

    assert errors(outcomes) == []
    assert sorted(outcome.replayed for outcome in outcomes if isinstance(outcome, Placed)) == [False, True]
    assert len({outcome.order.pk for outcome in outcomes}) == 1
    assert Order.objects.filter(number="SITE-42").count() == 1
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM).count() == 1
    assert Payment.objects.filter(method=Payment.Method.POINTS).count() == 1
    assert balances(customer) == (D(600), D(6080), D(0))  # the sofa earns on 89,600
    assert_reconciled()


def test_a_delivery_that_waited_for_the_attachment_of_its_order_books_on_the_customer(channel):
    order = place(channel, None, phone="+79165550000")
    customer = NonMemberFactory()

    with transaction.atomic():  # the attachment, not yet committed, holds the order's lock
        order_attach_customer(order=order, customer=customer, operation_key=key())
        delivering, delivered = start(partial(order_deliver, order=order, lines=[LineRequest(2)], operation_key=key()))
        wait_for_lock_waiters(1)
    delivering.join(timeout=30)

    assert errors(delivered) == []
    states = dict(order.lines.values_list("line_number", "lot__state"))
    assert states == {1: Lot.State.PENDING, 2: Lot.State.ACTIVE, 3: Lot.State.PENDING}
    assert balances(customer) == (D(1000), D(5100), D(0))
    assert_reconciled()


def merge_interleaved_with(duplicate, survivor, channel, call, *, hold) -> tuple[object, object]:
    """The merge of ``duplicate`` into ``survivor`` and ``call`` interleaved as they would be at a bad moment:
    the merge waits for a lock ``hold`` takes here, in a third transaction; ``call`` starts and runs until it
    waits too; then the lock is let go. The two outcomes."""
    with transaction.atomic():
        hold()
        merging, merged = start(
            partial(customer_merge, duplicate=duplicate, survivor=survivor, actor=Actor(channel=channel), reason="same")
        )
        wait_for_lock_waiters(1)
        calling, called = start(call)
        wait_for_lock_waiters(2)
    merging.join(timeout=30)
    calling.join(timeout=30)
    assert not merging.is_alive(), "the merge is stuck"
    assert not calling.is_alive(), "the call is stuck"
    return merged[0], called[0]


def test_a_delivery_caught_in_a_merge_of_its_customer_waits_and_unlocks_the_moved_lot(channel):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    order = place(channel, duplicate)

    merged, delivered = merge_interleaved_with(
        duplicate,
        survivor,
        channel,
        partial(order_deliver, order=order, lines=[LineRequest(2)], operation_key=key()),
        # the merge has locked the customers and waits for the duplicate's points account
        hold=partial(account_lock, account_id=Account.objects.get(customer=duplicate).pk),
    )

    assert errors([merged, delivered]) == []
    assert balances(survivor) == (D(1000), D(5100), D(0))
    assert balances(duplicate) == (D(0), D(0), D(0))
    order.refresh_from_db()
    assert order.customer_id == survivor.pk
    assert_reconciled()


def test_an_order_attached_to_a_customer_caught_in_a_merge_does_not_end_on_the_duplicate(channel):
    duplicate, survivor = CustomerFactory(), CustomerFactory()  # the duplicate, older, is locked first
    order = place(channel, None, phone="+79165550001")

    merged, attached = merge_interleaved_with(
        duplicate,
        survivor,
        channel,
        partial(order_attach_customer, order=order, customer=duplicate, operation_key=key()),
        # the merge has locked the duplicate and waits for the survivor's row
        hold=lambda: Customer.objects.select_for_update().get(pk=survivor.pk),
    )

    assert merged == survivor
    order.refresh_from_db()
    # Refused (the customer was merged) or attached to the survivor: never to the merged duplicate.
    assert isinstance(attached, CustomerMerged) or order.customer_id == survivor.pk
    assert order.customer_id != duplicate.pk
    assert balances(duplicate) == (D(0), D(0), D(0))
    assert balances(survivor) == ((D(0), D(6100), D(0)) if order.customer_id else (D(0), D(0), D(0)))
    assert_reconciled()
