from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.schema import documents_errors
from customers.api.filters import CustomerFilter
from customers.api.serializers import CustomerCreateInput, CustomerOutput
from customers.exceptions import CustomerExists, CustomerNotFound
from customers.selectors import customer_get, customer_list
from customers.services import customer_create
from integrations.api.idempotency import idempotent
from integrations.scopes import Scope


class CustomerListCreateApi(GenericAPIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ, "POST": Scope.CUSTOMERS_WRITE}
    serializer_class = CustomerOutput
    filterset_class = CustomerFilter

    def get_queryset(self):
        return customer_list()

    @extend_schema(operation_id="customers_list", tags=["customers"], responses=CustomerOutput(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(CustomerOutput(page, many=True).data)

    @extend_schema(
        operation_id="customers_create",
        tags=["customers"],
        request=CustomerCreateInput,
        responses={201: CustomerOutput},
        examples=[
            OpenApiExample("Receipt phone", value={"phone": "8 916 123-45-67", "name": "Anna"}, request_only=True)
        ],
        description="Record a customer seen on a receipt or order as a non-member (SPEC F-ID-4).",
    )
    @documents_errors(CustomerExists)
    @idempotent()
    def post(self, request: Request) -> Response:
        data = CustomerCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_create(**data.validated_data)
        return Response(CustomerOutput(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(GenericAPIView):
    required_scopes = {"GET": Scope.CUSTOMERS_READ}
    serializer_class = CustomerOutput

    @extend_schema(operation_id="customers_retrieve", tags=["customers"])
    @documents_errors(CustomerNotFound)
    def get(self, request: Request, customer_id: int) -> Response:
        return Response(CustomerOutput(customer_get(customer_id=customer_id)).data)
