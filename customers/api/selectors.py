"""Reads the customers API needs beyond ``customers.selectors``: the profile with what it renders, and
identification that also tells which merged duplicate was matched.

Candidates to move into ``customers/selectors.py`` (see ``customer_identify_match``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from phonenumber_field.phonenumber import PhoneNumber

from customers.exceptions import CustomerNotFound, IdentifierRequired
from customers.models import Customer, ExternalId
from customers.phones import phone_normalise
from customers.selectors import ACTIVE_FIRST
from integrations.models import Channel


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


@dataclass(frozen=True)
class Identified:
    customer_id: int  # the customer to act on: the survivor if a merged duplicate was matched
    redirected_from: int | None  # the merged duplicate the identifier belongs to


def customer_identify_match(
    *,
    phone: PhoneNumber | str = "",
    card: str = "",
    external_id: str = "",
    email: str = "",
    channel: Channel | None = None,
) -> Identified:
    """Like ``customers.selectors.customer_identify`` (exactly one identifier, the channel's external ids, a
    merge followed to the survivor), but also says which merged duplicate was matched. Where an identifier is
    on an active customer and on a merged duplicate (a phone reused after a merge), the active one wins."""
    given = [value for value in (phone, card, external_id, email) if value]
    if len(given) != 1:
        raise IdentifierRequired()
    if phone:
        found = Customer.objects.filter(phone=phone_normalise(phone))
    elif card:
        found = Customer.objects.filter(card_number=card.strip())
    elif external_id:
        found = Customer.objects.filter(external_ids__channel=channel, external_ids__external_id=external_id)
    else:
        found = Customer.objects.filter(email=email.strip().lower())
    match = found.order_by(ACTIVE_FIRST, "-pk").values_list("pk", "merged_into").first()
    if match is None:
        raise CustomerNotFound()
    customer_id, merged_into = match
    if merged_into is None:
        return Identified(customer_id=customer_id, redirected_from=None)
    return Identified(customer_id=merged_into, redirected_from=customer_id)
