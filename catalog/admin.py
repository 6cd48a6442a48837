"""Admin of the catalogue: categories and products, and the product CSV import (SPEC F-INT-4).

Every change goes through ``catalog_upsert``, which keeps category paths and validates like the API.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from catalog.exceptions import CatalogError, CatalogInvalid
from catalog.forms import IMPORT_PERMISSIONS, CategoryForm, ProductCsvImportForm
from catalog.models import Category, Product
from catalog.services import catalog_upsert
from core.admin import RulesNamingProtectMixin


class _ServiceErrorOnForm(Exception):
    pass


def _field_errors(form, error: CatalogError) -> None:
    """Put the service's item errors on the admin form's fields (``categories.0.parent`` → ``parent``)."""
    for key, items in getattr(error, "fields", {}).items():
        name = key.rsplit(".", 1)[-1]
        form.add_error(name if name in form.fields else None, [item["message"] for item in items])
    if not getattr(error, "fields", None):
        form.add_error(None, error.message)


@admin.register(Category)
class CategoryAdmin(RulesNamingProtectMixin, admin.ModelAdmin):
    form = CategoryForm
    list_display = ["code", "name", "parent", "path"]
    list_select_related = ["parent"]
    search_fields = ["code", "name", "path"]
    ordering = ["path"]
    autocomplete_fields = ["parent"]
    readonly_fields = ["path", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # The code is the key the ERP syncs by: fixed once the category exists.
        return [*self.readonly_fields, "code"] if obj is not None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)

        class ServiceValidatedForm(form_class):
            def _post_clean(self):
                super()._post_clean()
                if self.errors:
                    return
                try:
                    catalog_upsert(categories=[_category_item(self)], products=[])
                except CatalogInvalid as error:
                    _field_errors(self, error)
                    return
                self.instance = Category.objects.get(code=_category_item(self)["code"])

        return ServiceValidatedForm

    def save_model(self, request, obj, form, change):
        pass  # saved by catalog_upsert while the form was validated (in the request's atomic admin view)

    def save_related(self, request, form, formsets, change):
        pass


def _category_item(form) -> dict:
    parent = form.cleaned_data.get("parent")
    return {
        "code": form.instance.code if form.instance.pk else form.cleaned_data["code"],
        "name": form.cleaned_data["name"],
        "parent": parent.code if parent else None,
    }


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    change_list_template = "admin/catalog/product/change_list.html"
    list_display = [
        "sku",
        "name",
        "category",
        "new_arrival",
        "arrival_date",
        "excluded_from_earning",
        "excluded_from_redemption",
        "is_active",
    ]
    list_select_related = ["category"]
    list_filter = ["new_arrival", "excluded_from_earning", "excluded_from_redemption", "is_active", "category"]
    search_fields = ["sku", "name"]
    autocomplete_fields = ["category"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False

    def get_urls(self):
        import_csv = path(
            "import-csv/", self.admin_site.admin_view(self.import_csv_view), name="catalog_product_import_csv"
        )
        return [import_csv, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_import_csv": request.user.has_perms(IMPORT_PERMISSIONS)}
        return super().changelist_view(request, extra_context)

    def import_csv_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perms(IMPORT_PERMISSIONS):
            raise PermissionDenied
        if request.method == "POST":
            form = ProductCsvImportForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    result = catalog_upsert(categories=[], products=form.products)
                except CatalogInvalid as error:
                    form.add_upsert_error(error)
                except CatalogError as error:
                    form.add_error("file", error.message)
                else:
                    counts = result.products
                    self.message_user(
                        request,
                        _("Products imported: %(created)s created, %(updated)s updated, %(unchanged)s unchanged.")
                        % {"created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:catalog_product_changelist"))
        else:
            form = ProductCsvImportForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import products from CSV"),
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/catalog/product/import_csv.html", context)
