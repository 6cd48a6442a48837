"""The cart calculator: ``cart_calculate`` (see ``engine``), its input ``CartLine`` and its answer."""

from programmes.calculator.engine import CartReading, CartResult, CustomerState, LineResult, cart_calculate, cart_read
from programmes.calculator.explain import Explanation, RuleRef
from programmes.calculator.lines import MAX_LINES, CartLine

__all__ = [
    "MAX_LINES",
    "CartLine",
    "CartReading",
    "CartResult",
    "CustomerState",
    "Explanation",
    "LineResult",
    "RuleRef",
    "cart_calculate",
    "cart_read",
]
