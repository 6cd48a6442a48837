"""The cart calculator: ``cart_calculate`` (see ``engine``), its input ``CartLine`` and its answer."""

from programmes.calculator.engine import CartResult, LineResult, cart_calculate
from programmes.calculator.explain import Explanation, RuleRef
from programmes.calculator.lines import MAX_LINES, CartLine

__all__ = ["MAX_LINES", "CartLine", "CartResult", "Explanation", "LineResult", "RuleRef", "cart_calculate"]
