"""The one place that writes journal rows: a unit of work over one locked account.

Services describe an operation as entries with per-lot allocations; ``Journal.flush`` applies the
deltas to the lots and the account already in memory (the caller holds the account lock, so they
are exact) and writes everything in a fixed number of statements.

Services that an order's transaction calls take ``savepoint`` (default True). ``savepoint=False`` is for a caller's
transaction that catches none of the service's errors and whose operation key no other call can race (an order's
event, claimed in that transaction under the order lock): it saves the SAVEPOINT and RELEASE round trips, and an
error leaves the caller's transaction to be rolled back.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection

from core.actors import SYSTEM, Actor  # noqa: F401 (re-exported to the ledger services)
from core.sql import default_database
from points.exceptions import InvalidAmount, OperationKeyConflict, PointsError, ReasonRequired
from points.models import ZERO, Account, Allocation, BalanceType, Entry, Hold, Lot
from points.selectors import Balance
from points.services.lifetimes import LIFETIME_DAYS_SQL, lifetime_days

CENT = Decimal("0.01")


@dataclass
class PointsOperation:
    """What a ledger service did (or, on a repeated key, had done)."""

    operation_key: str
    entries: list[Entry]
    allocations: dict[int, Decimal] = field(default_factory=dict)  # lot id → points moved by the first entry
    lot: Lot | None = None
    lots: list[Lot] = field(default_factory=list)
    hold: Hold | None = None
    replayed: bool = False
    balance: Balance | None = None  # the account's balance right after, when the implementation has it at hand

    @property
    def amount(self) -> Decimal:
        return self.entries[0].amount if self.entries else ZERO


def points_amount(value: Decimal | int | str) -> Decimal:
    """A positive amount with at most two decimals, or ``InvalidAmount``."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise InvalidAmount() from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise InvalidAmount()
    return amount.quantize(CENT)


def signed_points_amount(value: Decimal | int | str) -> Decimal:
    """A non-zero amount of either sign with at most two decimals, or ``InvalidAmount``."""
    try:
        signed = Decimal(str(value))
    except ArithmeticError:
        raise InvalidAmount() from None
    if not signed.is_finite() or signed == 0:
        raise InvalidAmount()
    magnitude = points_amount(abs(signed))
    return magnitude if signed > 0 else -magnitude


def fingerprint(**arguments: Any) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, cls=DjangoJSONEncoder).encode()).hexdigest()


def require_reason(actor: Actor, reason: str) -> None:
    if not actor.is_known or not reason.strip():
        raise ReasonRequired()


def points_moved(remaining_delta: Decimal, held_delta: Decimal) -> Decimal:
    """Points a line moved in a lot: a hold or release shifts them between remaining and held."""
    return max(abs(remaining_delta), abs(held_delta))


def replay(*, key: str, fingerprint_: str) -> PointsOperation:
    """The stored result of an operation key, or ``OperationKeyConflict`` if it was another operation."""
    entries = list(
        Entry.objects.filter(operation_key=key)
        .select_related("hold")
        .prefetch_related("allocations__lot")
        .order_by("operation_seq")
    )
    if entries[0].fingerprint != fingerprint_:
        raise OperationKeyConflict(extra={"operation_key": key})
    first = entries[0]
    first_allocations = list(first.allocations.all())
    allocations = {a.lot_id: points_moved(a.remaining_delta, a.held_delta) for a in first_allocations}
    creates_lot = first.kind == Entry.Kind.ACCRUE or (
        first.kind == Entry.Kind.ADJUST and first.debt_delta == 0 and first.available_delta > 0
    )
    created = first_allocations[0].lot if creates_lot and first_allocations else None
    return PointsOperation(key, entries, allocations, lot=created, hold=first.hold, replayed=True)


def replays_a_raced_key(service: Callable[..., PointsOperation]) -> Callable[..., PointsOperation]:
    """A call that waited for the account lock while another call with the same key committed answers like
    that call did (replay), instead of failing.

    The lock query checks the key in the same statement (one round trip), but a statement sees the database
    as of its start: a key committed while it waited for the lock is invisible to it. The late call then
    fails — on the unique key, or on the state the first call left (points spent, hold closed, nothing left
    to refund). So a failure is checked once against the committed keys; if the key is there now, the call
    is run again and replays it. Costs one query on failure paths only.
    """

    @functools.wraps(service)
    def wrapper(*, operation_key: str, **kwargs: Any) -> PointsOperation:
        try:
            return service(operation_key=operation_key, **kwargs)
        except OperationKeyConflict:
            raise
        except (IntegrityError, PointsError):
            if connection.needs_rollback:
                # Run without a savepoint inside the caller's transaction (``savepoint=False``): nothing can be
                # read before it rolls back, and its key came from that transaction, so no other call raced it.
                raise
            if not Entry.objects.filter(operation_key=operation_key, operation_seq=0).exists():
                raise
        return service(operation_key=operation_key, **kwargs)

    return wrapper


class Journal:
    def __init__(
        self,
        *,
        account: Account,
        key: str,
        fingerprint_: str,
        now: datetime,
        actor: Actor,
        reason: str = "",
        seq_offset: int = 0,
    ) -> None:
        self.account = account
        self.seq_offset = seq_offset  # lines already written under this key for other accounts
        self.key = key
        self.fingerprint = fingerprint_
        self.now = now
        self.actor = actor
        self.reason = reason
        self.entries: list[Entry] = []
        self._allocations: list[tuple[Entry, Lot, Decimal, Decimal]] = []
        self._changed_lots: dict[int, Lot] = {}
        self._new_lots: list[Lot] = []  # inserted by flush, with the values they have then (PostgreSQL)
        self._new_lots_lifetime: tuple[BalanceType, str] | None = None

    def lots_create(self, lots: list[Lot], *, lifetime_of: tuple[BalanceType, str] | None = None) -> list[Lot]:
        """New lots of the operation. On PostgreSQL ``flush`` inserts them in its statement, as they are by then
        (their ids come back with the entries'); elsewhere they are inserted now and updated by ``flush``.

        ``lifetime_of`` (balance type, kind): the lots' ``lifetime_days`` is looked up by the flush's statement
        (PostgreSQL) — for lots whose expiry does not depend on it yet (pending) — else here."""
        if lifetime_of is not None:
            if connection.vendor == "postgresql":
                self._new_lots_lifetime = lifetime_of
            else:
                days = lifetime_days(balance_type=lifetime_of[0], kind=lifetime_of[1])
                for lot in lots:
                    lot.lifetime_days = days
        if connection.vendor == "postgresql":
            self._new_lots.extend(lots)
            return lots
        return Lot.objects.bulk_create(lots)

    def entry(
        self,
        kind: str,
        amount: Decimal,
        *,
        available: Decimal = ZERO,
        pending: Decimal = ZERO,
        held: Decimal = ZERO,
        debt: Decimal = ZERO,
        lots: list[tuple[Lot, Decimal, Decimal]] = (),
        hold: Hold | None = None,
        reverses: Entry | None = None,
    ) -> Entry:
        """Record one journal line; ``lots`` are (lot, remaining change, held change)."""
        entry = Entry(
            account=self.account,
            kind=kind,
            amount=amount,
            available_delta=available,
            pending_delta=pending,
            held_delta=held,
            debt_delta=debt,
            operation_key=self.key,
            operation_seq=self.seq_offset + len(self.entries),
            fingerprint=self.fingerprint if self.seq_offset + len(self.entries) == 0 else "",
            actor_channel=self.actor.channel,
            actor_user=self.actor.user,
            reason=self.reason,
            hold=hold,
            reverses=reverses,
            created_at=self.now,
        )
        self.entries.append(entry)
        self.account.available += available
        self.account.pending += pending
        self.account.held += held
        self.account.debt += debt
        for lot, remaining_delta, held_delta in lots:
            lot.remaining += remaining_delta
            lot.held += held_delta
            if lot.state == Lot.State.ACTIVE and lot.remaining == 0 and lot.held == 0:
                lot.state = Lot.State.SPENT
            elif lot.state == Lot.State.SPENT and (lot.remaining > 0 or lot.held > 0):
                lot.state = Lot.State.ACTIVE
            self._allocations.append((entry, lot, remaining_delta, held_delta))
            if lot.pk is not None:
                self._changed_lots[lot.pk] = lot
        return entry

    def settle_debt_from(self, lot: Lot) -> None:
        """Debt (from clawbacks) is paid first from points that become available (F-LED-6) — not from points
        already past their expiry (a pending lot unlocked late): those are worth nothing and just expire."""
        usable = lot.state == Lot.State.ACTIVE and (lot.expires_at is None or lot.expires_at > self.now)
        settled = min(self.account.debt, lot.remaining) if usable else ZERO
        if settled > 0:
            self.entry(Entry.Kind.SETTLE, settled, available=-settled, debt=-settled, lots=[(lot, -settled, ZERO)])

    def touch(self, lot: Lot) -> None:
        """Persist a lot changed outside ``entry`` (state, expiry date)."""
        if lot.pk is not None:  # a new lot is inserted as it is at the flush
            self._changed_lots[lot.pk] = lot

    def flush(self, **result: Any) -> PointsOperation:
        if connection.vendor == "postgresql":
            flush_postgresql(self)
        else:
            Entry.objects.bulk_create(self.entries)
            Allocation.objects.bulk_create(
                [Allocation(entry=e, lot=lot, remaining_delta=r, held_delta=h) for e, lot, r, h in self._allocations]
            )
            if self._changed_lots:
                lots_update(list(self._changed_lots.values()))
            Account.objects.filter(pk=self.account.pk).update(
                available=self.account.available,
                pending=self.account.pending,
                held=self.account.held,
                debt=self.account.debt,
                updated_at=self.now,
            )
        first = [a for a in self._allocations if a[0] is self.entries[0]]
        allocations = {lot.pk: points_moved(r, h) for _, lot, r, h in first}
        return PointsOperation(self.key, self.entries, allocations, **result)


# The whole flush in one statement: the entries (their ids returned), their allocations (joined to the new entries
# by their line of the operation, in the order they were recorded), the lots and the account. Same rows and values
# as the ORM path; building four ORM statements took longer than running them (docs/performance.md).
FLUSH_SQL = """
WITH {new_lots}new_entries AS (
    INSERT INTO points_entry ({entry_columns})
    SELECT * FROM UNNEST({entry_arrays})
    RETURNING id, operation_seq
), new_allocations AS (
    INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
    SELECT e.id, {allocation_lot}, a.remaining_delta, a.held_delta
    FROM UNNEST(%s::integer[], %s::bigint[], %s::numeric[], %s::numeric[]{new_lot_array}) WITH ORDINALITY
        AS a (seq, lot_id, remaining_delta, held_delta{new_lot_column}, n)
    JOIN new_entries e ON e.operation_seq = a.seq{new_lot_join}
    ORDER BY a.n
), changed_lots AS (
    UPDATE points_lot AS lot
    SET remaining = v.remaining, held = v.held, state = v.state, expires_at = v.expires_at,
        restriction = v.restriction, moved_to_id = v.moved_to_id
    FROM UNNEST(%s::bigint[], %s::numeric[], %s::numeric[], %s::varchar[], %s::timestamptz[], %s::varchar[],
        %s::bigint[]) AS v (id, remaining, held, state, expires_at, restriction, moved_to_id)
    WHERE lot.id = v.id
), changed_account AS (
    UPDATE points_account
    SET available = %s, pending = %s, held = %s, debt = %s, updated_at = %s
    WHERE id = %s
)
SELECT id, operation_seq, false, NULL::integer FROM new_entries{new_lot_ids}
"""
NO_NEW_LOTS = {
    "new_lots": "",
    "allocation_lot": "a.lot_id",
    "new_lot_array": "",
    "new_lot_column": "",
    "new_lot_join": "",
    "new_lot_ids": "",
}

# With new lots: their ids taken first, in their order (as a bulk insert would), so that the allocations can name
# them; the lots inserted with their values at the flush (the same rows as an insert and an update).
FLUSH_NEW_LOTS_SQL = """new_lot_ids AS (
    SELECT nextval(pg_get_serial_sequence('points_lot', 'id')) AS id, n FROM generate_series(1, %s::integer) n
), new_lots AS (
    INSERT INTO points_lot (id, {lot_columns})
    SELECT i.id, {lot_values}
    FROM UNNEST({lot_arrays}) WITH ORDINALITY AS v ({lot_names}, n)
    JOIN new_lot_ids i ON i.n = v.n
    ORDER BY v.n
    RETURNING id, lifetime_days
), """


def _columns(model) -> tuple[list, str, str]:
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(f'"{field.column}"' for field in fields)
    arrays = ", ".join(f"%s::{field.cast_db_type(connection)}[]" for field in fields)
    return fields, columns, arrays


@functools.cache
def _entry_columns(new_lots: bool = False, lifetime_lookup: bool = False) -> tuple[list, list, str]:
    fields, columns, arrays = _columns(Entry)
    if not new_lots:
        return fields, [], FLUSH_SQL.format(entry_columns=columns, entry_arrays=arrays, **NO_NEW_LOTS)
    lot_fields, lot_columns, lot_arrays = _columns(Lot)
    names = [f"c{index}" for index in range(len(lot_fields))]
    new_lots_sql = FLUSH_NEW_LOTS_SQL.format(
        lot_columns=lot_columns,
        lot_arrays=lot_arrays,
        lot_names=", ".join(names),
        lot_values=", ".join(
            LIFETIME_DAYS_SQL if lifetime_lookup and field.name == "lifetime_days" else f"v.{name}"
            for field, name in zip(lot_fields, names, strict=True)
        ),
    )
    sql = FLUSH_SQL.format(
        entry_columns=columns,
        entry_arrays=arrays,
        new_lots=new_lots_sql,
        # An allocation names a new lot by its place among them (its lot id is null).
        allocation_lot="COALESCE(a.lot_id, l.id)",
        new_lot_array=", %s::integer[]",
        new_lot_column=", new_lot",
        new_lot_join="\n    LEFT JOIN new_lot_ids l ON l.n = a.new_lot",
        new_lot_ids="\nUNION ALL SELECT i.id, i.n, true, l.lifetime_days FROM new_lot_ids i JOIN new_lots l USING (id)",
    )
    return fields, lot_fields, sql


def flush_postgresql(journal: Journal) -> None:
    """``Journal.flush``'s writes in one statement (``FLUSH_SQL``); the entries get their ids."""
    new_lots = journal._new_lots
    lifetime_of = journal._new_lots_lifetime
    fields, new_lot_fields, sql = _entry_columns(bool(new_lots), lifetime_of is not None)
    database = default_database()
    parameters: list = []
    if new_lots:
        parameters.append(len(new_lots))
        if lifetime_of is not None:  # LIFETIME_DAYS_SQL's, in the insert's select list before its arrays
            parameters += [lifetime_of[0].pk, lifetime_of[1], lifetime_of[0].default_lifetime_days]
        parameters += [
            [field.get_db_prep_save(getattr(lot, field.attname), database) for lot in new_lots]
            for field in new_lot_fields
        ]
    parameters += [
        [field.get_db_prep_save(getattr(entry, field.attname), database) for entry in journal.entries]
        for field in fields
    ]
    allocations = journal._allocations
    parameters += [
        [entry.operation_seq for entry, _lot, _r, _h in allocations],
        [lot.pk for _e, lot, _r, _h in allocations],
        [r for _e, _lot, r, _h in allocations],
        [h for _e, _lot, _r, h in allocations],
    ]
    if new_lots:
        places = {id(lot): place for place, lot in enumerate(new_lots, start=1)}
        parameters.append([places.get(id(lot)) for _e, lot, _r, _h in allocations])
    lots = list(journal._changed_lots.values())
    lot_fields = [Lot._meta.get_field(name) for name in LOT_FIELDS]
    parameters.append([lot.pk for lot in lots])
    parameters += [
        [field.get_db_prep_save(getattr(lot, field.attname), database) for lot in lots] for field in lot_fields
    ]
    account = journal.account
    parameters += [account.available, account.pending, account.held, account.debt, journal.now, account.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        rows = cursor.fetchall()
    ids = {seq: pk for pk, seq, is_lot, _days in rows if not is_lot}
    new_lot_rows = {place: (pk, days) for pk, place, is_lot, days in rows if is_lot}
    for entry in journal.entries:
        entry.pk = ids[entry.operation_seq]
        entry._state.adding = False
        entry._state.db = connection.alias
    for place, lot in enumerate(new_lots, start=1):
        lot.pk, days = new_lot_rows[place]
        if lifetime_of is not None:
            lot.lifetime_days = days
        lot._state.adding = False
        lot._state.db = connection.alias


LOT_FIELDS = ("remaining", "held", "state", "expires_at", "restriction", "moved_to")
LOTS_PER_UPDATE = 5000  # 7 parameters a lot, well inside PostgreSQL's 65,535 per statement

LOTS_UPDATE_SQL = """
UPDATE points_lot AS lot
SET remaining = v.remaining, held = v.held, state = v.state, expires_at = v.expires_at, restriction = v.restriction,
    moved_to_id = v.moved_to_id
FROM (VALUES {rows}) AS v (id, remaining, held, state, expires_at, restriction, moved_to_id)
WHERE lot.id = v.id
"""
LOTS_UPDATE_ROW = "(%s::bigint, %s::numeric, %s::numeric, %s::varchar, %s::timestamptz, %s::varchar, %s::bigint)"


def lots_update(lots: list[Lot]) -> None:
    """``Lot.objects.bulk_update(lots, LOT_FIELDS)`` as one plain statement on PostgreSQL.

    Same rows, same values (each prepared by its field, as ``bulk_update`` does); but ``bulk_update`` builds a
    CASE/WHEN expression per lot and field, and for the two or three lots of a redemption that took longer
    in Python than all of the operation's SQL (docs/performance.md).
    """
    if connection.vendor != "postgresql":
        Lot.objects.bulk_update(lots, LOT_FIELDS)
        return
    fields = [Lot._meta.get_field(name) for name in LOT_FIELDS]
    database = default_database()
    with connection.cursor() as cursor:
        for start in range(0, len(lots), LOTS_PER_UPDATE):
            batch = lots[start : start + LOTS_PER_UPDATE]
            parameters = []
            for lot in batch:
                parameters.append(lot.pk)
                parameters.extend(field.get_db_prep_save(getattr(lot, field.attname), database) for field in fields)
            cursor.execute(LOTS_UPDATE_SQL.format(rows=", ".join([LOTS_UPDATE_ROW] * len(batch))), parameters)
