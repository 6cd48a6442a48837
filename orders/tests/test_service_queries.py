"""Round trips of the order services (the API adds authentication, idempotency and rendering on top)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.services import LineRequest, order_deliver, order_return
from orders.tests.factories import place
from points.services import points_accrue

pytestmark = pytest.mark.django_db


def test_statements_per_operation(channel, customer):
    points_accrue(customer=customer, amount="5000", kind="manual", operation_key="seed")
    place(channel, customer, redeem=Decimal("100"))  # warms the rulebook
    with CaptureQueriesContext(connection) as placing:
        order = place(channel, customer, redeem=Decimal("100"))
    with CaptureQueriesContext(connection) as delivering:
        order_deliver(order=order, lines=[LineRequest(2, Decimal("1"))], operation_key="d")
    with CaptureQueriesContext(connection) as returning:
        order_return(order=order, lines=[LineRequest(2)], operation_key="r")
    # Measured: 20 / 39 (a split line, its lot split, the tier upgrade of a first purchase) / 19 (31 / 61 / 29
    # before the journal became one statement and the answers were built from the rows the services hold).
    # Placing: 15 since the lots ride on the journal's statement (with their lifetime), the lines' ids come with the
    # order's insert (lines inserted with their lots, not updated after) and the accrual has no savepoint of its own.
    # Delivering: 36 since the tier check takes the tiers from the rules-version cache, without a savepoint.
    # 13 / 32 / 17 since the ledger calls inside an order's transaction (redemption, split, unlock, clawback) take no
    # savepoint: the one left in a delivery is the tier row a first purchase creates.
    # 11 / 28 / 14 since the order is locked and read with its parties by one statement, the event is claimed by the
    # statement that reads the lines (placing: that inserts the order), a delivery's event result and the order's
    # status are written together, a return's line part is a plain insert, a purchase record reads its programme,
    # and the points' payment is inserted with the lines.
    assert len(placing) <= 11
    assert len(delivering) <= 28
    assert len(returning) <= 14
    inner_savepoints = [query for query in delivering.captured_queries if query["sql"].startswith("SAVEPOINT")][1:]
    assert len(inner_savepoints) == 1


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@pytest.mark.parametrize("with_parties", [True, False])
def test_the_plain_order_reads_are_what_the_orm_reads(channel, customer, with_parties):
    from customers.tests.factories import StoreFactory
    from orders.models import Order
    from orders.selectors import order_lines_of, order_with_parties

    order = place(channel, customer, store=StoreFactory()) if with_parties else place(channel, phone="+79161234567")

    read = order_with_parties(order_id=order.pk)
    expected = Order.objects.select_related("customer", "channel", "store").get(pk=order.pk)
    lines = order_lines_of(read)
    expected_lines = list(expected.lines.order_by("line_number", "part"))
    order_deliver(order=order, lines=[LineRequest(1)], operation_key=f"d-{with_parties}")
    with_deliveries = order_lines_of(read, deliveries=True)
    expected_deliveries = list(expected.lines.select_related("delivery").order_by("line_number", "part"))

    assert _fields(read) == _fields(expected)
    for party in ("customer", "channel", "store"):
        got, wanted = getattr(read, party), getattr(expected, party)
        assert (got is None) == (wanted is None)
        assert got is None or _fields(got) == _fields(wanted)
    assert (read.customer is not None, read.store is not None) == (with_parties, with_parties)
    assert [_fields(line) for line in lines] == [_fields(line) for line in expected_lines]
    assert all(line.order is read for line in lines)
    assert [(_fields(line), line.delivery and _fields(line.delivery)) for line in with_deliveries] == [
        (_fields(line), line.delivery and _fields(line.delivery)) for line in expected_deliveries
    ]
    assert [line.delivery is not None for line in with_deliveries] == [True, False, False]
    with CaptureQueriesContext(connection) as after:
        parties = (read.customer, read.store, read.channel, lines[0].order)  # cached: no query
    assert len(after) == 0
    assert parties[3] is read


def test_the_plain_order_by_number_is_what_the_orm_finds(channel, customer):
    from orders.models import Order
    from orders.selectors import order_named

    order = place(channel, customer)
    order_deliver(order=order, lines=[LineRequest(1)], operation_key="d-named")

    for number in (order.number, f"{order.number}/1", "no-such-order"):
        found = order_named(channel=channel, number=number)
        expected = Order.objects.filter(channel=channel, number=number).only("pk", "kind", "parent_id").first()
        assert (found and (found.pk, found.kind, found.parent_id)) == (
            expected and (expected.pk, expected.kind, expected.parent_id)
        )
        assert found is None or found.get_deferred_fields() == expected.get_deferred_fields()
