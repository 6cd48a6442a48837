"""Demo orders for ``make run``, placed through the order services like channel traffic: the case study's sofa,
chairs and nightstand with the chairs delivered, and a receipt that waits to be matched to its buyer."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from core.actors import Actor
from customers.models import Customer
from integrations.models import Channel, Store
from orders.models import Order
from orders.services import LineRequest, NewLine, order_deliver, order_place

FURNITURE_ORDER = "DEMO-1001"
RECEIPT = "DEMO-R-2001"
IRINA = "+79857776655"
UNKNOWN_BUYER = "+79161110099"


def demo_orders_load(*, now: datetime, site: Channel, showroom: Channel, store: Store) -> list[str]:
    """Place the demo orders that are not there yet; returns what was created."""
    created = []
    irina = Customer.objects.filter(phone=IRINA, merged_into__isnull=True).first()
    if irina is not None and not Order.objects.filter(channel=site, number=FURNITURE_ORDER).exists():
        placed = order_place(
            channel=site,
            number=FURNITURE_ORDER,
            customer=irina,
            created_at=now - timedelta(days=2),
            lines=[
                NewLine(1, "SOFA-OSLO-3", Decimal("1"), Decimal("89990.00"), name="Sofa Oslo, 3 seats"),
                NewLine(2, "CHAIR-MALMO", Decimal("4"), Decimal("4990.00"), name="Chair Malmö"),
                NewLine(
                    3, "NIGHTSTAND-LUND", Decimal("1"), Decimal("7490.00"), name="Nightstand Lund", category="bedroom"
                ),
            ],
            operation_key=f"demo:order:{FURNITURE_ORDER}",
            actor=Actor(channel=site),
            now=now - timedelta(days=2),
        )
        order_deliver(
            order=placed.order,
            lines=[LineRequest(2)],
            number=f"{FURNITURE_ORDER}-D1",
            delivered_at=now - timedelta(days=1),
            operation_key=f"demo:delivery:{FURNITURE_ORDER}-D1",
            actor=Actor(channel=site),
        )
        created.append(f"order {FURNITURE_ORDER}")
    if not Order.objects.filter(channel=showroom, number=RECEIPT).exists():
        order_place(
            channel=showroom,
            number=RECEIPT,
            phone=UNKNOWN_BUYER,
            store=store,
            delivered=True,
            lines=[NewLine(1, "TABLE-TURKU", Decimal("1"), Decimal("24990.00"), name="Dining table Turku")],
            operation_key=f"demo:order:{RECEIPT}",
            actor=Actor(channel=showroom),
            now=now,
        )
        created.append(f"order {RECEIPT}")
    return created
