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
