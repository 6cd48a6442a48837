"""Marketing consents per channel, with their full history (F-ID-5)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from customers.exceptions import InvalidCustomerData
from customers.models import Consent, ConsentChannel, ConsentEvent, Customer
from customers.services.profile import customer_lock


def consent_set(
    *,
    customer: Customer,
    channel: str,
    granted: bool,
    source: str,
    actor: Actor,
    text_version: str = "",
    now: datetime | None = None,
) -> Consent:
    """Grant or revoke marketing on ``channel``. Every change is a history event; repeating the current
    decision (same text version) records nothing, so a retried request is harmless. Locks the customer, so
    concurrent changes of one customer queue; a merged or anonymised customer refuses (``customer_merged``,
    ``customer_anonymised``) — a consent recorded on a redirect would never reach the survivor."""
    if channel not in ConsentChannel.values:
        raise InvalidCustomerData(
            fields={"channel": [{"code": "invalid_choice", "message": f"Choose one of: {', '.join(ConsentChannel)}."}]}
        )
    now = now or timezone.now()
    with transaction.atomic():
        if source != ConsentEvent.Source.ANONYMISATION:  # anonymisation revokes while holding the lock itself
            customer_lock(customer.pk)
        current = Consent.objects.select_for_update().filter(customer=customer, channel=channel).first()
        if current is not None and current.granted == granted and current.text_version == text_version:
            return current
        ConsentEvent.objects.create(
            customer=customer,
            channel=channel,
            granted=granted,
            source=source,
            text_version=text_version,
            actor_channel=actor.channel,
            actor_user=actor.user,
            created_at=now,
        )
        consent, _ = Consent.objects.update_or_create(
            customer=customer,
            channel=channel,
            defaults={"granted": granted, "source": source, "text_version": text_version, "changed_at": now},
        )
        return consent
