"""Read queries about customers."""

from __future__ import annotations

from django.db.models import F, QuerySet

from customers.exceptions import CustomerNotFound, IdentifierRequired
from customers.models import Consent, ConsentChannel, ConsentEvent, Customer, CustomerChange, ExternalId
from customers.phones import phone_normalise
from integrations.models import Channel

# An active record before merged duplicates that kept the same phone or email as redirects.
ACTIVE_FIRST = F("merged_into").asc(nulls_first=True)
MARKETING = "marketing"
SERVICE = "service"


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.order_by("-pk")


def customer_get(*, customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise CustomerNotFound()
    return customer


def customer_identify(
    *,
    phone: str | None = None,
    card: str | None = None,
    external_id: str | None = None,
    email: str | None = None,
    channel: Channel | None = None,
) -> Customer:
    """The customer behind exactly one identifier (``identifier_required`` otherwise), followed through a merge
    to the survivor. External ids are the calling channel's. ``customer_not_found`` if nobody matches; an
    email shared by several customers finds the most recently created active one."""
    given = [value for value in (phone, card, external_id, email) if value]
    if len(given) != 1:
        raise IdentifierRequired()
    if phone:
        found = Customer.objects.filter(phone=phone_normalise(phone)).order_by(ACTIVE_FIRST, "-pk")
    elif card:
        found = Customer.objects.filter(card_number=card.strip())
    elif external_id:
        found = Customer.objects.filter(
            pk__in=ExternalId.objects.filter(channel=channel, external_id=external_id).values("customer")
        )
    else:
        found = Customer.objects.filter(email=email.strip().lower()).order_by(ACTIVE_FIRST, "-pk")
    customer = found.select_related("merged_into").first()
    if customer is None:
        raise CustomerNotFound()
    return customer.merged_into or customer


def can_message(customer: Customer, channel: str, purpose: str) -> bool:
    """May ``customer`` be sent a ``purpose`` (``marketing`` or ``service``) message on ``channel``? Every
    sender asks (F-ID-5, F-CMP-7). Service messages need only an address; marketing also needs the consent,
    a validated email for email, and a member or non-member in good standing."""
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
