"""Input and Output serializers of the orders API (SPEC F-ORD).

Inputs check the shape — types, lengths, choices, valid phones, known store codes, amounts the ledger can store —
and the view answers every problem as ``order_invalid`` with a field error per field (``lines.2.quantity``); the
services own the rules (line numbers, prices against the calculation, what can be delivered, cancelled, returned).

The order's answer is built by hand (``order_answer``): rendering it through ``OrderOutput`` costs more than the
representation's queries, and placing and delivering are the API's hot path. ``OrderOutput`` stays the documented
schema; a test holds the two to the same output.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.api.serializers import Phone, StoreCode
from orders.models import MONEY, POINTS, QUANTITY, Order, OrderLine, Payment
from orders.selectors import PointsStatus, line_points_status, order_deliveries
from programmes.calculator import MAX_LINES
from programmes.models import OperationType

MAX_PAYMENTS = 50
MAX_ATTRIBUTES_LENGTH = 4000  # characters of the attributes as JSON
# The largest order the ledger takes: its amounts and the points earned on them (a promotion may multiply them)
# must fit the 14-digit columns with room to spare.
MAX_ORDER_AMOUNT = Decimal("10000000000")  # 10^10
INT_MAX = 2**31 - 1  # PostgreSQL's integer
BIGINT_MAX = 2**63 - 1  # and bigint: the ids
PAYMENT_METHODS = [(value, label) for value, label in Payment.Method.choices if value != Payment.Method.POINTS]


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=MONEY["max_digits"], decimal_places=MONEY["decimal_places"], **kwargs)


def _points(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=POINTS["max_digits"], decimal_places=POINTS["decimal_places"], **kwargs)


def _quantity(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=QUANTITY["max_digits"], decimal_places=QUANTITY["decimal_places"], **kwargs
    )


# --- inputs ------------------------------------------------------------------------------------------------------


class OrderLineInput(serializers.Serializer):
    line_number = serializers.IntegerField(
        min_value=1, max_value=INT_MAX, help_text="The line's number in the order, unique in it; from 1."
    )
    sku = serializers.CharField(max_length=64, help_text="A SKU the catalogue knows takes its name, category, flags.")
    quantity = _quantity(min_value=Decimal("0.001"), help_text="Above 0; fractions for goods sold by measure.")
    price = _money(min_value=Decimal("0"), help_text="Unit price before the shelf discount.")
    discount_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("99.99"),
        required=False,
        default=Decimal("0"),
        help_text="The shelf discount, 0 to 99.99.",
    )
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    category = serializers.SlugField(
        max_length=50, required=False, allow_null=True, allow_blank=True, default=None, help_text="Category code."
    )
    operation_type = serializers.ChoiceField(
        choices=OperationType.choices, required=False, default=OperationType.PURCHASE.value
    )
    new_arrival = serializers.BooleanField(required=False, allow_null=True, default=None)
    attributes = serializers.DictField(
        required=False, default=dict, help_text="Free-form attributes of the line (colour, size, …), kept as sent."
    )

    def validate_category(self, value: str | None) -> str | None:
        return value or None

    def validate_attributes(self, value: dict) -> dict:
        return attributes_checked(value)


def attributes_checked(value: dict) -> dict:
    """A line's attributes as sent, or a ``ValidationError``: too long as JSON, or holding a NUL."""
    text = json.dumps(value)
    if len(text) > MAX_ATTRIBUTES_LENGTH:
        raise serializers.ValidationError(
            _("At most %(max)d characters as JSON.") % {"max": MAX_ATTRIBUTES_LENGTH}, code="too_long"
        )
    if "\\u0000" in text:  # PostgreSQL refuses NUL in JSON text
        raise serializers.ValidationError(_("Null characters are not allowed."), code="null_characters")
    return value


class PaymentInput(serializers.Serializer):
    payment_id = serializers.CharField(max_length=64, help_text="The payment's id as the channel knows it.")
    method = serializers.ChoiceField(
        choices=PAYMENT_METHODS, help_text="Points are not paid here: spend them with the order's `redeem`."
    )
    amount = _money(min_value=Decimal("0.01"), max_value=MAX_ORDER_AMOUNT)
    paid_at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="Absent: now.")


class OrderPlaceInput(serializers.Serializer):
    number = serializers.CharField(max_length=64, help_text="The order's number in the calling channel's system.")
    customer_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=BIGINT_MAX
    )
    phone = Phone(
        required=False,
        allow_blank=True,
        default="",
        help_text="Without `customer_id`: the active customer with this phone gets the order; nobody: the order "
        "keeps the phone, to be matched later.",
    )
    card = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default="", help_text="Loyalty card number, like `phone`."
    )
    store = StoreCode(required=False, allow_null=True, default=None)
    seller = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="Staff or external seller id."
    )
    created_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="When the order was made, as the channel says."
    )
    offline = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Sent later by a till that was offline: earns by the rules in force at `created_at`, and may "
        "spend points only through a hold made before.",
    )
    delivered = serializers.BooleanField(
        required=False, default=False, help_text="A sale at the till: delivered at once, its points spendable."
    )
    redeem = _points(
        required=False,
        allow_null=True,
        default=None,
        min_value=Decimal("0"),
        help_text="Points to spend, spread over the lines by their caps. With `hold_id` absent: the hold's amount.",
    )
    hold_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=BIGINT_MAX,
        help_text="The checkout's hold to commit.",
    )
    calculation = serializers.CharField(
        max_length=20000,
        required=False,
        allow_blank=True,
        default="",
        help_text="The `calculation` of `POST /carts/calculate`: lines that differ from it are `price_changed`.",
    )
    parent_number = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="The case study's delivery scheme: the lines were cancelled on this order of the channel and are "
        "now delivered as this new order (matched by SKU and quantity). Answers with the delivery.",
    )
    lines = serializers.ListField(
        child=OrderLineInput(), min_length=1, max_length=MAX_LINES, help_text=f"1 to {MAX_LINES} lines."
    )
    payments = serializers.ListField(
        child=PaymentInput(), required=False, default=list, max_length=MAX_PAYMENTS, help_text="Paid so far."
    )

    def validate(self, data: dict) -> dict:
        field = order_amount_above_maximum(data["lines"])
        if field is not None:
            raise serializers.ValidationError({field: [_too_large()]})
        return data


def order_amount_above_maximum(lines: list[dict]) -> str | None:
    """The field to blame when a line's amount, or the order's, is above what the ledger takes; else None."""
    total = Decimal("0")
    for index, line in enumerate(lines):
        amount = line["price"] * line["quantity"] * (100 - line["discount_percent"]) / 100
        total += amount
        if amount > MAX_ORDER_AMOUNT:
            return f"lines.{index}.quantity"
    return "lines" if total > MAX_ORDER_AMOUNT else None


def _too_large() -> serializers.ErrorDetail:
    message = _("The order's amount is above %(max)s.") % {"max": MAX_ORDER_AMOUNT}
    return serializers.ErrorDetail(str(message), code="too_large")


class LineRequestInput(serializers.Serializer):
    line_number = serializers.IntegerField(min_value=1, max_value=INT_MAX)
    quantity = _quantity(
        min_value=Decimal("0.001"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Part of the line's quantity (the line is split); absent: all of it.",
    )


class DeliveryInput(serializers.Serializer):
    number = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="The delivery's number in the channel's system; absent: `<order number>/<n>`.",
    )
    delivered_at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="Absent: now.")
    lines = serializers.ListField(child=LineRequestInput(), min_length=1, max_length=MAX_LINES)


class CancellationInput(serializers.Serializer):
    lines = serializers.ListField(
        child=LineRequestInput(),
        required=False,
        allow_null=True,
        default=None,
        min_length=1,
        max_length=MAX_LINES,
        help_text="Absent: every line not yet delivered.",
    )
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class ReturnInput(serializers.Serializer):
    lines = serializers.ListField(child=LineRequestInput(), min_length=1, max_length=MAX_LINES)
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class AttachCustomerInput(serializers.Serializer):
    customer_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=BIGINT_MAX
    )
    phone = Phone(required=False, allow_blank=True, default="")
    card = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")

    def validate(self, data: dict) -> dict:
        given = [name for name in ("customer_id", "phone", "card") if data[name]]
        if len(given) != 1:
            message = _("Give exactly one of customer_id, phone or card.")
            raise serializers.ValidationError({"non_field_errors": [message]}, code="identifier_required")
        return data


class OrderQuery(serializers.Serializer):
    source = serializers.SlugField(
        max_length=50,
        required=False,
        allow_blank=True,
        default="",
        help_text="Code of the channel whose number it is. Absent: the calling channel.",
    )


# --- outputs -----------------------------------------------------------------------------------------------------


class OrderLineOutput(serializers.Serializer):
    line_number = serializers.IntegerField()
    part = serializers.IntegerField(help_text="0 for the line as ordered; 1, 2, … for parts split off it.")
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = _quantity()
    price = _money()
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    amount = _money(help_text="After the shelf discount.")
    points_redeemed = _points()
    points_to_earn = _points()
    status = serializers.ChoiceField(choices=OrderLine.Status.choices)
    points_status = serializers.SerializerMethodField(
        help_text="`pending` until delivery (or payment), `available` once unlocked, `cancelled` with the line, "
        "`clawed_back` after a return, `none` when the line earns nothing."
    )
    delivery = serializers.CharField(source="delivery.number", allow_null=True, help_text="The delivery's number.")
    delivered_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True, help_text="When it was cancelled or returned.")

    @extend_schema_field(serializers.ChoiceField(choices=PointsStatus.values))
    def get_points_status(self, line: OrderLine) -> str:
        return line_points_status(line)


class DeliveryLineOutput(serializers.Serializer):
    """A line (or the part of one) a delivery delivered; its status and points status are in the order's lines."""

    line_number = serializers.IntegerField()
    part = serializers.IntegerField()
    sku = serializers.CharField()
    quantity = _quantity()
    points_to_earn = _points(help_text="The points the delivery unlocked for this line.")


class DeliveryOutput(serializers.Serializer):
    number = serializers.CharField()
    created_at = serializers.DateTimeField(help_text="When it was delivered.")
    total_amount = _money()
    points_to_earn = _points(help_text="The points the delivery unlocked.")
    lines = DeliveryLineOutput(many=True)


class PaymentOutput(serializers.Serializer):
    payment_id = serializers.CharField(source="external_id")
    method = serializers.ChoiceField(choices=Payment.Method.choices)
    amount = _money()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    paid_at = serializers.DateTimeField()


class OrderOutput(serializers.Serializer):
    """An order with its lines, deliveries and payments; a delivery sub-order with the lines it delivered."""

    number = serializers.CharField()
    source = serializers.CharField(source="channel.code", help_text="Code of the channel whose number it is.")
    kind = serializers.ChoiceField(choices=Order.Kind.choices)
    parent = serializers.CharField(source="parent.number", allow_null=True, help_text="A delivery's order.")
    status = serializers.ChoiceField(choices=Order.Status.choices)
    customer_id = serializers.IntegerField(allow_null=True)
    phone = serializers.SerializerMethodField(help_text="E.164, of an order without a customer.")
    card = serializers.CharField(source="card_number", help_text="Of an order without a customer.")
    store = serializers.CharField(source="store.code", allow_null=True)
    seller = serializers.CharField()
    created_at = serializers.DateTimeField()
    offline = serializers.BooleanField()
    unlocks_on = serializers.ChoiceField(choices=Order.UnlocksOn.choices)
    total_amount = _money()
    points_redeemed = _points()
    points_to_earn = _points()
    lines = OrderLineOutput(source="loaded_lines", many=True)
    deliveries = serializers.SerializerMethodField()
    payments = PaymentOutput(source="loaded_payments", many=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_phone(self, order: Order) -> str | None:
        return order.phone.as_e164 if order.phone else None

    @extend_schema_field(DeliveryOutput(many=True))
    def get_deliveries(self, order: Order) -> list:
        deliveries = [
            {
                "number": delivery.number,
                "created_at": delivery.created_at,
                "total_amount": delivery.total_amount,
                "points_to_earn": delivery.points_to_earn,
                "lines": [
                    {
                        "line_number": line.line_number,
                        "part": line.part,
                        "sku": line.sku,
                        "quantity": line.quantity,
                        "points_to_earn": line.points_to_earn,
                    }
                    for line in lines
                ],
            }
            for delivery, lines in order_deliveries(order)
        ]
        return DeliveryOutput(deliveries, many=True).data


# --- the hand-built answer ---------------------------------------------------------------------------------------

_DATETIME = serializers.DateTimeField()
_CENTS, _THOUSANDTHS = Decimal("0.01"), Decimal("0.001")


def _fixed(value: Decimal, exponent: Decimal = _CENTS) -> str:
    """As DRF's DecimalField renders a stored amount."""
    return f"{value.quantize(exponent, rounding=ROUND_HALF_EVEN):f}"


def _line(line: OrderLine) -> dict:
    return {
        "line_number": line.line_number,
        "part": line.part,
        "sku": line.sku,
        "name": line.name,
        "quantity": _fixed(line.quantity, _THOUSANDTHS),
        "price": _fixed(line.price),
        "discount_percent": _fixed(line.discount_percent),
        "amount": _fixed(line.amount),
        "points_redeemed": _fixed(line.points_redeemed),
        "points_to_earn": _fixed(line.points_to_earn),
        "status": line.status,
        "points_status": line_points_status(line),
        "delivery": line.delivery.number if line.delivery_id is not None else None,
        "delivered_at": _DATETIME.to_representation(line.delivered_at),
        "closed_at": _DATETIME.to_representation(line.closed_at),
    }


def _delivery(delivery: Order, lines: list[OrderLine]) -> dict:
    return {
        "number": delivery.number,
        "created_at": _DATETIME.to_representation(delivery.created_at),
        "total_amount": _fixed(delivery.total_amount),
        "points_to_earn": _fixed(delivery.points_to_earn),
        "lines": [
            {
                "line_number": line.line_number,
                "part": line.part,
                "sku": line.sku,
                "quantity": _fixed(line.quantity, _THOUSANDTHS),
                "points_to_earn": _fixed(line.points_to_earn),
            }
            for line in lines
        ],
    }


def _payment(payment: Payment) -> dict:
    return {
        "payment_id": payment.external_id,
        "method": payment.method,
        "amount": _fixed(payment.amount),
        "status": payment.status,
        "paid_at": _DATETIME.to_representation(payment.paid_at),
    }


def order_answer(order: Order) -> dict:
    """``OrderOutput(order).data`` of an order loaded by ``orders.selectors`` — without DRF's per-field cost."""
    return {
        "number": order.number,
        "source": order.channel.code,
        "kind": order.kind,
        "parent": order.parent.number if order.parent_id is not None else None,
        "status": order.status,
        "customer_id": order.customer_id,
        "phone": order.phone.as_e164 if order.phone else None,
        "card": order.card_number,
        "store": order.store.code if order.store_id is not None else None,
        "seller": order.seller,
        "created_at": _DATETIME.to_representation(order.created_at),
        "offline": order.offline,
        "unlocks_on": order.unlocks_on,
        "total_amount": _fixed(order.total_amount),
        "points_redeemed": _fixed(order.points_redeemed),
        "points_to_earn": _fixed(order.points_to_earn),
        "lines": [_line(line) for line in order.loaded_lines],
        "deliveries": [_delivery(delivery, lines) for delivery, lines in order_deliveries(order)],
        "payments": [_payment(payment) for payment in order.loaded_payments],
    }


def payment_answer(payment: Payment) -> dict:
    """``PaymentOutput(payment).data``."""
    return _payment(payment)
