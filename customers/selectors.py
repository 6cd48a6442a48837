"""Read queries about customers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet
from phonenumber_field.phonenumber import PhoneNumber

from core.sql import RowReader
from customers.exceptions import CustomerNotFound, IdentifierRequired
from customers.models import Consent, ConsentChannel, ConsentEvent, Customer, CustomerChange
from customers.phones import phone_normalise
from integrations.models import Channel

# An active record before merged duplicates that kept the same phone or email as redirects.
ACTIVE_FIRST = F("merged_into").asc(nulls_first=True)
MARKETING = "marketing"
SERVICE = "service"


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.order_by("-pk")


_CUSTOMER = RowReader(Customer)


@cache
def _customer_sql() -> str:
    return f"SELECT {_CUSTOMER.columns('c')} FROM {Customer._meta.db_table} AS c WHERE c.id = %s"


def customer_get(*, customer_id: int) -> Customer:
    """The customer, or ``CustomerNotFound``. Read by a plain statement: every channel call about a customer starts
    here, and the ORM took ten times longer to build this query than PostgreSQL to run it."""
    with connection.cursor() as cursor:
        cursor.execute(_customer_sql(), [customer_id])
        row = cursor.fetchone()
    if row is None:
        raise CustomerNotFound()
    return _CUSTOMER.instance(row)


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
    """Who exactly one identifier (``identifier_required`` otherwise) belongs to, a merge followed to the
    survivor, and which merged duplicate was matched. External ids are the calling channel's. Where an
    identifier is on an active customer and on a merged duplicate (a phone reused after a merge), or an email
    on several customers, the active and most recent one wins. ``customer_not_found`` if nobody matches."""
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


def customer_identify(**identifier: Any) -> Customer:
    """The customer (the survivor of a merge) behind one identifier; see ``customer_identify_match``."""
    return Customer.objects.get(pk=customer_identify_match(**identifier).customer_id)


def active_phone_holder(phone: PhoneNumber) -> Customer | None:
    """The active (not merged) customer with this phone, or None."""
    return Customer.objects.filter(phone=phone, merged_into__isnull=True).first()


def can_message(customer: Customer, channel: str, purpose: str) -> bool:
    """May ``customer`` be sent a ``purpose`` (``marketing`` or ``service``) message on ``channel``? Every
    sender asks (F-ID-5, F-CMP-7). Service messages need only an address; marketing also needs the consent,
    a validated email for email, and a member or non-member in good standing."""
    if channel not in ConsentChannel.values or purpose not in (MARKETING, SERVICE):
        raise ValueError(f"unknown message channel or purpose: {channel!r}, {purpose!r}")
    if customer.membership == Customer.Membership.ANONYMISED or customer.merged_into_id is not None:
        return False
    if channel in (ConsentChannel.SMS, ConsentChannel.PHONE_CALL):
        has_address = customer.phone is not None
    elif channel == ConsentChannel.EMAIL:
        has_address = bool(customer.email) and (purpose == SERVICE or customer.email_validated)
    else:
        has_address = True  # push: the app holds the device token
    if not has_address:
        return False
    if purpose == SERVICE:
        return True
    if customer.membership == Customer.Membership.BLOCKED:
        return False
    return Consent.objects.filter(customer=customer, channel=channel, granted=True).exists()


def customer_consents(*, customer: Customer) -> dict[str, Consent | None]:
    """The current decision per consent channel (None: never asked)."""
    current = {c.channel: c for c in Consent.objects.filter(customer=customer)}
    return {channel: current.get(channel) for channel in ConsentChannel.values}


def customer_consent_history(*, customer: Customer) -> QuerySet[ConsentEvent]:
    return (
        ConsentEvent.objects.filter(customer=customer)
        .select_related("actor_channel", "actor_user")
        .order_by("-created_at", "-pk")
    )


def customer_history(*, customer: Customer) -> QuerySet[CustomerChange]:
    return (
        CustomerChange.objects.filter(customer=customer)
        .select_related("actor_channel", "actor_user")
        .order_by("-created_at", "-pk")
    )
