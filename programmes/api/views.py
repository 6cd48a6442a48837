"""Channel API of programmes: the customer's tier and perks in one fast call (SPEC F-TIER-3, F-TIER-4).

The site's early-access check and the reservation system read it; the early-access rule the site applies is in
the docstring of ``programmes.models``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import documents_errors
from customers.exceptions import CustomerNotFound
from customers.selectors import customer_get
from integrations.scopes import Scope
from programmes.api.serializers import CustomerTierOutput, customer_tier_answer
from programmes.exceptions import ProgrammeNotFound
from programmes.selectors import customer_tier_status

TAGS = ["programmes"]


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
