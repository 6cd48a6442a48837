"""The one place that writes journal rows: a unit of work over one locked account.

Services describe an operation as entries with per-lot allocations; ``Journal.flush`` applies the
deltas to the lots and the account already in memory (the caller holds the account lock, so they
are exact) and writes everything in a fixed number of statements.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder

from integrations.models import Channel
from points.exceptions import InvalidAmount, OperationKeyConflict, ReasonRequired
from points.models import ZERO, Account, Allocation, Entry, Hold, Lot

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Actor:
    """Who asked: a channel (API), a staff user (admin), or nobody (a scheduled job)."""

    channel: Channel | None = None
    user: AbstractBaseUser | None = None

    @property
    def is_known(self) -> bool:
        return self.channel is not None or self.user is not None


SYSTEM = Actor()


@dataclass
class PointsOperation:
    """What a ledger service did (or, on a repeated key, had done)."""

    operation_key: str
    entries: list[Entry]
    allocations: dict[int, Decimal] = field(default_factory=dict)  # lot id → points moved by the first entry
    lot: Lot | None = None
    hold: Hold | None = None
    replayed: bool = False

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


def fingerprint(**arguments: Any) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, cls=DjangoJSONEncoder).encode()).hexdigest()


def require_reason(actor: Actor, reason: str) -> None:
    if not actor.is_known or not reason.strip():
        raise ReasonRequired()


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
    allocations = {a.lot_id: abs(a.remaining_delta + a.held_delta) for a in first_allocations}
    creates_lot = first.kind == Entry.Kind.ACCRUE or (
        first.kind == Entry.Kind.ADJUST and first.debt_delta == 0 and first.available_delta > 0
    )
    created = first_allocations[0].lot if creates_lot and first_allocations else None
    return PointsOperation(key, entries, allocations, lot=created, hold=first.hold, replayed=True)


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
        """Debt (from clawbacks) is paid first from points that become available (F-LED-6)."""
        settled = min(self.account.debt, lot.remaining) if lot.state == Lot.State.ACTIVE else ZERO
        if settled > 0:
            self.entry(Entry.Kind.SETTLE, settled, available=-settled, debt=-settled, lots=[(lot, -settled, ZERO)])

    def touch(self, lot: Lot) -> None:
        """Persist a lot changed outside ``entry`` (state, expiry date)."""
        self._changed_lots[lot.pk] = lot

    def flush(self, **result: Any) -> PointsOperation:
        Entry.objects.bulk_create(self.entries)
        Allocation.objects.bulk_create(
            [Allocation(entry=e, lot=lot, remaining_delta=r, held_delta=h) for e, lot, r, h in self._allocations]
        )
        if self._changed_lots:
            Lot.objects.bulk_update(
                list(self._changed_lots.values()), ["remaining", "held", "state", "expires_at", "restriction"]
            )
        Account.objects.filter(pk=self.account.pk).update(
            available=self.account.available,
            pending=self.account.pending,
            held=self.account.held,
            debt=self.account.debt,
            updated_at=self.now,
        )
        first = [a for a in self._allocations if a[0] is self.entries[0]]
        allocations = {lot.pk: abs(r + h) for _, lot, r, h in first}
        return PointsOperation(self.key, self.entries, allocations, **result)
