"""Order services: the only code that writes orders, their lines, payments and events — and, through the ledger's
services, the points they earn and spend."""

from orders.services.common import LineRequest, OrderNumber, order_find
from orders.services.fulfilment import order_cancel, order_deliver, order_redeliver, order_return
from orders.services.matching import order_attach_customer
from orders.services.payments import order_pay
from orders.services.placing import NewLine, NewPayment, Placed, order_place

__all__ = [
    "LineRequest",
    "NewLine",
    "NewPayment",
    "OrderNumber",
    "Placed",
    "order_attach_customer",
    "order_cancel",
    "order_deliver",
    "order_find",
    "order_pay",
    "order_place",
    "order_redeliver",
    "order_return",
]
