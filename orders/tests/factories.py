"""Factories and helpers for order tests: orders are placed through ``order_place``, never built directly."""

from __future__ import annotations

import itertools
from decimal import Decimal

from orders.services import NewLine, order_place

_numbers = itertools.count(1)


def new_line(line_number: int, sku: str, price: str, quantity: str = "1", **kwargs) -> NewLine:
    return NewLine(line_number=line_number, sku=sku, quantity=Decimal(quantity), price=Decimal(price), **kwargs)


def furniture_lines() -> list[NewLine]:
    """The case study's order: a sofa, kitchen chairs and a nightstand."""
    return [
        new_line(1, "SOFA-1", "90000.00"),
        new_line(2, "CHAIR-1", "5000.00", quantity="4"),
        new_line(3, "NIGHTSTAND-1", "12000.00"),
    ]


def place(channel, customer=None, lines=None, **kwargs):
    number = kwargs.pop("number", None) or f"ORD-{next(_numbers)}"
    return order_place(
        channel=channel,
        number=number,
        customer=customer,
        lines=lines or furniture_lines(),
        operation_key=kwargs.pop("operation_key", f"test:place:{number}"),
        **kwargs,
    ).order


# --- helpers shared by the scenario, property and race tests ---------------------------------------------------

_keys = itertools.count(1)


def key(prefix: str = "op") -> str:
    """A fresh operation key."""
    return f"test:{prefix}:{next(_keys)}"


def D(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def seed_points(customer, amount, *, expires_at=None, now=None):
    """Active points the customer already has (a manual accrual): the lot."""
    from points.services import points_accrue

    return points_accrue(
        customer=customer,
        amount=amount,
        kind="manual",
        operation_key=key("seed"),
        expires_at=expires_at,
        now=now,
    ).lot


def balances(customer) -> tuple[Decimal, Decimal, Decimal]:
    """(available, pending, debt) of the customer's retail account; zeros when it has none."""
    from points.models import Account

    account = Account.objects.filter(customer=customer, balance_type__code="retail").first()
    if account is None:
        return D(0), D(0), D(0)
    return account.available, account.pending, account.debt


def ledger_counts() -> dict[str, int]:
    """How many rows the orders and the ledger hold: "nothing changed" on a refused call compares these."""
    from orders.models import Order, OrderEvent, OrderLine, Payment
    from points.models import Allocation, Entry, Hold, Lot

    models = {
        "orders": Order,
        "lines": OrderLine,
        "events": OrderEvent,
        "payments": Payment,
        "entries": Entry,
        "allocations": Allocation,
        "lots": Lot,
        "holds": Hold,
    }
    return {name: model.objects.count() for name, model in models.items()}
