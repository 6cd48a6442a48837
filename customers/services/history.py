"""The customer's history of changes (who, what, when, why)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import models

from core.actors import Actor
from customers.models import Customer, CustomerChange

PERSONAL_FIELDS = ("phone", "email", "name", "birth_date", "gender", "card_number", "company")
REDACTED = "[anonymised]"


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, date | datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # PhoneNumber → E.164


def snapshot(customer: Customer, fields: list[str]) -> dict[str, Any]:
    return {name: _plain(getattr(customer, Customer._meta.get_field(name).attname)) for name in fields}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {name: [before[name], after[name]] for name in before if before[name] != after[name]}


def record_change(
    customer: Customer,
    *,
    action: str,
    actor: Actor,
    now: datetime,
    changes: dict[str, list[Any]] | None = None,
    reason: str = "",
) -> CustomerChange:
    return CustomerChange.objects.create(
        customer=customer,
        action=action,
        changes=changes or {},
        reason=reason,
        actor_channel=actor.channel,
        actor_user=actor.user,
        created_at=now,
    )
