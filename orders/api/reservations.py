"""Channel API of reservations (SPEC F-ORD-7, F-TIER-3): a customer books items to see in a showroom.

Thin callers: an Input serializer validates, ``orders.services.reservations`` acts, an Output serializer renders.
A reservation's number is the calling channel's (unique per channel); cancel and fulfil act on the caller's
reservation with that number, or another channel's with ``?source=<channel code>``.
"""

from __future__ import annotations

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api.schema import documents_errors
from customers.exceptions import CustomerAnonymised, CustomerMerged, CustomerNotFound
from customers.models import Customer
from customers.selectors import customer_get
from integrations.api.idempotency import idempotent
from integrations.authentication import request_channel
from integrations.models import Channel, Store
from integrations.scopes import Scope
from orders.exceptions import OrderInvalid, ReservationLimitExceeded, ReservationNotActive, ReservationNotFound
from orders.models import Reservation
from orders.services.reservations import (
    ReservationItem,
    reservation_cancel,
    reservation_create,
    reservation_find,
    reservation_fulfil,
)
from programmes.exceptions import ProgrammeNotFound

TAGS = ["reservations"]
SOURCE = OpenApiParameter(
    "source",
    str,
    OpenApiParameter.QUERY,
    required=False,
    description="Code of the channel whose reservation number this is. Default: the calling channel.",
)

# --- serializers -------------------------------------------------------------------------------


class ReservationItemInput(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ReservationCreateInput(serializers.Serializer):
    number = serializers.CharField(max_length=64, help_text="The channel's own reservation number.")
    store = serializers.CharField(
        max_length=50, required=False, allow_null=True, default=None, help_text="Code of the showroom."
    )
    items = ReservationItemInput(many=True, allow_empty=False, max_length=100)

    def validate_store(self, code: str | None) -> Store | None:
        if code is None:
            return None
        store = Store.objects.filter(code=code, is_active=True).first()
        if store is None:
            raise serializers.ValidationError(_("No such active store."), code="unknown_store")
        return store

    def validate_items(self, items: list[dict]) -> list[ReservationItem]:
        skus = [item["sku"] for item in items]
        if len(set(skus)) != len(skus):
            raise serializers.ValidationError(_("Each SKU once, with its quantity."), code="duplicate")
        return [ReservationItem(**item) for item in items]


class ReservationCancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ReservationListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=Reservation.Status.choices, required=False)


class ReservationItemOutput(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    name = serializers.CharField()


class ReservationOutput(serializers.Serializer):
    number = serializers.CharField()
    source = serializers.CharField(source="channel.code", help_text="Code of the channel the number belongs to.")
    customer_id = serializers.IntegerField()
    store = serializers.CharField(source="store.code", allow_null=True, default=None)
    items = ReservationItemOutput(many=True)
    item_count = serializers.IntegerField(help_text="Units reserved: the sum of the items' quantities.")
    status = serializers.SerializerMethodField(
        help_text="`expired` also for an active reservation past `expires_at` that the hourly job has not marked."
    )
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=Reservation.Status.choices))
    def get_status(self, reservation: Reservation) -> str:
        if reservation.status == Reservation.Status.ACTIVE and reservation.expires_at <= timezone.now():
            return Reservation.Status.EXPIRED
        return reservation.status


def _answer(reservation: Reservation, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(ReservationOutput(reservation).data, status=status_code)


# --- reads -------------------------------------------------------------------------------------


def customer_reservations(*, customer: Customer, status_: str | None = None) -> QuerySet[Reservation]:
    """The customer's reservations, those still active first, newest first within each group. ``status_``
    filters by the status as shown (an active reservation past its expiry is expired)."""
    now = timezone.now()
    live = Q(status=Reservation.Status.ACTIVE, expires_at__gt=now)
    reservations = Reservation.objects.filter(customer=customer).select_related("channel", "store")
    if status_ == Reservation.Status.ACTIVE:
        reservations = reservations.filter(live)
    elif status_ == Reservation.Status.EXPIRED:
        reservations = reservations.filter(
            Q(status=Reservation.Status.EXPIRED) | Q(status=Reservation.Status.ACTIVE, expires_at__lte=now)
        )
    elif status_:
        reservations = reservations.filter(status=status_)
    return reservations.annotate(
        live_first=Case(When(live, then=Value(0)), default=Value(1), output_field=IntegerField())
    ).order_by("live_first", "-created_at", "-pk")


def _reservation_of(request: Request, number: str) -> Reservation:
    source = request.query_params.get("source")
    if "\x00" in number or (source and "\x00" in source):  # PostgreSQL refuses NUL in text
        raise ReservationNotFound(extra={"number": number.replace("\x00", "")})
    channel = request_channel(request)
    if source and source != channel.code:
        channel = Channel.objects.filter(code=source).first()
        if channel is None:
            raise ReservationNotFound(extra={"number": number})
    return reservation_find(channel=channel, number=number)


# --- views -------------------------------------------------------------------------------------


class CustomerReservationsApi(GenericAPIView):
    required_scopes = {"GET": Scope.ORDERS_READ, "POST": Scope.ORDERS_WRITE}
    serializer_class = ReservationOutput
    filter_backends = []  # the one filter, status, is validated by ReservationListQuery

    @extend_schema(
        operation_id="customer_reservations",
        tags=TAGS,
        parameters=[ReservationListQuery],
        responses=ReservationOutput(many=True),
        description="The customer's reservations: those still active first, then the others, newest first.",
    )
    @documents_errors(CustomerNotFound, "validation_error")
    def get(self, request: Request, customer_id: int) -> Response:
        query = ReservationListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = customer_get(customer_id=customer_id)
        page = self.paginate_queryset(
            customer_reservations(customer=customer, status_=query.validated_data.get("status"))
        )
        return self.get_paginated_response(ReservationOutput(page, many=True).data)

    @extend_schema(
        operation_id="reservation_create",
        tags=TAGS,
        request=ReservationCreateInput,
        responses={201: ReservationOutput, 200: ReservationOutput},
        examples=[
            OpenApiExample(
                "Two chairs and a sofa",
                value={
                    "number": "R-1042",
                    "store": "msk-1",
                    "items": [
                        {"sku": "CHAIR-1", "quantity": 2, "name": "Kitchen chair"},
                        {"sku": "SOFA-1", "quantity": 1, "name": "Sofa"},
                    ],
                },
                request_only=True,
            )
        ],
        description=(
            "Book items to see in a showroom (SPEC F-ORD-7). The customer's tier limits how many units may be "
            "reserved at once over all their active reservations (`reservation_item_limit`, 422 with `limit`, "
            "`reserved` and `requested`) and adds days to the reservation's length (F-TIER-3). The number is the "
            "channel's: sent again with the same content it answers 200 with the reservation as it is now."
        ),
    )
    @documents_errors(
        CustomerNotFound,
        CustomerMerged,
        CustomerAnonymised,
        ProgrammeNotFound,
        ReservationLimitExceeded,
        OrderInvalid,
    )
    @idempotent()
    def post(self, request: Request, customer_id: int) -> Response:
        data = ReservationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get(customer_id=customer_id)
        outcome = reservation_create(channel=request_channel(request), customer=customer, **data.validated_data)
        return _answer(outcome.reservation, status.HTTP_200_OK if outcome.replayed else status.HTTP_201_CREATED)


class ReservationCancelApi(APIView):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="reservation_cancel",
        tags=TAGS,
        parameters=[SOURCE],
        request=ReservationCancelInput,
        responses=ReservationOutput,
        description="The customer no longer wants the items: the reservation stops counting towards the limit.",
    )
    @documents_errors(ReservationNotFound, ReservationNotActive)
    @idempotent()
    def post(self, request: Request, number: str) -> Response:
        data = ReservationCancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = reservation_cancel(
            reservation=_reservation_of(request, number),
            actor=Actor(channel=request_channel(request)),
            reason=data.validated_data["reason"],
        )
        return _answer(outcome.reservation)


class ReservationFulfilApi(APIView):
    required_scopes = {"POST": Scope.ORDERS_WRITE}

    @extend_schema(
        operation_id="reservation_fulfil",
        tags=TAGS,
        parameters=[SOURCE],
        request=None,
        responses=ReservationOutput,
        description="The customer came for the items: the reservation is fulfilled.",
    )
    @documents_errors(ReservationNotFound, ReservationNotActive)
    @idempotent()
    def post(self, request: Request, number: str) -> Response:
        outcome = reservation_fulfil(
            reservation=_reservation_of(request, number), actor=Actor(channel=request_channel(request))
        )
        return _answer(outcome.reservation)
