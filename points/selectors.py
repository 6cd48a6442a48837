"""Reads of the ledger, shared by the API, the admin and jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch, QuerySet, Sum
from django.utils import timezone

from customers.models import Customer
from points.models import ZERO, Account, Allocation, Entry, Lot


@dataclass(frozen=True)
class Balance:
    balance_type: str
    available: Decimal
    pending: Decimal
    held: Decimal
    debt: Decimal
    expiring_soon: Decimal
    expiring_within_days: int


def lots_expiring_within(days: int, now: datetime) -> QuerySet[Lot]:
    """Active lots whose points expire within ``days`` of ``now``: what "expiring soon" counts everywhere."""
    return Lot.objects.filter(state=Lot.State.ACTIVE, expires_at__gt=now, expires_at__lte=now + timedelta(days=days))


def points_balance(
    *, customer: Customer, balance_type: str | None = None, expiring_within_days: int = 30, now: datetime | None = None
) -> Balance:
    """Cached totals plus what expires within N days. Two queries; zeros for a customer with no account."""
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    now = now or timezone.now()
    account = Account.objects.filter(customer=customer, balance_type__code=balance_type).first()
    if account is None:
        return Balance(balance_type, ZERO, ZERO, ZERO, ZERO, ZERO, expiring_within_days)
    expiring = (
        lots_expiring_within(expiring_within_days, now)
        .filter(account=account)
        .aggregate(total=Sum("remaining"))["total"]
        or ZERO
    )
    return Balance(
        balance_type, account.available, account.pending, account.held, account.debt, expiring, expiring_within_days
    )


def points_history(*, customer: Customer, balance_type: str | None = None) -> QuerySet[Entry]:
    """Journal lines, newest first, each with the lots it touched (a spend shows what it consumed)."""
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    return (
        Entry.objects.filter(account__customer=customer, account__balance_type__code=balance_type)
        .prefetch_related(Prefetch("allocations", queryset=Allocation.objects.select_related("lot").order_by("pk")))
        .order_by("-created_at", "-pk")
    )


def points_lots(*, customer: Customer, balance_type: str | None = None) -> QuerySet[Lot]:
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    return Lot.objects.filter(account__customer=customer, account__balance_type__code=balance_type).order_by("-pk")


def points_expiring_soon(*, within_days: int, now: datetime | None = None) -> QuerySet[Account]:
    """Accounts with points expiring within N days and how many (for "expiring soon" messages)."""
    now = now or timezone.now()
    return (
        Account.objects.filter(
            lots__state=Lot.State.ACTIVE,
            lots__remaining__gt=0,
            lots__expires_at__gt=now,
            lots__expires_at__lte=now + timedelta(days=within_days),
        )
        .annotate(expiring=Sum("lots__remaining"))
        .select_related("customer")
        .order_by("pk")
    )
