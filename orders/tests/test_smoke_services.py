from decimal import Decimal

import pytest

from orders.models import Order, OrderLine
from orders.services import LineRequest, order_cancel, order_deliver, order_return
from orders.tests.factories import place
from points.models import Account
from points.services import points_accrue, points_reconcile

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def balance(customer):
    account = Account.objects.filter(customer=customer).first()
    return (account.available, account.pending, account.debt) if account else (0, 0, 0)


def test_sofa_chairs_nightstand(channel, customer):
    points_accrue(customer=customer, amount="1000", kind="manual", operation_key="seed")
    order = place(channel, customer, redeem=Decimal("500"))
    assert order.points_redeemed == Decimal("500")
    available, pending, _ = balance(customer)
    assert available == Decimal("500")
    assert pending == order.points_to_earn > 0
    chairs = order.lines.get(line_number=2)
    delivery = order_deliver(order=order, lines=[LineRequest(2)], operation_key="d1")
    assert delivery.parent == order
    assert delivery.kind == Order.Kind.DELIVERY
    available2, pending2, _ = balance(customer)
    assert available2 == available + chairs.points_to_earn
    assert pending2 == pending - chairs.points_to_earn
    order_deliver(order=order, lines=[LineRequest(1, Decimal("1"))], operation_key="d2")
    order_cancel(order=order, lines=[LineRequest(3)], operation_key="c1")
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    order_return(order=order, lines=[LineRequest(2, Decimal("1"))], operation_key="r1")
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_RETURNED
    assert order.lines.filter(status=OrderLine.Status.RETURNED).count() == 1
    assert points_reconcile() == []
