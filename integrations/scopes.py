"""What a channel's API key may do (SPEC F-INT-1). Views name the scope each method needs."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    CUSTOMERS_READ = "customers:read", _("Read customers")
    CUSTOMERS_WRITE = "customers:write", _("Create and change customers")
    CUSTOMERS_MERGE = "customers:merge", _("Merge duplicate customers")
    POINTS_READ = "points:read", _("Read balances and point history")
    POINTS_WRITE = "points:write", _("Accrue, hold and redeem points")
    CARTS_CALCULATE = "carts:calculate", _("Calculate carts: points to earn and to spend")
    ORDERS_READ = "orders:read", _("Read orders")
    ORDERS_WRITE = "orders:write", _("Place and change orders")
    CATALOG_READ = "catalog:read", _("Read the product catalogue")
    CATALOG_WRITE = "catalog:write", _("Sync the product catalogue")
    REVIEWS_WRITE = "reviews:write", _("Submit reviews")


ALL_SCOPES = frozenset(Scope.values)
