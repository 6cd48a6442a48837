import django_filters

from catalog.models import CODE_MAX_LENGTH, SKU_MAX_LENGTH, Product
from catalog.selectors import products_in_category


class ProductFilter(django_filters.FilterSet):
    sku = django_filters.CharFilter(field_name="sku", max_length=SKU_MAX_LENGTH, help_text="Exact SKU.")
    category = django_filters.CharFilter(
        method="filter_category",
        max_length=CODE_MAX_LENGTH,
        help_text="Category code: the products of this category and of every category below it.",
    )
    new_arrival = django_filters.BooleanFilter(field_name="new_arrival")

    class Meta:
        model = Product
        fields = ["sku", "category", "new_arrival"]

    def filter_category(self, queryset, name: str, value: str):
        return products_in_category(queryset, code=value)
