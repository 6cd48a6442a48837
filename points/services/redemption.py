"""Spending points and refunding spends exactly (F-LED-4, F-LED-6, F-LED-8)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from customers.models import Customer
from points.exceptions import LotMoved, NotARedemption, NothingToRefund, RefundExceedsRedemption
from points.locks import account_lock, account_lock_for_customer
from points.models import ZERO, Allocation, Entry, Lot
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
from points.services.moves import lot_lineages
from points.services.spending import spendable_lots, take_soonest_expiring
from points.services.sql import ledger_take, sql_functions_enabled


@replays_a_raced_key
def points_redeem(
    *,
    customer: Customer,
    amount: Decimal | int | str,
    operation_key: str,
    balance_type: str | None = None,
    first_order: bool = False,
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
    savepoint: bool = True,
) -> PointsOperation:
    """Spend ``amount`` from the customer's spendable lots, soonest-expiring first.

    ``InsufficientPoints`` if the spendable total (after restrictions) is smaller; available never goes
    negative (also a database constraint). The entry's allocations record exactly which lots paid,
    for ``points_refund``. Locks the account; a repeated key returns the first result.
    """
    amount = points_amount(amount)
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    now = now or timezone.now()
    key_print = fingerprint(
        op="redeem", customer=customer.pk, amount=amount, balance_type=balance_type, first_order=first_order
    )
    if sql_functions_enabled():
        return ledger_take(
            kind=Entry.Kind.REDEEM,
            customer_id=customer.pk,
            balance_type=balance_type,
            amount=amount,
            operation_key=operation_key,
            fingerprint_=key_print,
            first_order=first_order,
            now=now,
            actor=actor,
            reason=reason,
            savepoint=savepoint,
        )
    with transaction.atomic(savepoint=savepoint):
        account = account_lock_for_customer(customer_id=customer.pk, balance_type=balance_type, key=operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        taken = take_soonest_expiring(spendable_lots(account=account, now=now, first_order=first_order), amount)
        journal = Journal(
            account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor, reason=reason
        )
        journal.entry(Entry.Kind.REDEEM, amount, available=-amount, lots=[(lot, -part, ZERO) for lot, part in taken])
        return journal.flush()


@replays_a_raced_key
def points_refund(
    *,
    redemption_id: int,
    operation_key: str,
    amount: Decimal | int | str | None = None,
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
    savepoint: bool = True,
) -> PointsOperation:
    """Give back all (default) or part of a redemption to the very lots it consumed, latest-expiring first.

    A lot that expired meanwhile comes back alive for at least ``POINTS_REFUND_GRACE_DAYS``, holding only the
    refunded points (what was left in it stays expired, whether or not the expiry job had swept it).
    ``RefundExceedsRedemption`` past what is left to refund. Locks the account; idempotent by key.
    """
    now = now or timezone.now()
    amount = points_amount(amount) if amount is not None else None
    key_print = fingerprint(op="refund", redemption=redemption_id, amount=amount)
    redemption = Entry.objects.filter(pk=redemption_id, kind=Entry.Kind.REDEEM).first()
    if redemption is None:
        raise NotARedemption()
    with transaction.atomic(savepoint=savepoint):
        # The redeemed lots, or where a merge moved them since: the refund goes to the survivor's copies.
        consumed = list(redemption.allocations.order_by("pk").values_list("lot_id", "remaining_delta", "held_delta"))
        lineages = lot_lineages(lot_id for lot_id, _, _ in consumed)
        now_in = lineages.now_in()
        if len(lineages.accounts) > 1:  # part moved, part not (a lot clawed back whole stays): no one account
            raise LotMoved(extra={"lots": sorted(now_in)})
        account_id = next(iter(lineages.accounts), redemption.account_id)
        account = account_lock(account_id=account_id, key=operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        refundable = _refundable_by_lot(redemption, consumed, lineages.chains)
        total = sum(refundable.values(), ZERO)
        if total == 0:
            raise NothingToRefund()
        amount = amount if amount is not None else total
        if amount > total:
            raise RefundExceedsRedemption(extra={"refundable": str(total)})
        grace_until = now + timedelta(days=settings.POINTS_REFUND_GRACE_DAYS)
        lots = {now_in[lot.pk]: lot for lot in Lot.objects.filter(pk__in=now_in)}
        if any(lot.state == Lot.State.MOVED for lot in lots.values()):
            raise LotMoved(LotMoved.raced_message, extra={"lots": sorted(now_in)})
        restored, lapsed, left = [], [], amount
        for lot_id in reversed(list(refundable)):  # undo in reverse order of consumption
            part = min(refundable[lot_id], left)
            if part == 0:
                continue
            lot = lots[lot_id]
            if lot.state == Lot.State.EXPIRED or (lot.expires_at is not None and lot.expires_at <= now):
                if lot.state == Lot.State.ACTIVE and lot.remaining > 0:
                    # Expired, not yet swept: what was left in it expires now, as the job would have done;
                    # only the refunded points come back to life.
                    lapsed.append((lot, lot.remaining))
                lot.state = Lot.State.ACTIVE
                lot.expires_at = max(lot.expires_at or grace_until, grace_until)
            restored.append((lot, part, ZERO))
            left -= part
        journal = Journal(
            account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor, reason=reason
        )
        journal.entry(Entry.Kind.REFUND, amount, available=amount, lots=restored, reverses=redemption)
        if lapsed:
            gone = sum((remaining for _, remaining in lapsed), ZERO)
            journal.entry(
                Entry.Kind.EXPIRE, gone, available=-gone, lots=[(lot, -remaining, ZERO) for lot, remaining in lapsed]
            )
        return journal.flush()


def _refundable_by_lot(
    redemption: Entry, consumed: list[tuple[int, Decimal, Decimal]], chains: dict[int, list[int]]
) -> dict[int, Decimal]:
    """Redeemed lot id → points still refundable, in the order the redemption consumed the lots. Earlier
    refunds count wherever they went: to the lot itself or, after a merge, to a copy of it."""
    refundable: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for lot_id, remaining_delta, held_delta in consumed:
        refundable[lot_id] -= remaining_delta + held_delta
    original_of = {pk: original for original, chain in chains.items() for pk in chain}
    refunded = (
        Allocation.objects.filter(entry__reverses=redemption, entry__kind=Entry.Kind.REFUND)
        .values("lot_id")
        .annotate(total=Sum("remaining_delta"))
    )
    for row in refunded:
        refundable[original_of[row["lot_id"]]] -= row["total"]
    return dict(refundable)
