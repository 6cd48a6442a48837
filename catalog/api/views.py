"""Channel API of the catalogue (SPEC F-INT-4): the ERP's idempotent bulk sync and product reads."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.filters import ProductFilter
from catalog.api.serializers import CatalogUpsertInput, CatalogUpsertOutput, ProductOutput
from catalog.exceptions import CatalogInvalid, CatalogTooLarge, ProductNotFound
from catalog.selectors import product_get, product_list
from catalog.services import MAX_ITEMS, catalog_size_check, catalog_upsert
from core.api.schema import documents_errors
from integrations.api.idempotency import idempotent
from integrations.scopes import Scope

TAGS = ["catalog"]


def _count(data: object, name: str) -> int:
    items = data.get(name) if isinstance(data, dict) else None
    return len(items) if isinstance(items, list) else 0


class CatalogUpsertApi(APIView):
    required_scopes = {"POST": Scope.CATALOG_WRITE}

    @extend_schema(
        operation_id="catalog_upsert",
        tags=TAGS,
        request=CatalogUpsertInput,
        responses=CatalogUpsertOutput,
        examples=[
            OpenApiExample(
                "Sofas",
                value={
                    "categories": [
                        {"code": "furniture", "name": "Furniture"},
                        {"code": "sofas", "name": "Sofas", "parent": "furniture"},
                    ],
                    "products": [
                        {
                            "sku": "SOFA-001",
                            "name": "Oslo sofa",
                            "category": "sofas",
                            "new_arrival": True,
                            "arrival_date": "2026-03-01",
                        }
                    ],
                },
                request_only=True,
            ),
        ],
        description=(
            "Create or update categories (by `code`) and products (by `sku`) in one transaction; each item is "
            "the full record (omitted flags are false, `is_active` true). A `parent` or `category` may name a "
            "category sent in the same request. Every item is checked first: `catalog_invalid` names each bad "
            "item and field (`products.3.category`) and nothing is changed. Repeating a sync changes nothing "
            f"and counts its items as unchanged. At most {MAX_ITEMS} items per request (`catalog_too_large`)."
        ),
    )
    @documents_errors(CatalogInvalid, CatalogTooLarge)
    @idempotent()
    def post(self, request: Request) -> Response:
        # Before the item-by-item validation, which is what the limit protects.
        catalog_size_check(categories=_count(request.data, "categories"), products=_count(request.data, "products"))
        data = CatalogUpsertInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = catalog_upsert(**data.validated_data)
        return Response(CatalogUpsertOutput(result).data)


class ProductListApi(GenericAPIView):
    required_scopes = {"GET": Scope.CATALOG_READ}
    serializer_class = ProductOutput
    filterset_class = ProductFilter

    def get_queryset(self):
        return product_list()

    @extend_schema(
        operation_id="catalog_products_list",
        tags=TAGS,
        responses=ProductOutput(many=True),
        description="Products by SKU; filter by SKU, category (with everything below it) and the new-arrival flag.",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ProductOutput(page, many=True).data)


class ProductDetailApi(APIView):
    required_scopes = {"GET": Scope.CATALOG_READ}

    @extend_schema(operation_id="catalog_products_retrieve", tags=TAGS, responses=ProductOutput)
    @documents_errors(ProductNotFound)
    def get(self, request: Request, sku: str) -> Response:
        return Response(ProductOutput(product_get(sku=sku)).data)
