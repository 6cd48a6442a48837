"""A cart calculation's reference (F-ORD-9): the calculated lines, signed, so that placing the order can prove
it follows them without the calculator writing anything. Placing an order whose lines differ is ``price_changed``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.core import signing

from programmes.calculator.engine import CartResult

SALT = "loyalty_crm.cart-calculation"
MAX_AGE = timedelta(hours=24)

# (sku, quantity, unit price, shelf discount %) of each line, as the calculator normalised them.
CalculatedLine = tuple[str, Decimal, Decimal, Decimal]


def calculation_reference(result: CartResult) -> str:
    lines = [[line.sku, str(line.quantity), str(line.price), str(line.discount_percent)] for line in result.lines]
    return signing.dumps({"c": result.customer_id, "l": lines}, salt=SALT, compress=True)


def calculation_read(reference: str) -> tuple[int | None, list[CalculatedLine]] | None:
    """The customer and lines a reference vouches for; None if it is forged, garbled or older than a day."""
    try:
        payload = signing.loads(reference, salt=SALT, max_age=MAX_AGE)
        lines = [(sku, Decimal(q), Decimal(p), Decimal(d)) for sku, q, p, d in payload["l"]]
        return payload["c"], lines
    except (signing.BadSignature, KeyError, TypeError, ValueError, ArithmeticError):
        return None
