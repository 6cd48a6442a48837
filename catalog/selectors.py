"""Reads of the catalogue, shared by the API, the admin and the programme rules."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from catalog.exceptions import ProductNotFound
from catalog.models import PATH_SEPARATOR, Category, Product


def category_subtree_q(path: str, *, prefix: str = "") -> Q:
    """The category with this ``path`` and all its descendants; ``prefix`` is the lookup to the category
    (``"category__"`` from products). An indexed prefix match on ``Category.path``."""
    return Q(**{f"{prefix}path": path}) | Q(**{f"{prefix}path__startswith": f"{path}{PATH_SEPARATOR}"})


def product_list() -> QuerySet[Product]:
    return Product.objects.select_related("category").order_by("sku")


def products_in_category(products: QuerySet[Product], *, code: str) -> QuerySet[Product]:
    """The products of the category ``code`` and of its descendants; none for an unknown code."""
    path = Category.objects.filter(code=code).values_list("path", flat=True).first()
    if path is None:
        return products.none()
    return products.filter(category_subtree_q(path, prefix="category__"))


def product_get(*, sku: str) -> Product:
    product = product_list().filter(sku=sku).first()
    if product is None:
        raise ProductNotFound()
    return product
