"""Input and Output serializers of the catalogue API.

The upsert's items are checked here for shape only (types, lengths); ``catalog_upsert`` owns the rules (known
category codes, cycles, duplicates, a new arrival's date) and answers ``catalog_invalid`` naming item and field.
"""

from __future__ import annotations

from rest_framework import serializers

from catalog.models import CODE_MAX_LENGTH, NAME_MAX_LENGTH, SKU_MAX_LENGTH, Product
from catalog.services import MAX_ITEMS


class CategoryInput(serializers.Serializer):
    code = serializers.SlugField(max_length=CODE_MAX_LENGTH, help_text="Unique category code, as the ERP knows it.")
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    parent = serializers.SlugField(
        max_length=CODE_MAX_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Code of the parent category (stored or sent in the same request); null for a root.",
    )


class ProductInput(serializers.Serializer):
    sku = serializers.CharField(max_length=SKU_MAX_LENGTH)
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    category = serializers.SlugField(
        max_length=CODE_MAX_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Category code (stored or sent in the same request).",
    )
    new_arrival = serializers.BooleanField(required=False, default=False)
    arrival_date = serializers.DateField(required=False, allow_null=True, help_text="Required for a new arrival.")
    excluded_from_earning = serializers.BooleanField(required=False, default=False)
    excluded_from_redemption = serializers.BooleanField(required=False, default=False)
    is_active = serializers.BooleanField(required=False, default=True)


class CatalogUpsertInput(serializers.Serializer):
    categories = serializers.ListField(
        child=CategoryInput(),
        required=False,
        default=list,
        help_text=(
            f"Categories to create or update by code. At most {MAX_ITEMS} items per request, both lists together."
        ),
    )
    products = serializers.ListField(
        child=ProductInput(), required=False, default=list, help_text="Products to create or update by SKU."
    )


class CountsOutput(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class CatalogUpsertOutput(serializers.Serializer):
    categories = CountsOutput()
    products = CountsOutput()


class ProductOutput(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    category_path = serializers.CharField(
        source="category.path",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Codes from the root category down to the product's, e.g. furniture/sofas.",
    )

    class Meta:
        model = Product
        fields = [
            "sku",
            "name",
            "category",
            "category_path",
            "new_arrival",
            "arrival_date",
            "excluded_from_earning",
            "excluded_from_redemption",
            "is_active",
            "updated_at",
        ]
        read_only_fields = fields
