"""Complaint cases: opening, working on and closing them."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.exceptions import ComplaintInvalid
from complaints.models import ComplaintCase
from core.actors import Actor
from customers.exceptions import CustomerMerged
from customers.models import Customer
from orders.models import Order


def _invalid(field: str, message: str, code: str) -> ComplaintInvalid:
    return ComplaintInvalid(message, fields={field: [{"code": code, "message": message}]})


def _check_category(category: str) -> None:
    if category not in ComplaintCase.Category.values:
        raise _invalid("category", _("Choose one of the categories."), "invalid_choice")


def _check_description(description: str) -> str:
    description = description.strip()
    if not description:
        raise _invalid("description", _("Describe the complaint."), "required")
    return description


def complaint_open(
    *,
    customer: Customer,
    category: str,
    description: str,
    actor: Actor,
    order: Order | None = None,
    now: datetime | None = None,
) -> ComplaintCase:
    """Open a case for ``customer``, about one of their orders if given. ``ComplaintInvalid`` for an unknown
    category, an empty description or another customer's order; ``CustomerMerged`` for a merged duplicate (the
    case belongs on the customer it was merged into)."""
    _check_category(category)
    description = _check_description(description)
    if customer.merged_into_id is not None:
        raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
    if order is not None and order.customer_id != customer.pk:
        raise _invalid("order", _("This order belongs to another customer."), "order_of_another_customer")
    return ComplaintCase.objects.create(
        customer=customer,
        order=order,
        category=category,
        description=description,
        created_by=actor.user,
        created_at=now or timezone.now(),
    )


def complaint_update(
    *,
    case: ComplaintCase,
    actor: Actor,
    category: str | None = None,
    description: str | None = None,
    status: str | None = None,
    resolution: str | None = None,
    now: datetime | None = None,
) -> ComplaintCase:
    """Change what is given (None: unchanged). Moving to resolved or rejected closes the case (``closed_at``) and
    needs a resolution; moving back to open or in progress reopens it. Locks the case row, so a grant being
    issued on it sees the case either before or after the change."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = ComplaintCase.objects.select_for_update().get(pk=case.pk)
        if category is not None:
            _check_category(category)
            locked.category = category
        if description is not None:
            locked.description = _check_description(description)
        if resolution is not None:
            locked.resolution = resolution.strip()
        if status is not None:
            if status not in ComplaintCase.Status.values:
                raise _invalid("status", _("Choose one of the statuses."), "invalid_choice")
            was_closed = locked.is_closed
            locked.status = status
            if locked.is_closed and not was_closed:
                locked.closed_at = now
            elif not locked.is_closed:
                locked.closed_at = None
        if locked.is_closed and not locked.resolution:
            raise _invalid("resolution", _("A closed case needs a resolution."), "required")
        locked.save(update_fields=["category", "description", "status", "resolution", "closed_at"])
    return locked


def complaint_close(
    *, case: ComplaintCase, actor: Actor, resolution: str, rejected: bool = False, now: datetime | None = None
) -> ComplaintCase:
    """Close the case as resolved (or rejected) with its resolution."""
    status = ComplaintCase.Status.REJECTED if rejected else ComplaintCase.Status.RESOLVED
    return complaint_update(case=case, actor=actor, status=status, resolution=resolution, now=now)
