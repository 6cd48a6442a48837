"""Accruing points, unlocking pending ones, cancelling pending ones (F-LED-1, F-LED-3, F-LED-6)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from points.exceptions import LotNotPending
from points.locks import account_lock_for_customer, accounts_lock
from points.models import ZERO, Entry, Lot
from points.services.journal import (
    SYSTEM,
    Actor,
    Journal,
    PointsOperation,
    fingerprint,
    points_amount,
    replay,
    replays_a_raced_key,
)
from points.services.lifetimes import expiry_from, lifetime_days
from points.services.moves import lots_followed


@replays_a_raced_key
def points_accrue(
    *,
    customer: Customer,
    amount: Decimal | int | str,
    kind: str,
    operation_key: str,
    balance_type: str | None = None,
    pending: bool = False,
    available_from: datetime | None = None,
    expires_at: datetime | None = None,
    restriction: str = "",
    source_type: str = "",
    source_id: str = "",
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
) -> PointsOperation:
    """Create a lot of ``amount`` points: active now, or pending until ``available_from`` / an unlock.

    Points accrued to a non-member are restricted to members (F-ID-4). An active accrual first pays
    the account's debt. Locks the account; the operation key makes a repeat return the first result.
    """
    amount = points_amount(amount)
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    now = now or timezone.now()
    # The request as asked, not as derived from the clock or the membership: a retry after the date passed
    # or after the customer joined is the same operation and must replay, not conflict.
    key_print = fingerprint(
        op="accrue",
        customer=customer.pk,
        amount=amount,
        kind=kind,
        balance_type=balance_type,
        pending=pending,
        available_from=available_from,
        expires_at=expires_at,
        restriction=restriction,
        source=[source_type, source_id],
    )
    pending = pending or (available_from is not None and available_from > now)
    if not restriction and not customer.is_member:
        restriction = Lot.Restriction.MEMBERS_ONLY
    with transaction.atomic():
        account = account_lock_for_customer(customer_id=customer.pk, balance_type=balance_type, key=operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        days = lifetime_days(balance_type=account.balance_type, kind=kind)
        lot = Lot.objects.create(
            account=account,
            kind=kind,
            amount=amount,
            remaining=ZERO,
            state=Lot.State.PENDING if pending else Lot.State.ACTIVE,
            available_from=available_from if pending else None,
            expires_at=None if pending and expires_at is None else (expires_at or expiry_from(now, days)),
            lifetime_days=days,
            restriction=restriction,
            source_type=source_type,
            source_id=source_id,
            created_at=now,
        )
        journal = Journal(
            account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor, reason=reason
        )
        if pending:
            journal.entry(Entry.Kind.ACCRUE, amount, pending=amount, lots=[(lot, amount, ZERO)])
        else:
            journal.entry(Entry.Kind.ACCRUE, amount, available=amount, lots=[(lot, amount, ZERO)])
            journal.settle_debt_from(lot)
        return journal.flush(lot=lot)


def points_unlock(
    *,
    operation_key: str,
    lot_ids: list[int] | None = None,
    source_type: str = "",
    source_id: str = "",
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> list[PointsOperation]:
    """Make pending lots spendable (the order line was delivered, or their date came): by lot or by source.

    Each lot's lifetime starts now unless it had an explicit expiry. Debt is settled from them first.
    Locks every affected account in pk order. Already active lots are left alone, so a repeat is harmless;
    cancelled ones raise ``LotNotPending``.
    """
    now = now or timezone.now()
    selector = {"pk__in": lot_ids} if lot_ids is not None else {"source_type": source_type, "source_id": source_id}
    key_print = fingerprint(op="unlock", lots=sorted(lot_ids or []), source=[source_type, source_id])
    return _per_account(selector, operation_key, key_print, now, actor, _unlock)


def points_cancel_accrual(
    *,
    operation_key: str,
    lot_ids: list[int] | None = None,
    source_type: str = "",
    source_id: str = "",
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
) -> list[PointsOperation]:
    """Cancel pending lots (the order line was cancelled before delivery): pending → cancelled."""
    now = now or timezone.now()
    selector = {"pk__in": lot_ids} if lot_ids is not None else {"source_type": source_type, "source_id": source_id}
    key_print = fingerprint(op="cancel", lots=sorted(lot_ids or []), source=[source_type, source_id])
    return _per_account(selector, operation_key, key_print, now, actor, _cancel, reason)


def _unlock(journal: Journal, lots: list[Lot]) -> None:
    for lot in lots:
        if lot.state == Lot.State.CANCELLED:
            raise LotNotPending(extra={"lot_id": lot.pk})
    pending = [lot for lot in lots if lot.state == Lot.State.PENDING]
    if not pending:
        return
    total = sum((lot.remaining for lot in pending), ZERO)
    for lot in pending:
        lot.state = Lot.State.ACTIVE
        if lot.expires_at is None:
            lot.expires_at = expiry_from(journal.now, lot.lifetime_days)
    journal.entry(
        Entry.Kind.UNLOCK, total, available=total, pending=-total, lots=[(lot, ZERO, ZERO) for lot in pending]
    )
    for lot in pending:
        journal.settle_debt_from(lot)


def _cancel(journal: Journal, lots: list[Lot]) -> None:
    for lot in lots:
        if lot.state not in (Lot.State.PENDING, Lot.State.CANCELLED):
            raise LotNotPending(extra={"lot_id": lot.pk})
    pending = [lot for lot in lots if lot.state == Lot.State.PENDING]
    if not pending:
        return
    total = sum((lot.remaining for lot in pending), ZERO)
    journal.entry(Entry.Kind.CANCEL, total, pending=-total, lots=[(lot, -lot.remaining, ZERO) for lot in pending])
    for lot in pending:
        lot.state = Lot.State.CANCELLED


def _per_account(selector, key, key_print, now, actor, apply, reason=""):
    """Run ``apply`` on the selected lots of each account, accounts locked in pk order, under one key."""
    with transaction.atomic():
        if "pk__in" in selector:  # named lots a merge moved: their copies on the survivor
            selector = {"pk__in": lots_followed(selector["pk__in"])}
        # A lot moved by a merge lives on as its copy on the survivor, which the same source selects.
        selected = Lot.objects.filter(**selector).exclude(state=Lot.State.MOVED)
        account_ids = sorted(set(selected.values_list("account_id", flat=True)))
        accounts = accounts_lock(account_ids=account_ids)
        if Entry.objects.filter(operation_key=key, operation_seq=0).exists():
            return [replay(key=key, fingerprint_=key_print)]
        lots_by_account = defaultdict(list)
        for lot in selected.order_by("pk"):
            lots_by_account[lot.account_id].append(lot)
        results = []
        for account_id in account_ids:
            journal = Journal(
                account=accounts[account_id],
                key=key,
                fingerprint_=key_print,
                now=now,
                actor=actor,
                reason=reason,
                seq_offset=sum(len(result.entries) for result in results),
            )
            apply(journal, lots_by_account[account_id])
            for lot in lots_by_account[account_id]:
                journal.touch(lot)
            if journal.entries:
                results.append(journal.flush())
        return results


def points_unlock_due(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Unlock pending lots whose ``available_from`` has come (beat job); one operation per lot, so a re-run
    or a concurrent run unlocks each lot once."""
    now = now or timezone.now()
    due = list(
        Lot.objects.filter(state=Lot.State.PENDING, available_from__lte=now).values_list("pk", flat=True)[:limit]
    )
    unlocked = 0
    for lot_id in due:
        try:
            points_unlock(operation_key=f"unlock:lot:{lot_id}", lot_ids=[lot_id], now=now)
            unlocked += 1
        except LotNotPending:
            continue  # cancelled (its order line was) between our query and its lock: nothing to unlock
    return unlocked
