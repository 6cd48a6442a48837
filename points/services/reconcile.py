"""Checks every ledger invariant, for one account or all (F-LED-2): the audit that proves the caches."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from points.models import ZERO, Account, Allocation, Entry, Lot


@dataclass(frozen=True)
class Discrepancy:
    check: str
    object_id: int
    detail: str


def _sum(field: str, condition: Q | None = None):
    return Coalesce(
        Sum(field, filter=condition), Value(ZERO), output_field=DecimalField(max_digits=16, decimal_places=2)
    )


def points_reconcile(*, account_ids: list[int] | None = None) -> list[Discrepancy]:
    """Empty when the ledger is consistent. Set-based: a handful of aggregate queries whatever the size."""
    accounts = Account.objects.all() if account_ids is None else Account.objects.filter(pk__in=account_ids)
    lots = Lot.objects.filter(account__in=accounts)
    entries = Entry.objects.filter(account__in=accounts)
    problems: list[Discrepancy] = []

    by_lots = accounts.annotate(
        lot_available=_sum("lots__remaining", Q(lots__state=Lot.State.ACTIVE)),
        lot_pending=_sum("lots__remaining", Q(lots__state=Lot.State.PENDING)),
        lot_held=_sum("lots__held"),
    ).exclude(available=F("lot_available"), pending=F("lot_pending"), held=F("lot_held"))
    for a in by_lots:
        problems.append(
            Discrepancy(
                "account_vs_lots",
                a.pk,
                f"cached {a.available}/{a.pending}/{a.held}, lots {a.lot_available}/{a.lot_pending}/{a.lot_held}",
            )
        )

    by_journal = accounts.annotate(
        j_available=_sum("entries__available_delta"),
        j_pending=_sum("entries__pending_delta"),
        j_held=_sum("entries__held_delta"),
        j_debt=_sum("entries__debt_delta"),
    ).exclude(available=F("j_available"), pending=F("j_pending"), held=F("j_held"), debt=F("j_debt"))
    for a in by_journal:
        problems.append(
            Discrepancy(
                "account_vs_journal",
                a.pk,
                f"cached {a.available}/{a.pending}/{a.held}/"
                f"{a.debt}, journal {a.j_available}/{a.j_pending}/{a.j_held}/{a.j_debt}",
            )
        )

    lot_vs_allocations = lots.annotate(
        a_remaining=_sum("allocations__remaining_delta"), a_held=_sum("allocations__held_delta")
    ).exclude(remaining=F("a_remaining"), held=F("a_held"))
    for lot in lot_vs_allocations:
        problems.append(
            Discrepancy(
                "lot_vs_allocations",
                lot.pk,
                f"lot {lot.remaining}/{lot.held}, allocations {lot.a_remaining}/{lot.a_held}",
            )
        )

    entry_vs_allocations = entries.annotate(
        a_remaining=_sum("allocations__remaining_delta"), a_held=_sum("allocations__held_delta")
    ).exclude(a_remaining=F("available_delta") + F("pending_delta"), a_held=F("held_delta"))
    for entry in entry_vs_allocations:
        problems.append(
            Discrepancy(
                "entry_vs_allocations",
                entry.pk,
                f"{entry.kind}: deltas "
                f"{entry.available_delta}+{entry.pending_delta}/{entry.held_delta}, "
                f"allocations {entry.a_remaining}/{entry.a_held}",
            )
        )

    orphans = Allocation.objects.filter(lot__account__in=accounts).exclude(entry__account_id=F("lot__account_id"))
    for allocation in orphans:
        problems.append(Discrepancy("allocation_account", allocation.pk, "entry and lot belong to different accounts"))
    return problems
