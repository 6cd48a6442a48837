"""The sale in progress at a till, kept in the seller's session between the htmx steps.

Only identifiers and what the seller typed are kept (JSON: decimals as strings); the customer, the calculation and
the receipt are read afresh for every answer. ``token`` names the sale: the order number and the operation key are
derived from it when the sale starts, so the same "place" submitted twice is the same order.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from decimal import Decimal

SESSION_KEY = "staff.till.sale"
ZERO = Decimal("0")


@dataclass
class Item:
    """A cart line as the seller typed it: the catalogue's SKU and name, the shelf price and discount."""

    sku: str
    name: str
    quantity: Decimal
    price: Decimal
    discount_percent: Decimal = ZERO


@dataclass
class Sale:
    store_id: int | None = None
    customer_id: int | None = None
    items: list[Item] = field(default_factory=list)
    redeem: Decimal = ZERO
    token: str = ""
    number: str = ""
    registration_phone: str = ""  # E.164: an SMS code was sent to it and is awaited
    receipt_order_id: int | None = None  # the order just placed, shown until the next step
    placed_token: str = ""  # the token of the sale placed last: a repeated submit shows its receipt


def sale_load(session) -> Sale:
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return Sale()
    try:
        items = [
            Item(
                sku=item["sku"],
                name=item["name"],
                quantity=Decimal(item["quantity"]),
                price=Decimal(item["price"]),
                discount_percent=Decimal(item["discount_percent"]),
            )
            for item in data.get("items", [])
        ]
        return Sale(**{**data, "items": items, "redeem": Decimal(data.get("redeem", "0"))})
    except (KeyError, TypeError, ArithmeticError):
        return Sale()  # a session from an older version of the screen: start afresh


def sale_save(session, sale: Sale) -> None:
    data = asdict(sale)
    data["redeem"] = str(sale.redeem)
    data["items"] = [{key: str(value) for key, value in asdict(item).items()} for item in sale.items]
    session[SESSION_KEY] = data


def new_token() -> str:
    return secrets.token_hex(8)
