"""Marketing consents per channel, with their full history (F-ID-5)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from customers.models import Consent, ConsentEvent, Customer


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
    decision (same text version) records nothing, so a retried request is harmless."""
    now = now or timezone.now()
    with transaction.atomic():
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
