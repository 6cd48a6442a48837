"""Channel API of orders (SPEC F-ORD-1 … F-ORD-10, F-EARN-4, F-LED-6, F-LED-10).

Thin callers: an Input serializer checks the shape (every problem is ``order_invalid`` naming the field), an
``orders.services`` function acts, the order is read again with ``orders.selectors`` and rendered. Every write's
operation key is the channel's ``Idempotency-Key`` (``request_operation_key``): a retry that takes over a crashed
request cannot apply twice. An order is the calling channel's by its number, or another channel's with
``?source=<channel code>``.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api.errors import flatten_field_errors
from core.api.schema import documents_errors
from customers.exceptions import CustomerMerged, CustomerNotFound
from customers.models import Customer
from customers.selectors import customer_get, customer_identify
from integrations.api.idempotency import idempotent, request_operation_key
from integrations.authentication import request_channel
from integrations.models import Channel, Store
from integrations.scopes import Scope
from integrations.selectors import store_by_code
from orders.api.plain_input import line_requests_input_plain, order_place_input_plain
from orders.api.serializers import (
    AttachCustomerInput,
    CancellationInput,
    DeliveryInput,
    OrderOutput,
    OrderPlaceInput,
    OrderQuery,
    PaymentInput,
    PaymentOutput,
    ReturnInput,
    order_answer,
    payment_answer,
)
from orders.exceptions import (
    CalculationInvalid,
    CustomerAlreadyAttached,
    HoldNotForCustomer,
    NothingToCancel,
    OfflineRedemptionNotHeld,
    OperationConflict,
    OrderExists,
    OrderInvalid,
    OrderLineNotDelivered,
    OrderLineNotPlaced,
    OrderLineUnknown,
    OrderNotFound,
    PaymentExists,
    PriceChanged,
    QuantityExceeded,
    RedemptionNeedsCustomer,
)
from orders.models import Order
from orders.selectors import customer_orders, order_get, order_named, order_prefetch, order_reload
from orders.services import (
    LineRequest,
    NewLine,
    NewPayment,
    OrderNumber,
    order_attach_customer,
    order_cancel,
    order_deliver,
    order_pay,
    order_place,
    order_redeliver,
    order_return,
)
from points.exceptions import HoldNotFound, HoldNotOpen, InsufficientPoints, InvalidAmount
from programmes.calculator import MAX_LINES, CustomerState, cart_read
from programmes.exceptions import CartInvalid, ProgrammeNotFound, RedemptionAboveMaximum

TAGS = ["orders"]
SOURCE = OpenApiParameter(
    "source", str, OpenApiParameter.QUERY, description="Code of the channel whose number it is. Absent: the caller."
)
LINE_ERRORS = (OrderLineUnknown, QuantityExceeded)
LINE_REQUESTS = {DeliveryInput, CancellationInput, ReturnInput}  # read plainly when they can be


def _input(serializer_class: type, request: Request) -> dict:
    """The body, or ``order_invalid`` naming each bad field (``lines.2.quantity``)."""
    data = request.data
    plain = line_requests_input_plain(serializer_class, data) if serializer_class in LINE_REQUESTS else None
    return _validated(serializer_class, data) if plain is None else plain  # the usual form: without the serializer


def _place_input(request: Request) -> tuple[dict, str | None]:
    """The placement's body and, for its plain form, the store's code still to look up (``_placed_store``)."""
    data = order_place_input_plain(request.data)
    if data is None:
        return _validated(OrderPlaceInput, request.data), None
    return data, data["store"]


def _placed_store(request: Request, data: dict, store: Store | None) -> None:
    """The store of a plain placement's code, found (``store``) or not: ``unknown_store`` from the serializer."""
    data["store"] = store or _validated(OrderPlaceInput, request.data)["store"]


def _placing_customer(
    request: Request, data: dict, store_code: str | None
) -> tuple[Customer | None, CustomerState | None]:
    """The customer of the placement (and its state for the calculation, None if not read here); the store of
    ``store_code`` too. With ``customer_id``, one statement reads the customer, the store and the customer's state
    for the calculation (``cart_read``), as the cart calculation does."""
    if data["customer_id"] is None:
        if store_code is not None:
            _placed_store(request, data, store_by_code(store_code))
        return _customer_by(phone=data["phone"], card=data["card"]), None
    reading = cart_read(customer_id=data["customer_id"], store_code=store_code)
    if store_code is not None:
        _placed_store(request, data, reading.store)  # a bad store is order_invalid before the customer is looked at
    if reading.customer is None:
        raise CustomerNotFound()
    return _not_merged(reading.customer), reading.state


def _validated(serializer_class: type, data: Any) -> dict:
    lines = data.get("lines") if isinstance(data, dict) else None
    if isinstance(lines, list) and len(lines) > MAX_LINES:  # before validating each line, which the limit protects
        too_many = _("At most %(max)d lines.") % {"max": MAX_LINES}
        raise OrderInvalid(fields={"lines": [{"code": "too_many", "message": too_many}]})
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise OrderInvalid(fields=flatten_field_errors(serializer.errors))
    return serializer.validated_data


def _actor(request: Request) -> Actor:
    return Actor(channel=request_channel(request))


def _source(request: Request) -> Channel:
    """The channel whose order numbers the request names: ``?source=<code>`` or the caller."""
    if not request.query_params:
        return request_channel(request)
    query = OrderQuery(data=request.query_params)
    if not query.is_valid():
        raise OrderInvalid(fields=flatten_field_errors(query.errors))
    code = query.validated_data["source"]
    caller = request_channel(request)
    if not code or code == caller.code:
        return caller
    channel = Channel.objects.filter(code=code).first()
    if channel is None:
        raise OrderNotFound(extra={"source": code})
    return channel


class OrderPathApi(APIView):
    """An endpoint under ``/orders/{number}``."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # A number PostgreSQL could not even compare (a NUL) is no order's: refused before anything stores the
        # path (the idempotency key records it).
        if "\x00" in kwargs["number"]:
            raise OrderNotFound(extra={"number": kwargs["number"].replace("\x00", "")})


def _order(request: Request, number: str, *, parent: bool = False) -> Order:
    """The order named by the path (and ``?source``), for a service to lock and change; with ``parent``, a
    delivery's number names the order it delivered (a payment or a customer belongs to the order)."""
    # Only what is needed to name it: the service locks and reads it again.
    order = order_named(channel=_source(request), number=number)
    if order is None:
        raise OrderNotFound(extra={"number": number})
    if parent and order.kind == Order.Kind.DELIVERY:
        return Order.objects.get(pk=order.parent_id)
    return order


def _named(request: Request, number: str) -> OrderNumber:
    """The order named by the path (and ``?source``), for a service to lock and read in one statement."""
    return OrderNumber(channel_id=_source(request).pk, number=number)


def _answer(order: Order, status_code: int = status.HTTP_200_OK) -> Response:
    """The order as a service left it: loaded already (``order_loaded``) or read again."""
    if getattr(order, "loaded_lines", None) is None:
        order = order_reload(order_id=order.pk)
    return Response(order_answer(order), status=status_code)


def _not_merged(customer: Customer) -> Customer:
    if customer.merged_into_id is not None:
        raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
    return customer


def _customer_by(phone: Any = "", card: str = "") -> Customer | None:
    """The active customer holding the phone (else the card), a merge followed to its survivor; None if nobody."""
    for identifier in ({"phone": phone}, {"card": card}):
        if next(iter(identifier.values())):
            try:
                return customer_identify(**identifier)
            except CustomerNotFound:
                continue
    return None


def _lines(requested: list[dict] | None) -> list[LineRequest] | None:
    if requested is None:
        return None
    return [LineRequest(line_number=line["line_number"], quantity=line["quantity"]) for line in requested]


# --- placing -----------------------------------------------------------------------------------------------------


class OrderPlaceApi(APIView):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="orders_place",
        tags=TAGS,
        request=OrderPlaceInput,
        responses={201: OrderOutput, 200: OrderOutput},
        examples=[
            OpenApiExample(
                "A sofa, chairs and a nightstand, paying 500 points",
                value={
                    "number": "SO-2026-0042",
                    "customer_id": 1042,
                    "store": "msk-khimki",
                    "redeem": "500",
                    "calculation": "<calculation of POST /carts/calculate>",
                    "lines": [
                        {"line_number": 1, "sku": "SOFA-1", "quantity": "1", "price": "90000.00"},
                        {"line_number": 2, "sku": "CHAIR-1", "quantity": "4", "price": "5000.00"},
                        {"line_number": 3, "sku": "NIGHTSTAND-1", "quantity": "1", "price": "12000.00"},
                    ],
                    "payments": [{"payment_id": "pay-1", "method": "card", "amount": "20000.00"}],
                },
                request_only=True,
            )
        ],
        description=(
            "Place an order (F-ORD-1): calculated as `POST /carts/calculate` does, `redeem` points spent (or the "
            "checkout's hold `hold_id` committed) spread over the lines, and each line's points accrued as pending "
            "until that line is delivered (`delivered: true`, a till sale: at once). 201 with the order.\n\n"
            "The number is the channel's: the same number again with the same content answers 200 with the order "
            "as placed and changes nothing (an offline till sending twice); with other content it is 409 "
            "`order_exists`. Lines that differ from the `calculation` they claim to follow are 409 `price_changed` "
            "naming each line (`lines.1`). Without `customer_id` the active customer holding `phone` (else `card`) "
            "gets the order; nobody: the order keeps them, to be matched later (`POST /orders/{number}/customer`).\n\n"
            "With `parent_number` (the case study's scheme: lines cancelled on the parent, then sent again as a new "
            "order) the lines are delivered from the parent's cancelled ones, matched by SKU and quantity: 201 with "
            "the delivery sub-order. Every problem with the body is 400 `order_invalid` with a field error per field."
        ),
    )
    @documents_errors(
        OrderInvalid,
        CartInvalid,
        CustomerNotFound,
        CustomerMerged,
        OrderExists,
        OrderNotFound,
        OrderLineUnknown,
        PriceChanged,
        CalculationInvalid,
        OfflineRedemptionNotHeld,
        RedemptionNeedsCustomer,
        RedemptionAboveMaximum,
        HoldNotFound,
        HoldNotOpen,
        HoldNotForCustomer,
        InsufficientPoints,
        InvalidAmount,
        PaymentExists,
        OperationConflict,
        ProgrammeNotFound,
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        data, store_code = _place_input(request)
        channel, actor = request_channel(request), _actor(request)
        if data["parent_number"]:
            if store_code is not None:
                _placed_store(request, data, store_by_code(store_code))
            parent = Order.objects.filter(channel=channel, number=data["parent_number"]).first()
            if parent is None:
                raise OrderNotFound(extra={"number": data["parent_number"]})
            delivery = order_redeliver(
                parent=parent,
                number=data["number"],
                lines=[(line["sku"], line["quantity"]) for line in data["lines"]],
                operation_key=request_operation_key(request),
                delivered_at=data["created_at"],
                actor=actor,
            )
            return _answer(delivery, status.HTTP_201_CREATED)
        customer, state = _placing_customer(request, data, store_code)
        placed = order_place(
            channel=channel,
            number=data["number"],
            lines=[NewLine(**line) for line in data["lines"]],
            operation_key=request_operation_key(request),
            customer=customer,
            phone=data["phone"] or "",
            card_number=data["card"],
            store=data["store"],
            seller=data["seller"],
            created_at=data["created_at"],
            offline=data["offline"],
            delivered=data["delivered"],
            redeem=data["redeem"],
            hold_id=data["hold_id"],
            calculation=data["calculation"],
            payments=[
                NewPayment(
                    external_id=payment["payment_id"],
                    method=payment["method"],
                    amount=payment["amount"],
                    paid_at=payment["paid_at"],
                )
                for payment in data["payments"]
            ],
            actor=actor,
            state=state,
        )
        return _answer(placed.order, status.HTTP_200_OK if placed.replayed else status.HTTP_201_CREATED)


# --- one order -----------------------------------------------------------------------------------------------------


class OrderDetailApi(OrderPathApi):
    required_scopes = {"GET": Scope.ORDERS_READ}

    @extend_schema(
        operation_id="orders_get",
        tags=TAGS,
        parameters=[SOURCE],
        responses=OrderOutput,
        description=(
            "The order with its lines (each with its points and their status), its deliveries (sub-orders, with "
            "the lines and points each delivered) and payments. A delivery's number answers the delivery, with the "
            "lines it delivered."
        ),
    )
    @documents_errors(OrderNotFound, OrderInvalid)
    def get(self, request: Request, number: str) -> Response:
        return Response(order_answer(order_get(channel=_source(request), number=number)))


class OrderDeliveryCreateApi(OrderPathApi):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="orders_deliver",
        tags=TAGS,
        parameters=[SOURCE],
        request=DeliveryInput,
        responses={201: OrderOutput},
        examples=[
            OpenApiExample(
                "Two of the four chairs",
                value={"number": "SO-2026-0042-D1", "lines": [{"line_number": 2, "quantity": "2"}]},
                request_only=True,
            )
        ],
        description=(
            "Deliver lines, or part of a line's quantity (F-ORD-3): a delivery sub-order referencing the order "
            "holds them and exactly their points become spendable (F-EARN-4). 201 with the delivery. A line the "
            "order lacks is 409 `order_line_unknown`, one already delivered or cancelled `order_line_not_placed`, "
            "more than is left `order_line_quantity_exceeded` — each with `field` and `line_number`; nothing "
            "changes."
        ),
    )
    @documents_errors(OrderNotFound, OrderInvalid, *LINE_ERRORS, OrderLineNotPlaced, OrderExists, OperationConflict)
    @idempotent()
    def post(self, request: Request, number: str) -> Response:
        data = _input(DeliveryInput, request)
        delivery = order_deliver(
            order=_named(request, number),
            lines=_lines(data["lines"]),
            operation_key=request_operation_key(request),
            number=data["number"],
            delivered_at=data["delivered_at"],
            actor=_actor(request),
        )
        return _answer(delivery, status.HTTP_201_CREATED)


class OrderCancellationCreateApi(OrderPathApi):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="orders_cancel",
        tags=TAGS,
        parameters=[SOURCE],
        request=CancellationInput,
        responses=OrderOutput,
        examples=[
            OpenApiExample("The nightstand", value={"lines": [{"line_number": 3}]}, request_only=True),
            OpenApiExample(
                "Everything not yet delivered", value={"reason": "Customer changed mind"}, request_only=True
            ),
        ],
        description=(
            "Cancel lines, part of a line's quantity, or (without `lines`) everything not yet delivered (F-ORD-5): "
            "their pending points are cancelled and the points spent on them refunded to the very lots they came "
            "from (F-LED-6). A delivered line is 409 `order_line_not_placed`: return it instead."
        ),
    )
    @documents_errors(OrderNotFound, OrderInvalid, *LINE_ERRORS, OrderLineNotPlaced, NothingToCancel, OperationConflict)
    @idempotent()
    def post(self, request: Request, number: str) -> Response:
        data = _input(CancellationInput, request)
        order = order_cancel(
            order=_named(request, number),
            lines=_lines(data["lines"]),
            operation_key=request_operation_key(request),
            reason=data["reason"],
            actor=_actor(request),
        )
        return _answer(order)


class OrderReturnCreateApi(OrderPathApi):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="orders_return",
        tags=TAGS,
        parameters=[SOURCE],
        request=ReturnInput,
        responses=OrderOutput,
        examples=[
            OpenApiExample("One chair", value={"lines": [{"line_number": 2, "quantity": "1"}]}, request_only=True)
        ],
        description=(
            "Return delivered lines or part of their quantity (F-ORD-5): their earned points are clawed back — what "
            "was already spent becomes debt, paid from the next points — and the points spent on them refunded. An "
            "undelivered line is 409 `order_line_not_delivered`."
        ),
    )
    @documents_errors(OrderNotFound, OrderInvalid, *LINE_ERRORS, OrderLineNotDelivered, OperationConflict)
    @idempotent()
    def post(self, request: Request, number: str) -> Response:
        data = _input(ReturnInput, request)
        order = order_return(
            order=_named(request, number),
            lines=_lines(data["lines"]),
            operation_key=request_operation_key(request),
            reason=data["reason"],
            actor=_actor(request),
        )
        return _answer(order)


class OrderPaymentCreateApi(OrderPathApi):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="orders_pay",
        tags=TAGS,
        parameters=[SOURCE],
        request=PaymentInput,
        responses={201: PaymentOutput},
        examples=[
            OpenApiExample(
                "The second of three payments",
                value={"payment_id": "pay-2", "method": "card", "amount": "30000.00"},
                request_only=True,
            )
        ],
        description=(
            "Record a payment (F-ORD-4): card, cash, gift certificate or other, several per order at different "
            "times. The same `payment_id` with the same data changes nothing; with other data it is 409 "
            "`payment_exists`. For orders whose points unlock on payment, the lines the payments now cover (in "
            "line order) get their points. A delivery's number records the payment on its order (cash on "
            "delivery)."
        ),
    )
    @documents_errors(OrderNotFound, OrderInvalid, PaymentExists, OperationConflict)
    @idempotent()
    def post(self, request: Request, number: str) -> Response:
        data = _input(PaymentInput, request)
        payment = order_pay(
            order=_order(request, number, parent=True),
            external_id=data["payment_id"],
            method=data["method"],
            amount=data["amount"],
            paid_at=data["paid_at"],
            operation_key=request_operation_key(request),
            actor=_actor(request),
        )
        return Response(payment_answer(payment), status=status.HTTP_201_CREATED)


class OrderCustomerAttachApi(OrderPathApi):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="orders_attach_customer",
        tags=TAGS,
        parameters=[SOURCE],
        request=AttachCustomerInput,
        responses=OrderOutput,
        examples=[OpenApiExample("By phone", value={"phone": "+79161234567"}, request_only=True)],
        description=(
            "Give an order placed without a customer to the customer now known (F-ORD-10), by id, phone or card "
            "(exactly one): the lines' points follow — pending for lines still to be delivered, spendable for "
            "delivered ones. The same customer again changes nothing; another is 409 `order_customer_attached`. A "
            "delivery's number names its order."
        ),
    )
    @documents_errors(OrderNotFound, OrderInvalid, CustomerNotFound, CustomerMerged, CustomerAlreadyAttached)
    @idempotent()
    def post(self, request: Request, number: str) -> Response:
        data = _input(AttachCustomerInput, request)
        order = _order(request, number, parent=True)
        if data["customer_id"] is not None:
            customer = _not_merged(customer_get(customer_id=data["customer_id"]))
        else:
            identifier = {"phone": data["phone"]} if data["phone"] else {"card": data["card"]}
            customer = customer_identify(**identifier)
        order = order_attach_customer(
            order=order, customer=customer, operation_key=request_operation_key(request), actor=_actor(request)
        )
        return _answer(order)


# --- personal account ----------------------------------------------------------------------------------------------


class CustomerOrdersApi(GenericAPIView):
    required_scopes = {"GET": Scope.ORDERS_READ}
    serializer_class = OrderOutput
    filter_backends = []

    @extend_schema(
        operation_id="customers_orders",
        tags=TAGS,
        responses=OrderOutput(many=True),
        description=(
            "The personal account's orders (F-ORD-3), newest first: each order once, with its deliveries "
            "(sub-orders) and the lines and points each delivered, its lines' statuses and points, and payments. "
            "A merged customer answers 409 `customer_merged` with `merged_into`: switch to that id."
        ),
    )
    @documents_errors(CustomerNotFound, CustomerMerged)
    def get(self, request: Request, customer_id: int) -> Response:
        customer = _not_merged(customer_get(customer_id=customer_id))
        page = self.paginate_queryset(customer_orders(customer=customer))
        order_prefetch(page)
        return self.get_paginated_response([order_answer(order) for order in page])
