"""Reads of the complaints desk shared by the services, the admin and the customer card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from complaints.models import ApologyBudget, ApologyGrant, ComplaintCase
from customers.models import Customer
from points.models import POINTS, ZERO

# Grants that use up a budget: issued ones and the ones still waiting (a rejected one gives its share back).
COUNTED = (ApologyGrant.State.ISSUED, ApologyGrant.State.AWAITING)


def _total(queryset: QuerySet[ApologyGrant]) -> Decimal:
    return queryset.aggregate(total=Coalesce(Sum("amount"), Value(ZERO), output_field=DecimalField(**POINTS)))["total"]


def apology_budget_for(user: AbstractBaseUser) -> ApologyBudget | None:
    """The budget that applies to ``user``: their own if set, else the most generous of their groups' (highest
    daily limit, then case limit), else None (every grant needs approval). One query."""
    return (
        ApologyBudget.objects.filter(Q(user=user) | Q(group__user=user))
        .order_by(F("user").asc(nulls_last=True), "-daily_limit", "-case_limit", "pk")
        .first()
    )


def operator_day(now: datetime) -> tuple[datetime, datetime]:
    """The local day (``timezone.localdate``) ``now`` falls in, as [start, end) moments."""
    day = timezone.localdate(now)
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def apology_used_today(*, user: AbstractBaseUser, now: datetime | None = None) -> Decimal:
    """Points ``user`` granted today (issued or awaiting approval)."""
    start, end = operator_day(now or timezone.now())
    return _total(
        ApologyGrant.objects.filter(requested_by=user, created_at__gte=start, created_at__lt=end, state__in=COUNTED)
    )


def apology_used_on_case(*, case: ComplaintCase) -> Decimal:
    """Points granted on ``case`` so far (issued or awaiting approval)."""
    return _total(ApologyGrant.objects.filter(case=case, state__in=COUNTED))


@dataclass(frozen=True)
class ApologyAllowance:
    """What an operator may still grant on a case without approval. ``None`` remaining: no budget at all."""

    budget: ApologyBudget | None
    daily_remaining: Decimal | None
    case_remaining: Decimal | None

    def covers(self, amount: Decimal) -> bool:
        if self.daily_remaining is None or self.case_remaining is None:
            return False
        return amount <= self.daily_remaining and amount <= self.case_remaining


def apology_allowance(*, user: AbstractBaseUser, case: ComplaintCase, now: datetime | None = None) -> ApologyAllowance:
    """The operator's remaining budget today and the case's remaining limit (never below zero)."""
    budget = apology_budget_for(user)
    if budget is None:
        return ApologyAllowance(budget=None, daily_remaining=None, case_remaining=None)
    daily = budget.daily_limit - apology_used_today(user=user, now=now)
    on_case = budget.case_limit - apology_used_on_case(case=case)
    return ApologyAllowance(budget=budget, daily_remaining=max(daily, ZERO), case_remaining=max(on_case, ZERO))


def customer_complaints(customer: Customer, limit: int = 10) -> list[ComplaintCase]:
    """The customer's latest cases, newest first, each with ``issued_points`` and ``awaiting_points`` (the totals
    of its grants) and its order joined. One query."""
    points = DecimalField(**POINTS)
    return list(
        ComplaintCase.objects.filter(customer=customer)
        .select_related("order")
        .annotate(
            issued_points=Coalesce(
                Sum("grants__amount", filter=Q(grants__state=ApologyGrant.State.ISSUED)),
                Value(ZERO),
                output_field=points,
            ),
            awaiting_points=Coalesce(
                Sum("grants__amount", filter=Q(grants__state=ApologyGrant.State.AWAITING)),
                Value(ZERO),
                output_field=points,
            ),
        )
        .order_by("-created_at", "-pk")[:limit]
    )


def approval_queue() -> QuerySet[ApologyGrant]:
    """Grants awaiting a manager's approval, oldest first, with what the queue shows joined."""
    return (
        ApologyGrant.objects.filter(state=ApologyGrant.State.AWAITING)
        .select_related("case", "customer", "requested_by")
        .order_by("created_at", "pk")
    )
