"""The product catalogue (SPEC F-INT-4): a category tree and products with the flags the programme rules read.

Both are synced from the ERP through ``catalog_upsert`` (API and the admin's CSV import). A category's
``path`` — its code and its ancestors' codes from the root, slash-joined — is maintained by that service, so
"this category and everything below it" is one indexed prefix match (``path`` = P or starts with P + "/").
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

PATH_SEPARATOR = "/"
CODE_MAX_LENGTH = 64
PATH_MAX_LENGTH = 1024
SKU_MAX_LENGTH = 64
NAME_MAX_LENGTH = 255


class Category(models.Model):
    code = models.SlugField(_("code"), max_length=CODE_MAX_LENGTH, unique=True)
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=NAME_MAX_LENGTH)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    path = models.CharField(
        _("path"),
        max_length=PATH_MAX_LENGTH,
        editable=False,
        help_text=_("Codes from the root category down to this one, e.g. furniture/sofas."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["path"]
        indexes = [
            # varchar_pattern_ops lets PostgreSQL use the index for LIKE 'furniture/%' whatever the collation.
            models.Index(fields=["path"], name="catalog_category_path", opclasses=["varchar_pattern_ops"]),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(code=""), name="catalog_category_code_not_empty"),
            models.CheckConstraint(condition=~Q(path=""), name="catalog_category_path_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.path})"


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=SKU_MAX_LENGTH, unique=True)
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=NAME_MAX_LENGTH)
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="products",
    )
    new_arrival = models.BooleanField(_("new arrival"), default=False)
    arrival_date = models.DateField(_("arrival date"), null=True, blank=True)
    excluded_from_earning = models.BooleanField(_("excluded from earning"), default=False)
    excluded_from_redemption = models.BooleanField(_("excluded from redemption"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=~Q(sku=""), name="catalog_product_sku_not_empty"),
            models.CheckConstraint(
                condition=Q(new_arrival=False) | Q(arrival_date__isnull=False),
                name="catalog_product_new_arrival_has_date",
                violation_error_message=_("A new arrival needs an arrival date."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"
