"""The customer's history of changes (who, what, when, why)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import models

from core.actors import Actor
from customers.models import Customer, CustomerChange
from staff.models import AuditRecord
from staff.services import audit_record

PERSONAL_FIELDS = ("phone", "email", "name", "birth_date", "gender", "card_number", "company")
REDACTED = "[anonymised]"
# Manual actions (F-STAFF-3) among the history's: the audit trail records them too, when a staff user acted.
AUDITED = {
    "create": AuditRecord.Action.CUSTOMER_CHANGE,
    "update": AuditRecord.Action.CUSTOMER_CHANGE,
    "external_id": AuditRecord.Action.CUSTOMER_CHANGE,
    "join": AuditRecord.Action.CUSTOMER_MEMBERSHIP,
    "block": AuditRecord.Action.CUSTOMER_MEMBERSHIP,
    "unblock": AuditRecord.Action.CUSTOMER_MEMBERSHIP,
    "merge": AuditRecord.Action.CUSTOMER_MERGE,  # the survivor's row; the duplicate's ("merged") says the same
    "anonymise": AuditRecord.Action.CUSTOMER_ANONYMISE,
}
# The audit trail cannot be edited, so it never holds personal data that anonymisation must be able to wipe: it
# names the history row, which keeps the values (and is redacted on anonymisation).
PERSONAL_IN_AUDIT = "[personal data: see the customer's history]"


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
    """The history row; for a staff user's manual action (``AUDITED``) also its audit record, in the caller's
    transaction."""
    change = CustomerChange.objects.create(
        customer=customer,
        action=action,
        changes=changes or {},
        reason=reason,
        actor_channel=actor.channel,
        actor_user=actor.user,
        created_at=now,
    )
    if action in AUDITED:
        shown = {name: _audit_value(name, values) for name, values in change.changes.items()}
        audit_record(
            actor=actor,
            action=AUDITED[action],
            target=change,
            reason=reason,
            before={name: values[0] for name, values in shown.items()},
            after={name: values[1] for name, values in shown.items()},
            customer_id=customer.pk,
            now=now,
        )
    return change


def _audit_value(name: str, values: list[Any]) -> list[Any]:
    if name in PERSONAL_FIELDS or name.startswith("external_id"):
        return [PERSONAL_IN_AUDIT if value not in (None, "") else value for value in values]
    return values
