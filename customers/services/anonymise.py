"""Anonymisation on request (F-ID-8): personal data goes, the ledger and orders stay for accounting."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from customers.models import Consent, ConsentEvent, Customer, CustomerChange, ExternalId, SmsCode
from customers.services.consents import consent_set
from customers.services.history import PERSONAL_FIELDS, REDACTED, record_change
from points.services.journal import require_reason

WIPED = {
    "phone": None,
    "email": "",
    "email_validated_at": None,
    "name": "",
    "birth_date": None,
    "gender": "",
    "card_number": None,
    "company": "",
}


def customer_anonymise(*, customer: Customer, actor: Actor, reason: str, now: datetime | None = None) -> Customer:
    """Wipe the customer's personal data — profile fields, external ids, SMS codes sent to the phone, and the
    personal values in its change history — and revoke its consents. Points, journal and orders are untouched
    and stay with the (now nameless) record; duplicates merged into it are anonymised too. Reason required;
    anonymising again changes nothing."""
    require_reason(actor, reason)
    now = now or timezone.now()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        for duplicate in customer.merged_duplicates.all():
            customer_anonymise(customer=duplicate, actor=actor, reason=reason, now=now)
        if customer.membership == Customer.Membership.ANONYMISED:
            return customer
        for consent in Consent.objects.filter(customer=customer, granted=True):
            consent_set(
                customer=customer,
                channel=consent.channel,
                granted=False,
                source=ConsentEvent.Source.ANONYMISATION,
                actor=actor,
                now=now,
            )
        if customer.phone:
            SmsCode.objects.filter(phone=customer.phone).delete()
        ExternalId.objects.filter(customer=customer).delete()
        for change in CustomerChange.objects.filter(customer=customer):
            redacted = {
                name: [REDACTED if value is not None else None for value in values]
                if name in PERSONAL_FIELDS or name.startswith("external_id")
                else values
                for name, values in change.changes.items()
            }
            if redacted != change.changes:
                CustomerChange.objects.filter(pk=change.pk).update(changes=redacted)
        before = customer.membership
        for name, value in WIPED.items():
            setattr(customer, name, value)
        customer.membership, customer.anonymised_at = Customer.Membership.ANONYMISED, now
        customer.save()
        record_change(
            customer,
            action="anonymise",
            actor=actor,
            now=now,
            reason=reason,
            changes={"membership": [before, Customer.Membership.ANONYMISED]},
        )
    return customer
