import pytest

from core.demo import demo_data_load
from orders.demo import FURNITURE_ORDER, RECEIPT, UNKNOWN_BUYER
from orders.models import Order, OrderLine
from points.models import Lot

pytestmark = pytest.mark.django_db


def test_demo_orders_show_a_partial_delivery_and_a_receipt_to_match():
    demo_data_load()

    order = Order.objects.get(number=FURNITURE_ORDER)
    assert order.status == Order.Status.PARTIALLY_DELIVERED
    assert order.deliveries.count() == 1
    chairs = order.lines.get(line_number=2)
    assert chairs.status == OrderLine.Status.DELIVERED
    assert chairs.lot.state == Lot.State.ACTIVE
    assert order.lines.get(line_number=1).lot.state == Lot.State.PENDING
    receipt = Order.objects.get(number=RECEIPT)
    assert receipt.customer is None
    assert str(receipt.phone) == UNKNOWN_BUYER
    assert receipt.status == Order.Status.DELIVERED
