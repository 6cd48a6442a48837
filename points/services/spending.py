"""Choosing which lots a spend consumes: soonest-expiring first, never pending, held, expired or restricted."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import F, Q

from customers.models import Customer
from points.exceptions import InsufficientPoints
from points.models import ZERO, Account, Lot


def spendable_lots(
    *, account: Account, now: datetime, first_order: bool = False, ignore_restrictions: bool = False
) -> list[Lot]:
    if account.customer.membership in (Customer.Membership.BLOCKED, Customer.Membership.ANONYMISED):
        return []  # a blocked (or anonymised) customer's points stay on the books but cannot be spent
    lots = Lot.objects.filter(account=account, state=Lot.State.ACTIVE, remaining__gt=0).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    if not ignore_restrictions:
        refused = []
        if not account.customer.is_member:
            refused.append(Lot.Restriction.MEMBERS_ONLY)  # F-ID-4: spendable only after joining
        if not first_order:
            refused.append(Lot.Restriction.FIRST_ORDER)  # F-RED-3: welcome points on the first order
        lots = lots.exclude(restriction__in=refused)
    return list(lots.order_by(F("expires_at").asc(nulls_last=True), "pk"))


def take_soonest_expiring(lots: list[Lot], amount: Decimal) -> list[tuple[Lot, Decimal]]:
    """Split ``amount`` over ``lots`` in order, or ``InsufficientPoints`` naming what is spendable."""
    taken, left = [], amount
    for lot in lots:
        if left == 0:
            break
        part = min(lot.remaining, left)
        taken.append((lot, part))
        left -= part
    if left > 0:
        spendable = sum((lot.remaining for lot in lots), ZERO)
        raise InsufficientPoints(extra={"spendable": str(spendable), "requested": str(amount)})
    return taken
