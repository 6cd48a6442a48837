"""Reads the customers API needs beyond ``customers.selectors``: the profile with what it renders."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from customers.exceptions import CustomerNotFound
from customers.models import Customer, ExternalId


def customer_profiles(queryset: QuerySet[Customer] | None = None) -> QuerySet[Customer]:
    """Customers with everything their profile shows: two queries for any number of them."""
    queryset = Customer.objects.all() if queryset is None else queryset
    return queryset.select_related("join_channel", "registration_store").prefetch_related(
        Prefetch("external_ids", queryset=ExternalId.objects.select_related("channel").order_by("channel__code"))
    )


def customer_profile_get(*, customer_id: int) -> Customer:
    """One customer with its profile's related rows, or ``CustomerNotFound``."""
    customer = customer_profiles().filter(pk=customer_id).first()
    if customer is None:
        raise CustomerNotFound()
    return customer
