"""Two-phase redemption (F-LED-10): hold at checkout, commit on payment, release on failure or timeout."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from customers.exceptions import CustomerNotFound
from customers.models import Customer
from points.exceptions import HoldNotFound, HoldNotOpen, InsufficientPoints, InvalidAmount
from points.locks import account_lock, account_lock_for_customer
from points.models import ZERO, Allocation, Entry, Hold, Lot
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
from points.services.spending import spendable_lots, take_soonest_expiring
from points.services.sql import BIGINT_MAX, ledger_commit, ledger_take, sql_functions_enabled

logger = logging.getLogger(__name__)


@replays_a_raced_key
def points_hold(
    *,
    customer: Customer | None = None,
    customer_id: int | None = None,
    amount: Decimal | int | str,
    operation_key: str,
    balance_type: str | None = None,
    first_order: bool = False,
    timeout: timedelta | None = None,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> PointsOperation:
    """Reserve ``amount`` from spendable lots (soonest-expiring first): they leave available and show as held.

    The hold expires after ``timeout`` (default ``POINTS_HOLD_TIMEOUT_MINUTES``) and is then released by
    ``points_holds_release_expired``. Locks the account; idempotent by key.

    The customer is given as ``customer`` or, by a caller that has not read it, as ``customer_id``:
    ``CustomerNotFound`` if there is no such customer (the check costs a query only when the hold is refused).
    """
    if (customer is None) == (customer_id is None):
        raise TypeError("points_hold takes either customer or customer_id")
    if customer is None and not 0 < customer_id <= BIGINT_MAX:  # no such row, and past bigint no statement fits
        raise CustomerNotFound()
    customer_id = customer.pk if customer is not None else customer_id
    amount = points_amount(amount)
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    now = now or timezone.now()
    timeout = timeout or timedelta(minutes=settings.POINTS_HOLD_TIMEOUT_MINUTES)
    key_print = fingerprint(
        op="hold",
        customer=customer_id,
        amount=amount,
        balance_type=balance_type,
        first_order=first_order,
        timeout=timeout.total_seconds(),
    )
    if sql_functions_enabled():
        try:
            return ledger_take(
                kind=Entry.Kind.HOLD,
                customer_id=customer_id,
                balance_type=balance_type,
                amount=amount,
                operation_key=operation_key,
                fingerprint_=key_print,
                first_order=first_order,
                now=now,
                actor=actor,
                hold_expires_at=now + timeout,
            )
        except InsufficientPoints:
            if customer is None and not Customer.objects.filter(pk=customer_id).exists():
                raise CustomerNotFound() from None  # nobody to hold for: the function found no account
            raise
    if customer is None and not Customer.objects.filter(pk=customer_id).exists():
        raise CustomerNotFound()
    with transaction.atomic():
        account = account_lock_for_customer(customer_id=customer_id, balance_type=balance_type, key=operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        taken = take_soonest_expiring(spendable_lots(account=account, now=now, first_order=first_order), amount)
        hold = Hold.objects.create(
            account=account, amount=amount, operation_key=operation_key, expires_at=now + timeout, created_at=now
        )
        journal = Journal(account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor)
        journal.entry(
            Entry.Kind.HOLD,
            amount,
            available=-amount,
            held=amount,
            hold=hold,
            lots=[(lot, -part, part) for lot, part in taken],
        )
        return journal.flush(hold=hold)


@replays_a_raced_key
def points_hold_commit(
    *,
    hold_id: int,
    operation_key: str,
    amount: Decimal | int | str | None = None,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
    savepoint: bool = True,
) -> PointsOperation:
    """Spend the held points (all, or ``amount`` of them with the rest released): a redemption entry.

    Points reserved before their lot expired are spent even if it expired since. ``HoldNotOpen`` if the
    hold was committed, released or timed out. Locks the account; idempotent by key.
    """
    now = now or timezone.now()
    amount = points_amount(amount) if amount is not None else None
    key_print = fingerprint(op="hold_commit", hold=hold_id, amount=amount)
    if sql_functions_enabled():
        return ledger_commit(
            hold_id=hold_id,
            amount=amount,
            operation_key=operation_key,
            fingerprint_=key_print,
            now=now,
            actor=actor,
            savepoint=savepoint,
        )
    with transaction.atomic(savepoint=savepoint):
        hold, account = _lock_hold(hold_id, operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        if hold.state != Hold.State.OPEN:
            raise HoldNotOpen(extra={"state": hold.state})
        if hold.expires_at <= now:  # timed out: as good as released, whether or not the release job ran yet
            raise HoldNotOpen(extra={"state": "timed_out"})
        amount = amount if amount is not None else hold.amount
        if amount > hold.amount:
            raise InvalidAmount(extra={"held": str(hold.amount)})
        journal = Journal(account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor)
        spent, rest, left = [], [], amount
        for lot, held in _held_lots(hold):
            part = min(held, left)
            left -= part
            if part > 0:
                spent.append((lot, ZERO, -part))
            if held > part:
                rest.append((lot, held - part))
        journal.entry(Entry.Kind.REDEEM, amount, held=-amount, lots=spent, hold=hold)
        _release(journal, hold, rest)
        _close(hold, Hold.State.COMMITTED, now)
        return journal.flush(hold=hold)


@replays_a_raced_key
def points_hold_release(
    *, hold_id: int, operation_key: str, actor: Actor = SYSTEM, now: datetime | None = None
) -> PointsOperation:
    """Return held points to their lots (checkout failed or was abandoned); lots that expired meanwhile
    expire now. ``HoldNotOpen`` if already committed or released. Locks the account; idempotent by key."""
    now = now or timezone.now()
    key_print = fingerprint(op="hold_release", hold=hold_id)
    with transaction.atomic():
        hold, account = _lock_hold(hold_id, operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        if hold.state != Hold.State.OPEN:
            raise HoldNotOpen(extra={"state": hold.state})
        journal = Journal(account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor)
        _release(journal, hold, _held_lots(hold))
        _close(hold, Hold.State.RELEASED, now)
        return journal.flush(hold=hold)


def points_holds_release_expired(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Release open holds past their timeout (beat job). Safe to run twice or beside a commit: each hold
    is released at most once, under its own key, and one committed meanwhile is left alone."""
    now = now or timezone.now()
    released = 0
    for hold_id in Hold.objects.filter(state=Hold.State.OPEN, expires_at__lte=now).values_list("pk", flat=True)[:limit]:
        try:
            points_hold_release(hold_id=hold_id, operation_key=f"hold:{hold_id}:timeout", now=now)
            released += 1
        except HoldNotOpen:
            continue
    if released:
        logger.info("released %d timed-out holds", released)
    return released


def _lock_hold(hold_id: int, key: str):
    account_id = Hold.objects.filter(pk=hold_id).values_list("account_id", flat=True).first()
    if account_id is None:
        raise HoldNotFound()
    account = account_lock(account_id=account_id, key=key)
    return Hold.objects.get(pk=hold_id), account  # re-read under the account lock


def _held_lots(hold: Hold) -> list[tuple[Lot, Decimal]]:
    """The lots this hold still reserves and how much of each, soonest-expiring first."""
    rows = (
        Allocation.objects.filter(entry__hold=hold).values("lot_id").annotate(held=Sum("held_delta")).filter(held__gt=0)
    )
    held = {row["lot_id"]: row["held"] for row in rows}
    lots = Lot.objects.filter(pk__in=held).order_by(F("expires_at").asc(nulls_last=True), "pk")
    return [(lot, held[lot.pk]) for lot in lots]


def _release(journal: Journal, hold: Hold, held_lots: list[tuple[Lot, Decimal]]) -> None:
    total = sum((held for _, held in held_lots), ZERO)
    if total == 0:
        return
    journal.entry(
        Entry.Kind.RELEASE,
        total,
        available=total,
        held=-total,
        hold=hold,
        lots=[(lot, held, -held) for lot, held in held_lots],
    )
    expired = [(lot, held) for lot, held in held_lots if lot.state == Lot.State.EXPIRED]
    if expired:
        gone = sum((held for _, held in expired), ZERO)
        journal.entry(Entry.Kind.EXPIRE, gone, available=-gone, lots=[(lot, -held, ZERO) for lot, held in expired])


def _close(hold: Hold, state: str, now: datetime) -> None:
    hold.state = state
    hold.closed_at = now
    hold.save(update_fields=["state", "closed_at"])
