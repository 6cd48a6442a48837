"""The audit trail (F-STAFF-3): every manual action records who, when, why, on what, before and after."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from core.actors import Actor
from staff.models import AuditRecord


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, Decimal | datetime) or hasattr(value, "isoformat"):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model,
    reason: str = "",
    before: dict | None = None,
    after: dict | None = None,
    customer_id: int | None = None,
    now: datetime | None = None,
) -> AuditRecord | None:
    """Record a manual action by a staff user, in the caller's transaction (so it is kept exactly when the action
    is). Actions without a staff user (a channel, a scheduled job) are not manual: nothing is recorded."""
    if actor.user is None:
        return None
    return AuditRecord.objects.create(
        created_at=now or timezone.now(),
        actor_user=actor.user,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_label=str(target)[:255],
        customer_id=customer_id,
        reason=reason,
        before=_jsonable(before or {}),
        after=_jsonable(after or {}),
    )
