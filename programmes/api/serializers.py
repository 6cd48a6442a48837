"""Serializers of the programmes API: the perks (SPEC F-TIER-3, F-TIER-4) and the cart calculator (F-ORD-2, F-RED-4).

The cart's input is checked here for shape only (types, lengths, choices, a known store code); the calculator owns
the rules (a positive quantity, a shelf discount below 100 %, …). The view answers both kinds of problems as
``cart_invalid`` with a field error per line and field (``lines.2.quantity``).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import CODE_MAX_LENGTH, NAME_MAX_LENGTH, SKU_MAX_LENGTH
from core.api.plain_input import (
    NotPlain,
    choice_reader,
    decimal_reader,
    null_only,
    optional_boolean,
    read,
    readers,
    slug_reader,
    text_reader,
)
from customers.api.serializers import StoreCode
from programmes.calculator import MAX_LINES, CartResult, Explanation, LineResult
from programmes.calculator.reference import calculation_reference
from programmes.models import OperationType


class ProgrammeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class TierOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField(help_text="0 is the entry tier; higher is better.")


class NextTierOutput(TierOutput):
    qualification_threshold = serializers.DecimalField(max_digits=14, decimal_places=2)
    purchases_needed = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Purchases net of returns still needed within the qualification window to reach this tier.",
    )


class PerksOutput(serializers.Serializer):
    reservation_days_bonus = serializers.IntegerField(help_text="Days added to the standard reservation period.")
    reservation_item_limit = serializers.IntegerField(help_text="How many items the customer may reserve at once.")
    early_access_hours = serializers.IntegerField(
        help_text=(
            "New arrivals younger than this many hours are visible to this customer; an item whose age is below "
            "the largest window of the programme is hidden from tiers with fewer hours than its age."
        )
    )
    loan_limit_multiplier = serializers.DecimalField(max_digits=5, decimal_places=2)
    extra = serializers.JSONField(help_text="Other perks, free-form.")


class CustomerTierOutput(serializers.Serializer):
    customer_id = serializers.IntegerField()
    programme = ProgrammeOutput()
    tier = TierOutput()
    since = serializers.DateTimeField(
        allow_null=True, help_text="Null while the customer is in the entry tier by default."
    )
    manual = serializers.BooleanField(help_text="Assigned by staff.")
    manual_until = serializers.DateTimeField(allow_null=True)
    earn_rate_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    max_redemption_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    qualifying_purchases = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Purchases net of returns within the qualification window."
    )
    perks = PerksOutput()
    next_tier = NextTierOutput(allow_null=True, help_text="Null at the top tier.")


def customer_tier_answer(status) -> dict:
    row, tier, next_tier = status.customer_tier, status.tier, status.next_tier
    return {
        "customer_id": row.customer_id,
        "programme": status.programme,
        "tier": tier,
        "since": row.since,
        "manual": row.manual,
        "manual_until": row.manual_until,
        "earn_rate_percent": tier.earn_rate_percent,
        "max_redemption_percent": tier.max_redemption_percent,
        "qualifying_purchases": status.qualifying_purchases,
        "perks": tier.perks,
        "next_tier": None
        if next_tier is None
        else {
            "code": next_tier.code,
            "name": next_tier.name,
            "rank": next_tier.rank,
            "qualification_threshold": next_tier.qualification_threshold,
            "purchases_needed": status.purchases_needed,
        },
    }


# --- the cart calculator -------------------------------------------------------------------------------------

# Room for the largest cart the input allows (200 lines of 10^7 items at 10^12): the API's usual 14 digits are a
# stored amount's, a calculated total may be larger; the answer must render whatever was accepted.
CALCULATED = {"max_digits": 30, "decimal_places": 2}


class CartLineInput(serializers.Serializer):
    sku = serializers.CharField(
        max_length=SKU_MAX_LENGTH,
        allow_blank=True,  # so that a blank SKU is the calculator's `required`, like a missing one
        help_text="The product's SKU. A SKU the catalogue knows takes the catalogue's name, category and flags.",
    )
    quantity = serializers.DecimalField(
        max_digits=10, decimal_places=3, help_text="Above 0 (`not_positive`); fractions for goods sold by measure."
    )
    price = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Unit price before the shelf discount; not negative (`negative`)."
    )
    discount_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        required=False,
        default=Decimal("0"),
        help_text="The shelf discount, 0 to 99.99 (`out_of_range`); it decides the discount bracket of the rules.",
    )
    operation_type = serializers.ChoiceField(
        choices=OperationType.choices,
        required=False,
        default=OperationType.PURCHASE.value,
        help_text="What is paid for: goods, interest on a loan, or another paid service.",
    )
    name = serializers.CharField(
        max_length=NAME_MAX_LENGTH, required=False, default="", allow_blank=True, help_text="For an unknown SKU."
    )
    category = serializers.SlugField(
        max_length=CODE_MAX_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="Category code, for an unknown SKU (its ancestors count when the catalogue knows the code).",
    )
    new_arrival = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="For an unknown SKU."
    )
    excluded_from_earning = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="For an unknown SKU."
    )
    excluded_from_redemption = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="For an unknown SKU."
    )

    def validate_category(self, value: str | None) -> str | None:
        return value or None


class CartCalculateInput(serializers.Serializer):
    customer_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="The identified customer; absent for an anonymous cart (what it would earn, nothing to spend).",
    )
    store = StoreCode(
        required=False,
        allow_null=True,
        default=None,
        help_text="The store or showroom of the sale, for store-specific rules. Unknown: `unknown_store`.",
    )
    at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "Recalculate as of this moment: the rules, promotions, tier and tier terms then in force. The balance "
            "is today's. Absent: now."
        ),
    )
    redeem = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
        default=Decimal("0"),
        help_text="Points the customer wants to spend, spread over the lines in order (at most `max_redeemable`).",
    )
    first_order = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Whether this is the customer's first order (welcome points are spendable only then). Absent: "
        "no purchase recorded yet.",
    )
    lines = serializers.ListField(child=CartLineInput(), max_length=MAX_LINES, help_text=f"1 to {MAX_LINES} lines.")


# The usual request — JSON strings for the numbers, plain codes, nothing to trim — is read without the serializers
# (copying their fields for every request and running each field's validators cost more than the calculation):
# ``cart_input_plain`` (readers of core.api.plain_input) accepts only what the serializer accepts as it is and
# returns what it would, and leaves anything else (and every error, with its wording) to ``CartCalculateInput``.
def _customer_id(value):
    if type(value) is int and value >= 1:
        return value
    if value is None:
        return None
    raise NotPlain


_LINE = CartLineInput._declared_fields
_LINE_READERS = readers(
    CartLineInput,
    {
        "sku": text_reader(_LINE["sku"]),
        "quantity": decimal_reader(_LINE["quantity"]),
        "price": decimal_reader(_LINE["price"]),
        "discount_percent": decimal_reader(_LINE["discount_percent"]),
        "operation_type": choice_reader(_LINE["operation_type"]),
        "name": text_reader(_LINE["name"]),
        "category": slug_reader(_LINE["category"]),  # with validate_category: blank is None
        "new_arrival": optional_boolean,
        "excluded_from_earning": optional_boolean,
        "excluded_from_redemption": optional_boolean,
    },
)
_CART = CartCalculateInput._declared_fields
_CART_READERS = readers(
    CartCalculateInput,
    {
        "customer_id": _customer_id,
        "store": slug_reader(_CART["store"]),  # the code: the store is looked up with the customer
        "at": null_only,
        "redeem": decimal_reader(_CART["redeem"]),
        "first_order": optional_boolean,
        "lines": None,  # read apart
    },
)
assert _CART["customer_id"].min_value == 1
assert _CART["customer_id"].max_value is None
assert not _CART["store"].allow_blank
assert _LINE["category"].allow_blank


def cart_input_plain(data) -> dict | None:
    """``CartCalculateInput(data=data).validated_data`` for a plain JSON request — except that ``store`` is still the
    code —, or None: validate it with ``CartCalculateInput``."""
    if type(data) is not dict or type(data.get("lines")) is not list:
        return None
    lines = data["lines"]
    try:
        cart = read(data, _CART_READERS)
        if len(lines) > _CART["lines"].max_length:
            raise NotPlain
        cart["lines"] = [read(line, _LINE_READERS) if type(line) is dict else _not_plain() for line in lines]
    except NotPlain:
        return None
    return cart


def _not_plain():
    raise NotPlain


class RuleRefOutput(serializers.Serializer):
    type = serializers.CharField(help_text="`tier`, `earning_rule`, `redemption_rule` or `promotion`.")
    id = serializers.IntegerField()
    name = serializers.CharField()


class ExplanationOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable reason, e.g. `tier_cap`, `promotion`.")
    text = serializers.CharField(help_text="The reason in words, in the request's language (`Accept-Language`).")
    value = serializers.DecimalField(
        **CALCULATED,
        rounding=ROUND_DOWN,
        allow_null=True,
        help_text="The cap in points, the rate in percent or the multiplier; null when there is no number.",
    )
    rule = RuleRefOutput(allow_null=True, help_text="The tier, rule or promotion behind it; null for none.")


class CartLineOutput(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the line in the request, from 0.")
    sku = serializers.CharField()
    name = serializers.CharField()
    product_known = serializers.BooleanField(help_text="The catalogue knows the SKU (its attributes applied).")
    category = serializers.CharField(allow_null=True)
    operation_type = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=10, decimal_places=3)
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    discount = serializers.DecimalField(**CALCULATED, help_text="The shelf discount in money for the line.")
    amount = serializers.DecimalField(
        **CALCULATED, help_text="What the line costs: price times quantity less the discount."
    )
    max_redeemable = serializers.DecimalField(**CALCULATED, help_text="Most points that may be spent on the line.")
    redemption_limit = ExplanationOutput(help_text="The cap that decided `max_redeemable`.")
    redemption_caps = ExplanationOutput(many=True, help_text="Every cap that applied, the deciding one among them.")
    redeem = serializers.DecimalField(**CALCULATED, help_text="Points of `redeem` spent on this line.")
    earn_points = serializers.DecimalField(**CALCULATED)
    earn_rate_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    earn_multiplier = serializers.DecimalField(max_digits=5, decimal_places=2)
    earning = ExplanationOutput(many=True, help_text="The rate, promotion, exclusion and rounding behind the points.")


class CartTotalsOutput(serializers.Serializer):
    total_price = serializers.DecimalField(**CALCULATED, help_text="Before shelf discounts.")
    total_discount = serializers.DecimalField(**CALCULATED)
    total_amount = serializers.DecimalField(**CALCULATED, help_text="What the cart costs.")
    max_redeemable = serializers.DecimalField(
        **CALCULATED, help_text="Most points that may be spent on the cart: the lines' maximums, within the balance."
    )
    max_redeemable_limit = ExplanationOutput(
        allow_null=True, help_text="The spendable balance when it limits more than the lines do; else null."
    )
    redeem = serializers.DecimalField(**CALCULATED)
    earn_points = serializers.DecimalField(**CALCULATED, help_text="Points the cart earns (after `redeem`).")


class CartOutput(serializers.Serializer):
    customer_id = serializers.IntegerField(allow_null=True)
    programme = serializers.CharField(help_text="Code of the customer's programme (`retail` for anonymous carts).")
    balance_type = serializers.CharField(help_text="The points the programme earns and spends.")
    tier = serializers.CharField(help_text="The customer's tier code at `at` (the entry tier for anonymous carts).")
    at = serializers.DateTimeField(help_text="The moment calculated for.")
    first_order = serializers.BooleanField()
    spendable_balance = serializers.DecimalField(
        **CALCULATED, help_text="Points the customer may spend on this cart (0: anonymous, blocked, not a member)."
    )
    totals = CartTotalsOutput(source="*")
    lines = CartLineOutput(many=True)
    calculation = serializers.SerializerMethodField(
        help_text=(
            "A signed reference to these lines and prices, valid for a day: pass it as `calculation` when placing "
            "the order, which is refused with `price_changed` if its lines differ."
        )
    )

    @extend_schema_field(OpenApiTypes.STR)
    def get_calculation(self, result: CartResult) -> str:
        return calculation_reference(result)


# The answer is built by hand: rendering it through CartOutput costs more than the calculation's own Python (DRF
# copies every nested field of every line), and the calculator is the API's hot path. CartOutput stays the
# documented schema; a test holds the two to the same output.
_CONTEXT = Context(prec=CALCULATED["max_digits"])
_CENTS, _THOUSANDTHS = Decimal("0.01"), Decimal("0.001")
_DATETIME = serializers.DateTimeField()


def _fixed(value: Decimal, exponent: Decimal = _CENTS, rounding: str = ROUND_HALF_EVEN) -> str:
    """As DRF's DecimalField renders it."""
    return f"{value.quantize(exponent, rounding=rounding, context=_CONTEXT):f}"


def _explanation(explanation: Explanation | None) -> dict | None:
    if explanation is None:
        return None
    rule = explanation.rule
    return {
        "code": explanation.code,
        "text": explanation.text,
        "value": None if explanation.value is None else _fixed(explanation.value, rounding=ROUND_DOWN),
        "rule": None if rule is None else {"type": rule.type, "id": rule.id, "name": rule.name},
    }


def _line(line: LineResult) -> dict:
    return {
        "index": line.index,
        "sku": line.sku,
        "name": line.name,
        "product_known": line.product_known,
        "category": line.category,
        "operation_type": str(line.operation_type),
        "quantity": _fixed(line.quantity, _THOUSANDTHS),
        "price": _fixed(line.price),
        "discount_percent": _fixed(line.discount_percent),
        "discount": _fixed(line.discount),
        "amount": _fixed(line.amount),
        "max_redeemable": _fixed(line.max_redeemable),
        "redemption_limit": _explanation(line.redemption_limit),
        "redemption_caps": [_explanation(cap) for cap in line.redemption_caps],
        "redeem": _fixed(line.redeem),
        "earn_points": _fixed(line.earn_points),
        "earn_rate_percent": _fixed(line.earn_rate_percent),
        "earn_multiplier": _fixed(line.earn_multiplier),
        "earning": [_explanation(reason) for reason in line.earning],
    }


def cart_answer(result: CartResult) -> dict:
    """``CartOutput(result).data``, five times faster."""
    return {
        "customer_id": result.customer_id,
        "programme": result.programme,
        "balance_type": result.balance_type,
        "tier": result.tier,
        "at": _DATETIME.to_representation(result.at),
        "first_order": result.first_order,
        "spendable_balance": _fixed(result.spendable_balance),
        "totals": {
            "total_price": _fixed(result.total_price),
            "total_discount": _fixed(result.total_discount),
            "total_amount": _fixed(result.total_amount),
            "max_redeemable": _fixed(result.max_redeemable),
            "max_redeemable_limit": _explanation(result.max_redeemable_limit),
            "redeem": _fixed(result.redeem),
            "earn_points": _fixed(result.earn_points),
        },
        "lines": [_line(line) for line in result.lines],
        "calculation": calculation_reference(result),
    }
