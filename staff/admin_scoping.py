"""Store scoping in the admin (SPEC F-STAFF-1): showroom staff see the customers and orders of their own stores.

``StoreScopedAdminMixin`` goes first in the bases of an admin whose model is listed in ``STORE_SCOPES``. For a
user confined to stores (``staff_store_ids(user)`` is a set: no ``staff.view_all_stores``, not a superuser) it
narrows ``get_queryset`` — which the list, the change page (``get_object``), the admin actions, the autocomplete
and the admins' own views read through — so another store's customer or order opened by URL gets the admin's
"doesn't exist" redirect, never its page. A confined user without any store sees nothing.

- a customer is the store's when registered there or having an order there (``EXISTS`` over ``orders_order``,
  probed per customer through the ``orders_by_customer`` index, or hashed from the store's orders through the
  ``store`` foreign key's index);
- an order, an order line, payment or event, a reservation: by the order's (reservation's) store;
- a points account, lot, hold or journal entry: by its customer, as above.

Forms of these admins offer a confined user only their own stores (and the value already set) as choices.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest

from integrations.models import Store
from staff.services import staff_store_ids


def customers_of_stores(stores: set[int], prefix: str = "") -> Q:
    """Customers registered in ``stores`` or with an order there; ``prefix`` reaches the customer from a related
    model (``"account__customer__"``)."""
    from orders.models import Order  # orders depends on customers; this module is imported by both admins

    ordered_there = Order.objects.filter(customer_id=OuterRef(f"{prefix}pk" if prefix else "pk"), store_id__in=stores)
    return Q(**{f"{prefix}registration_store_id__in": stores}) | Q(Exists(ordered_there))


def _by_store(field: str) -> Callable[[set[int]], Q]:
    return lambda stores: Q(**{f"{field}__in": stores})


def _by_customer(prefix: str) -> Callable[[set[int]], Q]:
    return lambda stores: customers_of_stores(stores, prefix)


# model label -> the condition for "belongs to one of these stores"
STORE_SCOPES: dict[str, Callable[[set[int]], Q]] = {
    "customers.customer": _by_customer(""),
    "orders.order": _by_store("store_id"),
    "orders.orderline": _by_store("order__store_id"),
    "orders.payment": _by_store("order__store_id"),
    "orders.orderevent": _by_store("order__store_id"),
    "orders.reservation": _by_store("store_id"),
    "points.account": _by_customer("customer__"),
    "points.lot": _by_customer("account__customer__"),
    "points.hold": _by_customer("account__customer__"),
    "points.entry": _by_customer("account__customer__"),
}


def store_scoped(queryset: QuerySet, stores: set[int] | None) -> QuerySet:
    """``queryset`` narrowed to ``stores`` (None: every store, unchanged). A model without a scope here is a
    programming error, not something to show unscoped."""
    if stores is None:
        return queryset
    if not stores:
        return queryset.none()
    return queryset.filter(STORE_SCOPES[queryset.model._meta.label_lower](stores))


class StoreScopedAdminMixin:
    """Narrows a ModelAdmin to the stores of a user confined to stores. Put it first among the bases."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return store_scoped(super().get_queryset(request), staff_store_ids(request.user))

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        stores = staff_store_ids(request.user)
        if formfield is not None and stores is not None and db_field.related_model is Store:
            formfield.queryset = formfield.queryset.filter(pk__in=stores)
        return formfield

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        """A form that sets its own store choices (``CustomerAdminForm``) is narrowed after its ``__init__``; the
        object's current store stays a choice, so saving it unchanged is not refused."""
        form_class = super().get_form(request, obj, change=change, **kwargs)
        stores = staff_store_ids(request.user)
        if stores is None:
            return form_class
        store_fields = [
            field.name
            for field in self.model._meta.concrete_fields
            if field.is_relation and field.related_model is Store and field.name in form_class.base_fields
        ]
        if not store_fields:
            return form_class
        current = {getattr(obj, f"{name}_id") for name in store_fields} - {None} if obj is not None else set()

        class StoreScopedForm(form_class):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                for name in store_fields:
                    if name in self.fields:
                        self.fields[name].queryset = self.fields[name].queryset.filter(pk__in=stores | current)

        StoreScopedForm.__name__ = form_class.__name__
        return StoreScopedForm
