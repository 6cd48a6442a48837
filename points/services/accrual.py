"""Accruing points, unlocking pending ones, cancelling pending ones (F-LED-1, F-LED-3, F-LED-6)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F
from django.utils import timezone

from core.sql import RowReader, uses_arrays
from customers.models import Customer
from points.exceptions import InvalidAmount, LotNotPending
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
from points.services.moves import lot_lineages


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
    savepoint: bool = True,
) -> list[PointsOperation]:
    """Make pending lots spendable (the order line was delivered, or their date came): by lot or by source.

    Each lot's lifetime starts now unless it had an explicit expiry. Debt is settled from them first.
    Locks every affected account in pk order. Already active lots are left alone, so a repeat is harmless;
    cancelled ones raise ``LotNotPending``.
    """
    now = now or timezone.now()
    selector = {"pk__in": lot_ids} if lot_ids is not None else {"source_type": source_type, "source_id": source_id}
    key_print = fingerprint(op="unlock", lots=sorted(lot_ids or []), source=[source_type, source_id])
    return _per_account(selector, operation_key, key_print, now, actor, _unlock, savepoint=savepoint)


def points_cancel_accrual(
    *,
    operation_key: str,
    lot_ids: list[int] | None = None,
    source_type: str = "",
    source_id: str = "",
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
    savepoint: bool = True,
) -> list[PointsOperation]:
    """Cancel pending lots (the order line was cancelled before delivery): pending → cancelled."""
    now = now or timezone.now()
    selector = {"pk__in": lot_ids} if lot_ids is not None else {"source_type": source_type, "source_id": source_id}
    key_print = fingerprint(op="cancel", lots=sorted(lot_ids or []), source=[source_type, source_id])
    return _per_account(selector, operation_key, key_print, now, actor, _cancel, reason, savepoint=savepoint)


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


def _per_account(selector, key, key_print, now, actor, apply, reason="", *, savepoint=True):
    """Run ``apply`` on the selected lots of each account, accounts locked in pk order, under one key: an operation
    per account that changed, with its lots as they are after it (``PointsOperation.lots``)."""
    with transaction.atomic(savepoint=savepoint):
        if "pk__in" in selector:  # named lots a merge moved: their copies on the survivor
            lineages = lot_lineages(selector["pk__in"])
            selector = {"pk__in": sorted(lineages.now_in())}
            # Where the lots are now is where the lineage query ended: their accounts, no second query.
            account_ids = sorted(lineages.accounts)
        else:
            account_ids = None
        plain = "pk__in" in selector and uses_arrays()  # named lots on PostgreSQL: no queryset to build
        # A lot moved by a merge lives on as its copy on the survivor, which the same source selects.
        selected = None if plain else Lot.objects.filter(**selector).exclude(state=Lot.State.MOVED)
        if account_ids is None:
            account_ids = sorted(set(selected.values_list("account_id", flat=True)))
        accounts = accounts_lock(account_ids=account_ids)
        # The key's check rides on the lots' query, a statement after the lock: it sees a call with the same key
        # that committed while this one waited for the lock.
        if plain:
            lots = _lots_with_key_check(selector["pk__in"], key)
        else:
            used = Exists(Entry.objects.filter(operation_key=key, operation_seq=0))
            lots = list(selected.annotate(key_used=used).order_by("pk"))
        if lots[0].key_used if lots else Entry.objects.filter(operation_key=key, operation_seq=0).exists():
            return [replay(key=key, fingerprint_=key_print)]
        lots_by_account = defaultdict(list)
        for lot in lots:
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
                results.append(journal.flush(lots=lots_by_account[account_id]))
        return results


_LOT = RowReader(Lot)


def _lots_with_key_check(lot_ids: list[int], key: str) -> list[Lot]:
    """``Lot.objects.filter(pk__in=lot_ids).exclude(state=MOVED).annotate(key_used=...).order_by("pk")`` as a plain
    statement (PostgreSQL): every delivery, cancellation and return runs it, and the ORM took longer to build it than
    PostgreSQL to run it."""
    entries, lots_table = connection.ops.quote_name(Entry._meta.db_table), connection.ops.quote_name(Lot._meta.db_table)
    sql = (
        f"SELECT {_LOT.columns('l')}, EXISTS (SELECT 1 FROM {entries} AS e WHERE e.operation_key = %s "
        f"AND e.operation_seq = 0) FROM {lots_table} AS l WHERE l.id = ANY(%s) AND l.state <> %s "
        "ORDER BY l.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, list(lot_ids), Lot.State.MOVED.value])
        rows = cursor.fetchall()
    lots = []
    for row in rows:
        lot = _LOT.instance(row[:-1])
        lot.key_used = row[-1]
        lots.append(lot)
    return lots


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


@replays_a_raced_key
def points_accrue_lots(
    *,
    customer: Customer,
    lots: list[tuple[Decimal, str]],
    kind: str,
    operation_key: str,
    source_type: str,
    pending: bool = True,
    balance_type: str | None = None,
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
    savepoint: bool = True,
) -> PointsOperation:
    """Several lots at once, each ``(amount, source_id)`` with its own accrual entry, under one account lock and
    one key: the points of an order's lines, each line's lot tied to it (F-EARN-4). Pending until unlocked, or
    active at once (``pending=False``, a sale handed over at the till), which first pays the account's debt.
    Non-members' lots are members-only (F-ID-4). The lots are returned in ``PointsOperation.lots``.

    ``savepoint``: see ``points.services.journal``."""
    amounts = [(points_amount(amount), str(source_id)) for amount, source_id in lots]
    if not amounts:
        raise InvalidAmount("Nothing to accrue.")
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    now = now or timezone.now()
    key_print = fingerprint(
        op="accrue_lots",
        customer=customer.pk,
        lots=amounts,
        kind=kind,
        balance_type=balance_type,
        pending=pending,
        source_type=source_type,
    )
    restriction = "" if customer.is_member else Lot.Restriction.MEMBERS_ONLY
    with transaction.atomic(savepoint=savepoint):
        account = account_lock_for_customer(customer_id=customer.pk, balance_type=balance_type, key=operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        # Pending lots expire from their unlock: their lifetime is looked up by the statement that inserts them.
        days = None if pending else lifetime_days(balance_type=account.balance_type, kind=kind)
        journal = Journal(
            account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor, reason=reason
        )
        created = journal.lots_create(
            [
                Lot(
                    account=account,
                    kind=kind,
                    amount=amount,
                    remaining=ZERO,
                    state=Lot.State.PENDING if pending else Lot.State.ACTIVE,
                    expires_at=None if pending else expiry_from(now, days),
                    lifetime_days=days,
                    restriction=restriction,
                    source_type=source_type,
                    source_id=source_id,
                    created_at=now,
                )
                for amount, source_id in amounts
            ],
            lifetime_of=(account.balance_type, kind) if pending else None,
        )
        for lot in created:
            if pending:
                journal.entry(Entry.Kind.ACCRUE, lot.amount, pending=lot.amount, lots=[(lot, lot.amount, ZERO)])
            else:
                journal.entry(Entry.Kind.ACCRUE, lot.amount, available=lot.amount, lots=[(lot, lot.amount, ZERO)])
        if not pending:
            for lot in created:
                journal.settle_debt_from(lot)
            for lot in created:
                journal.touch(lot)
        return journal.flush(lots=created)


@replays_a_raced_key
def points_split_pending(
    *,
    lot_id: int,
    amount: Decimal | int | str,
    source_id: str,
    operation_key: str,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
    savepoint: bool = True,
) -> PointsOperation:
    """Split ``amount`` off a pending lot into a new pending lot with ``source_id`` (same kind, source type and
    restriction): part of an order line is delivered or cancelled and its points go their own way. The old lot's
    amount shrinks by as much; pending points do not change. ``LotNotPending`` unless the lot (or, after a
    merge, its copy) is pending; ``InvalidAmount`` unless 0 < amount < the lot's amount."""
    amount = points_amount(amount)
    now = now or timezone.now()
    key_print = fingerprint(op="split", lot=lot_id, amount=amount, source_id=source_id)
    with transaction.atomic(savepoint=savepoint):
        lineages = lot_lineages([lot_id])  # where the lot is now (a merge may have moved it), and its account
        ((followed, _asked),) = lineages.now_in().items()
        if not lineages.accounts:
            raise Lot.DoesNotExist(f"No lot {lot_id}.")
        (account_id,) = lineages.accounts
        account = accounts_lock(account_ids=[account_id])[account_id]
        # The key's check rides on the lot's query, a statement after the lock (it sees a call that committed
        # the same key while this one waited).
        used = Exists(Entry.objects.filter(operation_key=operation_key, operation_seq=0))
        lot = Lot.objects.annotate(key_used=used).get(pk=followed)
        if lot.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        if lot.state != Lot.State.PENDING:
            raise LotNotPending(extra={"lot_id": lot.pk})
        if amount >= lot.amount:
            raise InvalidAmount(extra={"lot_amount": str(lot.amount)})
        part = Lot.objects.create(
            account=account,
            kind=lot.kind,
            amount=amount,
            remaining=ZERO,
            state=Lot.State.PENDING,
            available_from=lot.available_from,
            expires_at=lot.expires_at,
            lifetime_days=lot.lifetime_days,
            restriction=lot.restriction,
            source_type=lot.source_type,
            source_id=source_id,
            created_at=now,
        )
        journal = Journal(account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor)
        journal.entry(Entry.Kind.SPLIT, amount, lots=[(lot, -amount, ZERO), (part, amount, ZERO)])
        operation = journal.flush(lot=part)
        # After the flush has lowered its remaining: the database checks remaining <= amount at each statement.
        Lot.objects.filter(pk=lot.pk).update(amount=F("amount") - amount)
        lot.amount -= amount
        return operation
