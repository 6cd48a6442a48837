"""Channel API of programmes.

- The customer's tier and perks in one fast call (SPEC F-TIER-3, F-TIER-4): the site's early-access check and the
  reservation system read it; the early-access rule the site applies is in the docstring of ``programmes.models``.
- The cart calculator (F-ORD-2, F-RED-4): what a cart earns and how much of it may be paid in points, with the
  rules that decided, for the till, the site and the app before the order is placed.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import flatten_field_errors
from core.api.schema import documents_errors
from customers.exceptions import CustomerMerged, CustomerNotFound
from customers.selectors import customer_get
from integrations.authentication import request_channel
from integrations.scopes import Scope
from programmes.api.serializers import (
    CartCalculateInput,
    CartOutput,
    CustomerTierOutput,
    cart_answer,
    cart_input_plain,
    customer_tier_answer,
)
from programmes.calculator import MAX_LINES, CartLine, cart_calculate, cart_read
from programmes.exceptions import CartInvalid, ProgrammeNotFound, RedemptionAboveMaximum
from programmes.selectors import customer_tier_status

TAGS = ["programmes"]
CART_TAGS = ["carts"]


class CustomerTierApi(APIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ}

    @extend_schema(
        operation_id="customer_tier",
        tags=TAGS,
        responses=CustomerTierOutput,
        description=(
            "The customer's programme, tier and perks, and what is still needed for the next tier. Early access: a "
            "new arrival younger than the largest `early_access_hours` of the programme is shown only to customers "
            "whose `perks.early_access_hours` is at least its age."
        ),
    )
    @documents_errors(CustomerNotFound, ProgrammeNotFound)
    def get(self, request: Request, customer_id: int) -> Response:
        customer = customer_get(customer_id=customer_id)
        return Response(CustomerTierOutput(customer_tier_answer(customer_tier_status(customer=customer))).data)


def _cart_lines_limit(data: Any) -> None:
    """``cart_invalid`` on ``lines`` for too many lines, before validating each line, which the limit protects."""
    lines = data.get("lines") if isinstance(data, dict) else None
    if isinstance(lines, list) and len(lines) > MAX_LINES:
        too_many = _("At most %(max)d lines in a cart.") % {"max": MAX_LINES}
        raise CartInvalid(fields={"lines": [{"code": "too_many", "message": too_many}]})


def _cart_input(data: Any) -> dict:
    """The request's cart, or ``cart_invalid`` naming each bad field as the calculator does (``lines.2.price``)."""
    cart = CartCalculateInput(data=data)
    if not cart.is_valid():
        raise CartInvalid(fields=flatten_field_errors(cart.errors))
    return cart.validated_data


class CartCalculateApi(APIView):
    required_scopes = {"POST": Scope.CARTS_CALCULATE}

    @extend_schema(
        operation_id="carts_calculate",
        tags=CART_TAGS,
        request=CartCalculateInput,
        responses=CartOutput,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Not needed: the calculation changes nothing, so it may be repeated freely. Ignored.",
            )
        ],
        examples=[
            OpenApiExample(
                "A member's cart at the till",
                value={
                    "customer_id": 1042,
                    "store": "msk-khimki",
                    "redeem": "500",
                    "lines": [
                        {"sku": "SOFA-001", "quantity": "1", "price": "89990.00", "discount_percent": "20"},
                        {
                            "sku": "CUSHION-X",
                            "quantity": "2",
                            "price": "1490.00",
                            "name": "Linen cushion",
                            "category": "textiles",
                        },
                    ],
                },
                request_only=True,
            ),
        ],
        description=(
            "What the cart costs, earns and how much of it may be paid in points — per line, with the rule that "
            "limited the points and the rules that produced the points earned, in words (in the request's "
            "`Accept-Language`, English or Russian) and as stable `code`s. The channel's kind and the `store` "
            "select channel- and store-specific rules. Without `customer_id` the cart is anonymous: an earning "
            "preview at the entry tier, nothing redeemable. `redeem` spreads points to spend over the lines and "
            "shrinks what they earn; more than `max_redeemable` is 422 `redemption_above_maximum` with `maximum`. "
            "A merged customer's id answers 409 `customer_merged` with `merged_into`. Every problem with the "
            "request is 400 `cart_invalid` with a field error per field (`lines.2.quantity`, `store`).\n\n"
            "The calculation writes nothing and needs no `Idempotency-Key`."
        ),
    )
    @documents_errors(CartInvalid, CustomerNotFound, CustomerMerged, ProgrammeNotFound, RedemptionAboveMaximum)
    def post(self, request: Request) -> Response:
        data = request.data
        _cart_lines_limit(data)
        # The plain form of the request skips the serializer, and its store is read with the customer; anything
        # else (and every error) goes through CartCalculateInput.
        cart = cart_input_plain(data)
        if cart is None:
            cart = _cart_input(data)
            store, store_code = cart["store"], None
        else:
            store, store_code = None, cart["store"]
        reading = cart_read(customer_id=cart["customer_id"], store_code=store_code)
        if store_code is not None:
            store = reading.store or _cart_input(data)["store"]  # no such store: the serializer's `unknown_store`
        customer = reading.customer
        if cart["customer_id"] is not None:
            if customer is None:
                raise CustomerNotFound()
            if customer.merged_into_id is not None:
                raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
        result = cart_calculate(
            customer=customer,
            lines=[CartLine(**line) for line in cart["lines"]],
            channel=request_channel(request),
            store=store,
            at=cart["at"],
            redeem=cart["redeem"],
            first_order=cart["first_order"],
            state=reading.state,
        )
        return Response(cart_answer(result))
