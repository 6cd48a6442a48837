"""A cart line as channels send it, and its validation (each problem named by line and field)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from programmes.exceptions import CartInvalid
from programmes.models import OperationType

MAX_LINES = 200
_OPERATION_TYPES = frozenset(OperationType.values)


@dataclass(frozen=True)
class CartLine:
    """``price`` is the unit price before the shelf discount ``discount_percent``. The attributes after
    ``operation_type`` describe a product the catalogue does not know; for a known SKU the catalogue's apply."""

    sku: str
    quantity: Decimal
    price: Decimal
    discount_percent: Decimal = Decimal("0")
    operation_type: str = OperationType.PURCHASE
    name: str = ""
    category: str | None = None
    new_arrival: bool | None = None
    excluded_from_earning: bool | None = None
    excluded_from_redemption: bool | None = None


def validate_lines(lines: list[CartLine]) -> None:
    """``cart_invalid`` with every problem, or nothing."""
    fields: dict[str, list[dict[str, str]]] = {}

    def problem(key: str, code: str, message: str) -> None:
        fields.setdefault(key, []).append({"code": code, "message": message})

    if not lines:
        problem("lines", "empty", _("A cart needs at least one line."))
    if len(lines) > MAX_LINES:
        problem("lines", "too_many", _("At most %(max)d lines in a cart.") % {"max": MAX_LINES})
    for index, line in enumerate(lines):
        key = f"lines.{index}"
        if not line.sku:
            problem(f"{key}.sku", "required", _("The SKU is required."))
        for name in ("quantity", "price", "discount_percent"):
            if not _finite(getattr(line, name)):  # NaN cannot even be compared
                problem(f"{key}.{name}", "not_a_number", _("Not a number."))
        if _finite(line.quantity) and line.quantity <= 0:
            problem(f"{key}.quantity", "not_positive", _("The quantity must be above 0."))
        if _finite(line.price) and line.price < 0:
            problem(f"{key}.price", "negative", _("The price cannot be negative."))
        if _finite(line.discount_percent) and not 0 <= line.discount_percent < 100:
            problem(f"{key}.discount_percent", "out_of_range", _("The shelf discount is a percentage from 0 to 99.99."))
        if line.operation_type not in _OPERATION_TYPES:
            problem(f"{key}.operation_type", "invalid_choice", _("Unknown operation type."))
    if fields:
        raise CartInvalid(fields=fields)


def _finite(value: Decimal) -> bool:
    return not isinstance(value, Decimal) or value.is_finite()
