"""Taking back accrued points on a return after delivery (F-LED-6)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from points.exceptions import InvalidAmount
from points.models import ZERO, Allocation, Entry, Lot
from points.services.accrual import _per_account
from points.services.journal import SYSTEM, Actor, Journal, PointsOperation, fingerprint, points_amount


def points_clawback(
    *,
    operation_key: str,
    lot_ids: list[int] | None = None,
    source_type: str = "",
    source_id: str = "",
    amount: Decimal | int | str | None = None,
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
    savepoint: bool = True,
) -> list[PointsOperation]:
    """Take back the points of accrual lots (by lot or by source): from what is left of them first; what the
    customer already spent becomes **debt**, paid from the next points that become available. Available never
    goes negative. Pending lots in the selection are cancelled instead. ``amount`` (one lot only) takes back
    part of a lot, e.g. for a partial return. Locks the accounts in pk order; idempotent by key.
    """
    now = now or timezone.now()
    amount = points_amount(amount) if amount is not None else None
    if amount is not None and (lot_ids is None or len(lot_ids) != 1):
        raise InvalidAmount("A partial clawback names exactly one lot.")
    selector = {"pk__in": lot_ids} if lot_ids is not None else {"source_type": source_type, "source_id": source_id}
    key_print = fingerprint(op="clawback", lots=sorted(lot_ids or []), source=[source_type, source_id], amount=amount)

    def apply(journal: Journal, lots: list[Lot]) -> None:
        _clawback(journal, lots, amount)

    return _per_account(selector, operation_key, key_print, now, actor, apply, reason, savepoint=savepoint)


def _clawback(journal: Journal, lots: list[Lot], amount: Decimal | None) -> None:
    pending = [lot for lot in lots if lot.state == Lot.State.PENDING]
    if pending:
        total = sum((lot.remaining for lot in pending), ZERO)
        journal.entry(Entry.Kind.CANCEL, total, pending=-total, lots=[(lot, -lot.remaining, ZERO) for lot in pending])
        for lot in pending:
            lot.state = Lot.State.CANCELLED
    settled = [lot for lot in lots if lot.state in (Lot.State.ACTIVE, Lot.State.SPENT, Lot.State.EXPIRED)]
    outstanding = _outstanding(settled)
    for lot in settled:
        wanted = outstanding[lot.pk] if amount is None else amount
        if wanted > outstanding[lot.pk]:
            raise InvalidAmount(extra={"outstanding": str(outstanding[lot.pk])})
        if wanted == 0:
            continue
        taken = min(lot.remaining, wanted)
        journal.entry(Entry.Kind.CLAWBACK, wanted, available=-taken, debt=wanted - taken, lots=[(lot, -taken, ZERO)])


def _outstanding(lots: list[Lot]) -> dict[int, Decimal]:
    """What can still be taken back per lot: its amount less what expired, was cancelled, reset or clawed back."""
    outstanding = {lot.pk: lot.amount for lot in lots}
    clawed: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for lot_id, kind, remaining_delta, entry_amount in _taken_away(list(outstanding)):
        if kind == Entry.Kind.CLAWBACK:
            clawed[lot_id] += entry_amount
        else:
            outstanding[lot_id] += remaining_delta  # negative deltas
    return {lot_id: max(value - clawed[lot_id], ZERO) for lot_id, value in outstanding.items()}


TAKING_AWAY = [Entry.Kind.EXPIRE, Entry.Kind.CANCEL, Entry.Kind.RESET, Entry.Kind.CLAWBACK]
TAKEN_AWAY_SQL = (
    f"SELECT a.lot_id, e.kind, a.remaining_delta, e.amount FROM {Allocation._meta.db_table} AS a"
    f" JOIN {Entry._meta.db_table} AS e ON e.id = a.entry_id WHERE a.lot_id = ANY(%s) AND e.kind = ANY(%s)"
)


def _taken_away(lot_ids: list[int]) -> list[tuple]:
    """(lot id, entry kind, remaining delta, entry amount) of the allocations of the entries that took points away
    from the lots: one query for both the lines that did (their deltas) and the clawbacks (their entries' amount).
    A plain statement on PostgreSQL: every return runs it, and the ORM took longer to build it than to run it."""
    if not lot_ids:
        return []
    if connection.vendor != "postgresql":
        return list(
            Allocation.objects.filter(lot__in=lot_ids, entry__kind__in=TAKING_AWAY).values_list(
                "lot_id", "entry__kind", "remaining_delta", "entry__amount"
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(TAKEN_AWAY_SQL, [lot_ids, [str(kind) for kind in TAKING_AWAY]])
        return cursor.fetchall()
