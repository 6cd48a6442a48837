"""Channel API of the points ledger (SPEC F-LED): balance, history, holds, manual adjustments.

Thin callers: an Input serializer validates, a ledger service acts, an Output serializer renders.
Every write's ledger operation key is derived from the channel and its ``Idempotency-Key`` (see
``operation_key``), so even a retry that takes over a crashed request cannot move points twice.
"""

from datetime import timedelta

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import documents_errors
from customers.exceptions import CustomerNotFound
from customers.selectors import customer_get
from integrations.api.idempotency import idempotent, request_operation_key
from integrations.authentication import request_channel
from integrations.scopes import Scope
from points.api.selectors import hold_get, operation_entries
from points.api.serializers import (
    AdjustmentCreateInput,
    AdjustmentOutput,
    BalanceOutput,
    BalanceQuery,
    EntryOutput,
    HistoryQuery,
    HoldCommitInput,
    HoldCreateInput,
    HoldOutput,
    hold_answer,
    hold_commit_input_plain,
    hold_input_plain,
)
from points.exceptions import (
    HoldNotFound,
    HoldNotOpen,
    InsufficientPoints,
    InvalidAmount,
    OperationKeyConflict,
    ReasonRequired,
)
from points.models import Hold
from points.selectors import points_balance, points_history
from points.services import (
    Actor,
    PointsOperation,
    points_adjust,
    points_hold,
    points_hold_commit,
    points_hold_release,
)

TAGS = ["points"]


def _valid(serializer_class: type, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _query(serializer_class: type, request: Request) -> dict:
    return _valid(serializer_class, request.query_params)


# One serializer renders every answer: a new one per call deep-copies its declared fields and those of its nested
# balance, a fifth of a hold call's CPU. Rendering reads only the instance given, so sharing it is safe.
def _hold_answer(operation: PointsOperation, status_code: int = status.HTTP_200_OK) -> Response:
    """The hold and the balance right after the operation: as the operation left them when it says (the ledger's
    SQL functions answer with both), read back otherwise (a replay, or the Python version of the ledger)."""
    hold: Hold = operation.hold
    if operation.balance is not None and not operation.replayed:
        hold.balance = operation.balance
    else:
        hold = hold_get(hold_id=hold.pk)
        hold.balance = points_balance(customer=hold.account.customer, balance_type=hold.account.balance_type.code)
    return Response(hold_answer(hold), status=status_code)


class PointsBalanceApi(APIView):
    required_scopes = {"GET": Scope.POINTS_READ}

    @extend_schema(
        operation_id="points_balance",
        tags=TAGS,
        parameters=[BalanceQuery],
        responses=BalanceOutput,
        description="Available, pending, held and owed points of one balance type, and how many expire soon.",
    )
    @documents_errors(CustomerNotFound, "validation_error")
    def get(self, request: Request, customer_id: int) -> Response:
        query = _query(BalanceQuery, request)
        customer = customer_get(customer_id=customer_id)
        return Response(BalanceOutput(points_balance(customer=customer, **query)).data)


class PointsHistoryApi(GenericAPIView):
    required_scopes = {"GET": Scope.POINTS_READ}
    serializer_class = EntryOutput
    filter_backends = []  # the one filter, balance_type, is validated by HistoryQuery

    @extend_schema(
        operation_id="points_history",
        tags=TAGS,
        parameters=[HistoryQuery],
        responses=EntryOutput(many=True),
        description=(
            "Journal lines, newest first. Each lists the lots it changed: a spend shows which accruals it "
            "consumed (SPEC F-LED-11); `source_type`/`source_id` name what the first of them came from, e.g. "
            "the order line."
        ),
    )
    @documents_errors(CustomerNotFound, "validation_error")
    def get(self, request: Request, customer_id: int) -> Response:
        query = _query(HistoryQuery, request)
        customer = customer_get(customer_id=customer_id)
        page = self.paginate_queryset(points_history(customer=customer, **query))
        return self.get_paginated_response(EntryOutput(page, many=True).data)


class PointsHoldCreateApi(APIView):
    required_scopes = {"POST": Scope.POINTS_WRITE}

    @extend_schema(
        operation_id="points_hold_create",
        tags=TAGS,
        request=HoldCreateInput,
        responses={201: HoldOutput},
        examples=[OpenApiExample("Checkout", value={"amount": "300.00"}, request_only=True)],
        description=(
            "Reserve points at checkout (SPEC F-LED-10): they leave `available` and show as `held` until the "
            "hold is committed, released, or times out."
        ),
    )
    @documents_errors(CustomerNotFound, InsufficientPoints, InvalidAmount, OperationKeyConflict)
    @idempotent()
    def post(self, request: Request, customer_id: int) -> Response:
        data = hold_input_plain(request.data)
        if data is None:
            data = _valid(HoldCreateInput, request.data)
        timeout = data.pop("timeout_seconds")
        operation = points_hold(
            customer_id=customer_id,  # not read first: the hold finds no account for an unknown customer
            operation_key=request_operation_key(request),
            timeout=timedelta(seconds=timeout) if timeout is not None else None,
            actor=Actor(channel=request_channel(request)),
            **data,
        )
        return _hold_answer(operation, status.HTTP_201_CREATED)


class PointsHoldCommitApi(APIView):
    required_scopes = {"POST": Scope.POINTS_WRITE}

    @extend_schema(
        operation_id="points_hold_commit",
        tags=TAGS,
        request=HoldCommitInput,
        responses=HoldOutput,
        description="The order is paid: spend the held points (or `amount` of them, releasing the rest).",
    )
    @documents_errors(HoldNotFound, HoldNotOpen, InvalidAmount, OperationKeyConflict)
    @idempotent()
    def post(self, request: Request, hold_id: int) -> Response:
        data = hold_commit_input_plain(request.data)
        if data is None:
            data = _valid(HoldCommitInput, request.data)
        operation = points_hold_commit(
            hold_id=hold_id,
            operation_key=request_operation_key(request),
            actor=Actor(channel=request_channel(request)),
            **data,
        )
        return _hold_answer(operation)


class PointsHoldReleaseApi(APIView):
    required_scopes = {"POST": Scope.POINTS_WRITE}

    @extend_schema(
        operation_id="points_hold_release",
        tags=TAGS,
        request=None,
        responses=HoldOutput,
        description="The checkout failed or was abandoned: give the held points back.",
    )
    @documents_errors(HoldNotFound, HoldNotOpen, OperationKeyConflict)
    @idempotent()
    def post(self, request: Request, hold_id: int) -> Response:
        operation = points_hold_release(
            hold_id=hold_id,
            operation_key=request_operation_key(request),
            actor=Actor(channel=request_channel(request)),
        )
        return _hold_answer(operation)


class PointsAdjustmentCreateApi(APIView):
    required_scopes = {"POST": Scope.POINTS_WRITE}

    @extend_schema(
        operation_id="points_adjustment_create",
        tags=TAGS,
        request=AdjustmentCreateInput,
        responses={201: AdjustmentOutput},
        examples=[
            OpenApiExample(
                "Goodwill",
                value={"amount": "500.00", "reason": "Late delivery, order 1042"},
                request_only=True,
            ),
            OpenApiExample(
                "Correction", value={"amount": "-120.00", "reason": "Duplicate receipt 77-31"}, request_only=True
            ),
        ],
        description=(
            "A manual correction with a mandatory reason: a positive amount adds a lot of manual points, a "
            "negative one removes spendable points (soonest-expiring first)."
        ),
    )
    @documents_errors(CustomerNotFound, InsufficientPoints, InvalidAmount, ReasonRequired, OperationKeyConflict)
    @idempotent()
    def post(self, request: Request, customer_id: int) -> Response:
        data = AdjustmentCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get(customer_id=customer_id)
        operation = points_adjust(
            customer=customer,
            operation_key=request_operation_key(request),
            actor=Actor(channel=request_channel(request)),
            **data.validated_data,
        )
        balance_type = data.validated_data["balance_type"]
        answer = {
            "operation_key": operation.operation_key,
            "entries": operation_entries(operation_key=operation.operation_key),
            "balance": points_balance(customer=customer, balance_type=balance_type),
        }
        return Response(AdjustmentOutput(answer).data, status=status.HTTP_201_CREATED)
