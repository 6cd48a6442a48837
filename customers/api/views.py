"""Channel API of customers (SPEC F-ID): identify at the till, record non-members, profile, SMS registration,
email validation, consents, merge, and the personal account the site and the app show.

Thin callers: an Input serializer checks the shape, a service or selector acts, an Output serializer renders.
The acting channel is recorded as the actor of every change.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api.schema import documents_errors
from customers.api.filters import CustomerFilter
from customers.api.selectors import customer_profile_get, customer_profiles
from customers.api.serializers import (
    AccountOutput,
    ConsentSetInput,
    ConsentsOutput,
    CustomerCreateInput,
    CustomerOutput,
    CustomerUpdateInput,
    EmailValidationConfirmInput,
    EmailValidationRequestInput,
    EmailValidationSentOutput,
    IdentifyOutput,
    IdentifyQuery,
    MergeInput,
    RegistrationOutput,
    SmsCodeConfirmInput,
    SmsCodeRequestInput,
    SmsCodeSentOutput,
)
from customers.exceptions import (
    CardNumberTaken,
    CustomerAnonymised,
    CustomerBlocked,
    CustomerExists,
    CustomerMerged,
    CustomerNotFound,
    EmailMissing,
    EmailTokenExpired,
    EmailTokenInvalid,
    EmailTokenStale,
    ExternalIdTaken,
    IdentifierRequired,
    InvalidCustomerData,
    MergeIntoSelf,
    SmsCodeAttemptsExceeded,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsCodeNotRequested,
    SmsDailyLimitReached,
    SmsResendTooSoon,
)
from customers.models import ConsentEvent, Customer
from customers.selectors import (
    customer_consent_history,
    customer_consents,
    customer_get,
    customer_identify_match,
    customer_list,
)
from customers.services import (
    consent_set,
    customer_balance_type,
    customer_create,
    customer_merge,
    customer_update,
    email_validation_confirm,
    email_validation_request,
    sms_code_confirm,
    sms_code_request,
)
from integrations.api.idempotency import idempotent
from integrations.authentication import request_channel
from integrations.scopes import Scope
from points.exceptions import HoldsOpen, ReasonRequired
from points.selectors import Balance, points_balance
from programmes.selectors import customer_tier_code

TAGS = ["customers"]
CONSENT_HISTORY_LIMIT = 100
NEW_KEY_AFTER_429 = (
    " A refused request is answered the same way when retried with the same `Idempotency-Key`: after waiting "
    "`retry_after` seconds, ask with a new key."
)


def _input(serializer_class: type, request: Request) -> dict:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


def _query(serializer_class: type, request: Request) -> dict:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


def _actor(request: Request) -> Actor:
    return Actor(channel=request_channel(request))


def _profile(customer_id: int) -> dict:
    return CustomerOutput(customer_profile_get(customer_id=customer_id)).data


def _balance(customer: Customer) -> Balance:
    return points_balance(customer=customer, balance_type=customer_balance_type(customer))


def _consents(customer: Customer) -> list[dict]:
    """Every consent channel, asked or not (then ``granted`` and the rest are null)."""
    return [
        {
            "channel": channel,
            "granted": consent.granted if consent else None,
            "source": consent.source if consent else None,
            "text_version": consent.text_version if consent else None,
            "changed_at": consent.changed_at if consent else None,
        }
        for channel, consent in customer_consents(customer=customer).items()
    ]


def _consents_answer(customer: Customer) -> Response:
    history = customer_consent_history(customer=customer)[:CONSENT_HISTORY_LIMIT]
    return Response(ConsentsOutput({"consents": _consents(customer), "history": history}).data)


# --- customers -------------------------------------------------------------------------------


class CustomerListCreateApi(GenericAPIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ, "POST": Scope.CUSTOMERS_WRITE}
    serializer_class = CustomerOutput
    filterset_class = CustomerFilter

    def get_queryset(self):
        return customer_profiles(customer_list())

    @extend_schema(
        operation_id="customers_list",
        tags=TAGS,
        responses=CustomerOutput(many=True),
        description="Customers, newest first; filter by phone (any format), email, card number, kind, membership.",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(CustomerOutput(page, many=True).data)

    @extend_schema(
        operation_id="customers_create",
        tags=TAGS,
        request=CustomerCreateInput,
        responses={201: CustomerOutput},
        examples=[
            OpenApiExample("Receipt phone", value={"phone": "8 (916) 123-45-67", "name": "Anna"}, request_only=True),
            OpenApiExample(
                "Site account",
                value={"phone": "+79161234567", "email": "anna@example.com", "store": "msk-1", "external_id": "u-42"},
                request_only=True,
            ),
        ],
        description=(
            "Record a customer seen on a receipt or order as a non-member (SPEC F-ID-4): points can be accrued "
            "to them but not spent until they join. `customer_exists` carries the existing `customer_id`."
        ),
    )
    @documents_errors(InvalidCustomerData, CustomerExists, CardNumberTaken, ExternalIdTaken)
    @idempotent()
    def post(self, request: Request) -> Response:
        data = _input(CustomerCreateInput, request)
        customer = customer_create(**data, actor=_actor(request))
        return Response(_profile(customer.pk), status=status.HTTP_201_CREATED)


class CustomerDetailApi(APIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ, "PATCH": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_retrieve",
        tags=TAGS,
        responses=CustomerOutput,
        description="The profile. A merged duplicate answers with `merged_into` set: use that customer instead.",
    )
    @documents_errors(CustomerNotFound)
    def get(self, request: Request, customer_id: int) -> Response:
        return Response(_profile(customer_id))

    @extend_schema(
        operation_id="customers_update",
        tags=TAGS,
        request=CustomerUpdateInput,
        responses=CustomerOutput,
        examples=[OpenApiExample("New email", value={"email": "anna@example.com"}, request_only=True)],
        description=(
            "Change the fields given; the customer's history records each change with the channel. "
            "`external_id` links the customer to its id in the calling channel's system."
        ),
    )
    @documents_errors(
        CustomerNotFound,
        InvalidCustomerData,
        CustomerExists,
        CardNumberTaken,
        ExternalIdTaken,
        CustomerMerged,
        CustomerAnonymised,
    )
    @idempotent()
    def patch(self, request: Request, customer_id: int) -> Response:
        data = _input(CustomerUpdateInput, request)
        customer = customer_update(customer=customer_get(customer_id=customer_id), actor=_actor(request), **data)
        return Response(_profile(customer.pk))


class CustomerIdentifyApi(APIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ}

    @extend_schema(
        operation_id="customers_identify",
        tags=TAGS,
        parameters=[IdentifyQuery],
        responses=IdentifyOutput,
        description=(
            "The till's one call: find the customer by exactly one of phone (any format), card, external id "
            "(the calling channel's) or email, with membership and balance. An identifier of a merged "
            "duplicate finds the customer it was merged into (`redirected_from` names the duplicate). "
            "`tier` is the tier code (perks: `GET /customers/{id}/tier`)."
        ),
    )
    @documents_errors("validation_error", IdentifierRequired, CustomerNotFound)
    def get(self, request: Request) -> Response:
        found = customer_identify_match(**_query(IdentifyQuery, request), channel=request_channel(request))
        customer = customer_profile_get(customer_id=found.customer_id)
        answer = {
            "customer": customer,
            "redirected_from": found.redirected_from,
            "membership": customer.membership,
            "tier": customer_tier_code(customer=customer),
            "balance": _balance(customer),
        }
        return Response(IdentifyOutput(answer).data)


# --- SMS registration ------------------------------------------------------------------------


class SmsCodeRequestApi(APIView):
    required_scopes = {"POST": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_sms_code_request",
        tags=TAGS,
        request=SmsCodeRequestInput,
        responses={202: SmsCodeSentOutput},
        examples=[OpenApiExample("Till", value={"phone": "8 (916) 123-45-67"}, request_only=True)],
        description=(
            "Send a registration code by SMS (SPEC F-ID-2); the SMS also offers marketing consent. A new code "
            "replaces the previous one. Throttled per phone: `sms_resend_too_soon` and `sms_daily_limit_reached` "
            "carry `retry_after` seconds, also in the `Retry-After` header." + NEW_KEY_AFTER_429
        ),
    )
    @documents_errors(SmsResendTooSoon, SmsDailyLimitReached, CustomerBlocked)
    @idempotent()
    def post(self, request: Request) -> Response:
        sent = sms_code_request(**_input(SmsCodeRequestInput, request), actor=_actor(request))
        return Response(SmsCodeSentOutput(sent).data, status=status.HTTP_202_ACCEPTED)


class SmsCodeConfirmApi(APIView):
    required_scopes = {"POST": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_sms_code_confirm",
        tags=TAGS,
        request=SmsCodeConfirmInput,
        responses=RegistrationOutput,
        examples=[
            OpenApiExample(
                "Joins with consent", value={"phone": "89161234567", "code": "123456", "accept_marketing": True}
            )
        ],
        description=(
            "Check the code and make the phone's owner a member: a non-member (e.g. from a receipt) joins and keeps "
            "its id, otherwise a customer is created; the welcome bonus is granted on joining. "
            "`accept_marketing` records SMS consent (and email consent with `email`). `sms_code_invalid` carries "
            "`attempts_left`; each attempt needs its own `Idempotency-Key`."
        ),
    )
    @documents_errors(SmsCodeNotRequested, SmsCodeExpired, SmsCodeInvalid, SmsCodeAttemptsExceeded, CustomerBlocked)
    @idempotent()
    def post(self, request: Request) -> Response:
        registration = sms_code_confirm(**_input(SmsCodeConfirmInput, request), actor=_actor(request))
        answer = {"customer": customer_profile_get(customer_id=registration.customer.pk), "joined": registration.joined}
        return Response(RegistrationOutput(answer).data)


# --- email validation ------------------------------------------------------------------------


class EmailValidationRequestApi(APIView):
    required_scopes = {"POST": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_email_validation_request",
        tags=TAGS,
        request=EmailValidationRequestInput,
        responses={202: EmailValidationSentOutput},
        description=(
            "Email the customer a confirmation link (SPEC F-ID-3), first setting `email` if given. The link "
            "carries a token for `customers_email_validation_confirm`; it is never returned here."
        ),
    )
    @documents_errors(CustomerNotFound, EmailMissing, InvalidCustomerData, CustomerMerged, CustomerAnonymised)
    @idempotent()
    def post(self, request: Request, customer_id: int) -> Response:
        data = _input(EmailValidationRequestInput, request)
        customer = customer_get(customer_id=customer_id)
        email_validation_request(customer=customer, actor=_actor(request), email=data.get("email"))
        answer = {"email": customer_get(customer_id=customer_id).email, "sent": True}
        return Response(EmailValidationSentOutput(answer).data, status=status.HTTP_202_ACCEPTED)


class EmailValidationConfirmApi(APIView):
    required_scopes = {"POST": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_email_validation_confirm",
        tags=TAGS,
        request=EmailValidationConfirmInput,
        responses=CustomerOutput,
        description=(
            "The customer opened the link: the email is validated, email consent recorded with "
            "`accept_marketing`, and the one-time email bonus granted (once per customer ever). Confirming again "
            "changes nothing."
        ),
    )
    @documents_errors(EmailTokenInvalid, EmailTokenExpired, EmailTokenStale, CustomerAnonymised)
    @idempotent()
    def post(self, request: Request) -> Response:
        customer = email_validation_confirm(**_input(EmailValidationConfirmInput, request), actor=_actor(request))
        return Response(_profile(customer.pk))


# --- consents --------------------------------------------------------------------------------


class CustomerConsentsApi(APIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ, "POST": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_consents",
        tags=TAGS,
        responses=ConsentsOutput,
        description=(
            f"Marketing consent on every channel (SPEC F-ID-5) and the latest {CONSENT_HISTORY_LIMIT} changes."
        ),
    )
    @documents_errors(CustomerNotFound)
    def get(self, request: Request, customer_id: int) -> Response:
        return _consents_answer(customer_get(customer_id=customer_id))

    @extend_schema(
        operation_id="customers_consent_set",
        tags=TAGS,
        request=ConsentSetInput,
        responses=ConsentsOutput,
        examples=[OpenApiExample("Unsubscribe", value={"channel": "sms", "granted": False}, request_only=True)],
        description="Grant or revoke marketing on one channel; recorded with source `api` and the calling channel.",
    )
    @documents_errors(CustomerNotFound, CustomerMerged, CustomerAnonymised)
    @idempotent()
    def post(self, request: Request, customer_id: int) -> Response:
        data = _input(ConsentSetInput, request)
        customer = customer_get(customer_id=customer_id)
        consent_set(customer=customer, source=ConsentEvent.Source.API, actor=_actor(request), **data)
        return _consents_answer(customer)


# --- merge -----------------------------------------------------------------------------------


class CustomerMergeApi(APIView):
    required_scopes = {"POST": Scope.CUSTOMERS_MERGE}

    @extend_schema(
        operation_id="customers_merge",
        tags=TAGS,
        request=MergeInput,
        responses=CustomerOutput,
        examples=[
            OpenApiExample("Two phones", value={"duplicate_id": 1042, "reason": "Same person"}, request_only=True)
        ],
        description=(
            "Merge the duplicate into this customer (SPEC F-ID-7): points move through the ledger, consents, "
            "external ids and the card follow; the duplicate stays as a redirect. Answers the survivor's "
            "profile; merging the same pair again changes nothing."
        ),
    )
    @documents_errors(
        CustomerNotFound, MergeIntoSelf, CustomerMerged, CustomerAnonymised, CustomerBlocked, ReasonRequired, HoldsOpen
    )
    @idempotent()
    def post(self, request: Request, customer_id: int) -> Response:
        data = _input(MergeInput, request)
        survivor = customer_get(customer_id=customer_id)
        duplicate = customer_get(customer_id=data["duplicate_id"])
        customer_merge(duplicate=duplicate, survivor=survivor, actor=_actor(request), reason=data["reason"])
        return Response(_profile(survivor.pk))


# --- personal account ------------------------------------------------------------------------


class CustomerAccountApi(APIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ}

    @extend_schema(
        operation_id="customers_account",
        tags=TAGS,
        responses=AccountOutput,
        description=(
            "What the site or app shows the customer it identified: profile, tier code (perks: "
            "`GET /customers/{id}/tier`), balance and consents. Points history: `points_history`. A merged customer "
            "answers `customer_merged` with `merged_into`: switch to that id."
        ),
    )
    @documents_errors(CustomerNotFound, CustomerMerged)
    def get(self, request: Request, customer_id: int) -> Response:
        customer = customer_profile_get(customer_id=customer_id)
        if customer.merged_into_id is not None:
            raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
        answer = {
            "profile": customer,
            "tier": customer_tier_code(customer=customer),
            "balance": _balance(customer),
            "consents": _consents(customer),
        }
        return Response(AccountOutput(answer).data)
