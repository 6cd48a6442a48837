"""Property-based proof of the ledger: random sequences of every operation, checked after each step against
the ledger's own invariants and against a plain-Python model of every lot, hold and account.

The machine drives three accounts (a member's retail and B2B accounts, a non-member's retail account)
through accruals (active, pending by event or by date; lifetimes of 30, 90, 365 days or none; spend
restrictions), unlocks, cancellations, clawbacks (whole or partial, by lot or by order line across
accounts), holds, commits (whole or partial), releases, redemptions, refunds (whole or partial),
adjustments, the expiry, unlock and hold-timeout jobs, and a simulated clock passed as ``now=`` to every
service — including exactly to the next expiry or hold timeout.

- Operations that must fail (not enough points, a closed or timed-out hold, nothing left to refund, a lot
  that is not pending, a bad amount, a key used for another operation) fail and change nothing.
- A replayed operation key answers with the first result's entries and changes nothing.
- After every step: ``points_reconcile`` is clean (cached buckets = sum of lots = sum of the journal, every
  allocation sums to its entry); every lot's remaining/held/state/expiry and every account's buckets equal
  the model's; no spend ever took points from a lot at or after its expiry.
- ``probe_spendable``: exactly the model's spendable amount can be redeemed, and not a cent more.

Each example runs in a savepoint rolled back at its end. ``pytest --slow`` runs ten times as many examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from customers.models import Customer
from customers.tests.factories import CustomerFactory
from points.exceptions import (
    HoldNotOpen,
    InsufficientPoints,
    InvalidAmount,
    LotNotPending,
    NothingToRefund,
    OperationKeyConflict,
    RefundExceedsRedemption,
)
from points.models import Account, BalanceType, Entry, Lot, LotLifetime
from points.services import (
    Actor,
    PointsOperation,
    points_accrue,
    points_adjust,
    points_cancel_accrual,
    points_clawback,
    points_expire_due,
    points_hold,
    points_hold_commit,
    points_hold_release,
    points_holds_release_expired,
    points_reconcile,
    points_redeem,
    points_refund,
    points_unlock,
    points_unlock_due,
)
from points.services.lifetimes import expiry_from  # lifetimes end with the business day
from points.tests.helpers import D, buckets

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
START = datetime(2026, 1, 1, 21, 0, tzinfo=UTC)
PENDING, ACTIVE, SPENT, EXPIRED, CANCELLED, _MOVED = Lot.State.values

# Accounts the machine works on: (customer index, balance type). Customer 0 is a member, 1 is not (yet).
SLOTS = [(0, "retail"), (0, "b2b"), (1, "retail")]
# Lifetimes set up for every example: retail 365 days (welcome 90), b2b 30 days (welcome 90, promo forever).
LIFETIMES = {("retail", "welcome"): 90, ("b2b", "welcome"): 90, ("b2b", "promo"): None}
DEFAULT_LIFETIME = {"retail": 365, "b2b": 30}
SOURCES = ["order:1", "order:2", "order:3"]
STEPS = [timedelta(minutes=m) for m in (1, 14, 31)] + [timedelta(days=d) for d in (1, 29, 31, 89, 91, 200, 366)]

slots = st.sampled_from(range(len(SLOTS)))
amounts = st.one_of(
    st.sampled_from([1, 5, 10, 25, 50, 100, 250]).map(Decimal),
    st.integers(min_value=1, max_value=30_000).map(lambda cents: (Decimal(cents) / 100).quantize(CENT)),
)
# A share of some total: None = all of it, 101 = one cent too many, else that percentage.
shares = st.one_of(st.none(), st.integers(min_value=1, max_value=101))
# What to spend: a share of what is spendable (so that spending mostly succeeds), or any amount.
spends = st.one_of(
    st.tuples(st.just("share"), st.integers(min_value=1, max_value=101)), st.tuples(st.just("points"), amounts)
)
_keys = count(1)


def key() -> str:
    return f"prop:{next(_keys)}"


def share_of(total: Decimal, percent: int | None) -> Decimal | None:
    if percent is None:
        return None
    if percent > 100:
        return total + CENT
    return max(CENT, (total * percent / 100).quantize(CENT, rounding="ROUND_DOWN"))


def expiry_order(lot: ModelLot) -> tuple:
    return (lot.expires_at is None, lot.expires_at or START, lot.pk)


@dataclass
class ModelLot:
    pk: int
    slot: int
    amount: Decimal
    remaining: Decimal
    state: str
    expires_at: datetime | None
    lifetime_days: int | None
    restriction: str
    source: str
    available_from: datetime | None
    held: Decimal = ZERO
    gone: Decimal = ZERO  # expired or cancelled: no longer the customer's, so not clawed back
    clawed: Decimal = ZERO

    def settle_state(self) -> None:
        """Active ↔ spent follows whether anything is left (remaining or held)."""
        if self.state in (ACTIVE, SPENT):
            self.state = SPENT if self.remaining == 0 and self.held == 0 else ACTIVE

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class ModelHold:
    pk: int
    slot: int
    amount: Decimal
    expires_at: datetime
    parts: dict[int, Decimal]  # lot pk → points still reserved in it
    state: str = "open"


@dataclass
class ModelRedemption:
    entry_id: int
    consumed: list[tuple[int, Decimal]]  # in the order the lots were consumed
    refunded: dict[int, Decimal] = field(default_factory=dict)

    def refundable(self) -> dict[int, Decimal]:
        return {pk: part - self.refunded.get(pk, ZERO) for pk, part in self.consumed}


@dataclass(frozen=True)
class Done:
    """A successful operation, kept to be replayed under its key."""

    call: Callable[..., object]
    kwargs: dict
    entry_ids: frozenset[int]


def entry_ids(result: PointsOperation | list[PointsOperation]) -> frozenset[int]:
    operations = result if isinstance(result, list) else [result]
    return frozenset(entry.pk for operation in operations for entry in operation.entries)


SNAPSHOT_SQL = """
SELECT (SELECT string_agg(concat_ws(',', id, available, pending, held, debt), ';' ORDER BY id) FROM points_account),
       (SELECT string_agg(concat_ws(',', id, remaining, held, state, expires_at, restriction), ';' ORDER BY id)
        FROM points_lot),
       (SELECT string_agg(concat_ws(',', id, state, closed_at), ';' ORDER BY id) FROM points_hold),
       (SELECT count(*) FROM points_entry),
       (SELECT count(*) FROM points_allocation)
"""
LOTS_SQL = "SELECT id, remaining, held, state, expires_at FROM points_lot"
ACCOUNTS_SQL = """
SELECT account.customer_id, type.code, account.available, account.pending, account.held, account.debt
FROM points_account account JOIN points_balancetype type ON type.id = account.balance_type_id
"""
HOLDS_SQL = "SELECT id, state FROM points_hold"
# A spend (not a commit of points held before expiry) of a lot at or after its expiry.
SPENT_AFTER_EXPIRY_SQL = """
SELECT allocation.id, entry.kind, entry.created_at, lot.expires_at
FROM points_allocation allocation
JOIN points_entry entry ON entry.id = allocation.entry_id
JOIN points_lot lot ON lot.id = allocation.lot_id
WHERE entry.kind IN ('redeem', 'hold', 'settle', 'adjust') AND allocation.remaining_delta < 0
  AND lot.expires_at IS NOT NULL AND entry.created_at >= lot.expires_at
"""


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now = START
        self.customers = [
            CustomerFactory(membership=Customer.Membership.MEMBER, joined_at=START - timedelta(days=400)),
            CustomerFactory(membership=Customer.Membership.NON_MEMBER, joined_at=None),
        ]
        self.staff = Actor(user=get_user_model().objects.create(username=f"auditor{next(_keys)}", is_staff=True))
        b2b = BalanceType.objects.get(code="b2b")
        BalanceType.objects.filter(pk=b2b.pk).update(default_lifetime_days=DEFAULT_LIFETIME["b2b"])
        LotLifetime.objects.update_or_create(balance_type=b2b, kind="promo", defaults={"lifetime_days": None})
        self.lots: dict[int, ModelLot] = {}
        self.debt = [ZERO] * len(SLOTS)
        self.holds: dict[int, ModelHold] = {}
        self.redemptions: dict[int, ModelRedemption] = {}
        self.done: list[Done] = []
        self.grace = timedelta(days=django_settings.POINTS_REFUND_GRACE_DAYS)
        self.dirty = True  # the database changed since the invariants last looked

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- the model ---------------------------------------------------------------------------------

    def customer(self, slot: int) -> Customer:
        return self.customers[SLOTS[slot][0]]

    def balance_type(self, slot: int) -> str:
        return SLOTS[slot][1]

    def lifetime(self, slot: int, kind: str) -> int | None:
        balance_type = self.balance_type(slot)
        return LIFETIMES.get((balance_type, kind), DEFAULT_LIFETIME[balance_type])

    def spendable(self, slot: int, *, first_order: bool = False, ignore_restrictions: bool = False) -> list[ModelLot]:
        refused = set()
        if not ignore_restrictions:
            if not self.customer(slot).is_member:
                refused.add(Lot.Restriction.MEMBERS_ONLY)
            if not first_order:
                refused.add(Lot.Restriction.FIRST_ORDER)
        lots = [
            lot
            for lot in self.lots.values()
            if lot.slot == slot
            and lot.state == ACTIVE
            and lot.remaining > 0
            and not lot.is_expired(self.now)
            and lot.restriction not in refused
        ]
        return sorted(lots, key=expiry_order)

    @staticmethod
    def spend_amount(spend: tuple[str, int | Decimal], lots: list[ModelLot]) -> Decimal:
        how, value = spend
        total = sum((lot.remaining for lot in lots), ZERO)
        if how == "share":
            return share_of(total, value) if total > 0 else Decimal(value)
        return value

    @staticmethod
    def take(lots: list[ModelLot], amount: Decimal) -> list[tuple[ModelLot, Decimal]] | None:
        """Soonest-expiring first; None if the lots do not cover ``amount``."""
        taken, left = [], amount
        for lot in lots:
            if left == 0:
                break
            part = min(lot.remaining, left)
            taken.append((lot, part))
            left -= part
        return None if left > 0 else taken

    def settle_debt_from(self, lot: ModelLot) -> None:
        """Debt is paid first from points that become available — never from expired ones."""
        if lot.state != ACTIVE or lot.is_expired(self.now):
            return
        settled = min(self.debt[lot.slot], lot.remaining)
        lot.remaining -= settled
        self.debt[lot.slot] -= settled
        lot.settle_state()

    def release(self, hold: ModelHold, parts: list[tuple[ModelLot, Decimal]]) -> None:
        """Held points go back to their lots; those of lots that expired meanwhile expire now."""
        for lot, held in parts:
            lot.held -= held
            lot.remaining += held
            hold.parts[lot.pk] -= held
            lot.settle_state()
        for lot, held in parts:
            if lot.state == EXPIRED:
                lot.remaining -= held
                lot.gone += held

    def held_lots(self, hold: ModelHold) -> list[tuple[ModelLot, Decimal]]:
        lots = sorted((self.lots[pk] for pk, held in hold.parts.items() if held > 0), key=expiry_order)
        return [(lot, hold.parts[lot.pk]) for lot in lots]

    def buckets(self, slot: int) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        lots = [lot for lot in self.lots.values() if lot.slot == slot]
        return (
            sum((lot.remaining for lot in lots if lot.state == ACTIVE), ZERO),
            sum((lot.remaining for lot in lots if lot.state == PENDING), ZERO),
            sum((lot.held for lot in lots), ZERO),
            self.debt[slot],
        )

    def selection(self, lot_ids: list[int] | None, source: str) -> list[ModelLot]:
        if lot_ids is not None:
            return [self.lots[pk] for pk in sorted(lot_ids)]
        return sorted((lot for lot in self.lots.values() if lot.source == source), key=lambda lot: lot.pk)

    # --- running services ----------------------------------------------------------------------------

    def snapshot(self) -> tuple:
        """Every account bucket, lot and hold, and the journal's size (it is append-only): one round trip."""
        with connection.cursor() as cursor:
            cursor.execute(SNAPSHOT_SQL)
            return cursor.fetchone()

    def refused(self, error: type[Exception], call: Callable[[], object]) -> None:
        """The call fails with ``error`` and changes nothing."""
        before = self.snapshot()
        with pytest.raises(error):
            call()
        assert self.snapshot() == before

    def succeeded(self, call: Callable[..., object], **kwargs) -> object:
        result = call(**kwargs)
        self.dirty = True
        operations = result if isinstance(result, list) else [result]
        assert not any(operation.replayed for operation in operations)
        if any(operation.entries for operation in operations):
            self.done.append(Done(call, kwargs, entry_ids(result)))
        return result

    # --- rules: accruals -----------------------------------------------------------------------------

    @initialize(opening=st.lists(st.tuples(slots, amounts, st.sampled_from(["", *SOURCES])), min_size=1, max_size=4))
    def opening_balances(self, opening):
        for slot, amount, source in opening:
            self.accrue(slot, amount, "purchase", "active", 1, None, "", source)

    @rule(
        slot=slots,
        amount=amounts,
        kind=st.sampled_from(["purchase", "welcome", "promo"]),
        mode=st.sampled_from(["active", "active", "pending_event", "pending_date", "implicit_date", "past_date"]),
        date_days=st.integers(min_value=1, max_value=60),
        explicit_days=st.one_of(st.none(), st.none(), st.integers(min_value=1, max_value=400)),
        restriction=st.sampled_from(["", "", "", "first_order", "members_only"]),
        source=st.sampled_from(["", *SOURCES]),
    )
    def accrue(self, slot, amount, kind, mode, date_days, explicit_days, restriction, source):
        available_from = {
            "pending_date": self.now + timedelta(days=date_days),
            "implicit_date": self.now + timedelta(days=date_days),
            "past_date": self.now - timedelta(days=date_days),
        }.get(mode)
        expires_at = None if explicit_days is None else self.now + timedelta(days=explicit_days)
        operation = self.succeeded(
            points_accrue,
            customer=self.customer(slot),
            amount=amount,
            kind=kind,
            operation_key=key(),
            balance_type=self.balance_type(slot),
            pending=mode in ("pending_event", "pending_date"),
            available_from=available_from,
            expires_at=expires_at,
            restriction=restriction,
            source_type="order_line" if source else "",
            source_id=source,
            now=self.now,
        )
        pending = mode in ("pending_event", "pending_date", "implicit_date")
        days = self.lifetime(slot, kind)
        lot = ModelLot(
            pk=operation.lot.pk,
            slot=slot,
            amount=amount,
            remaining=amount,
            state=PENDING if pending else ACTIVE,
            expires_at=expires_at if expires_at or pending else expiry_from(self.now, days),
            lifetime_days=days,
            restriction=restriction or ("" if self.customer(slot).is_member else Lot.Restriction.MEMBERS_ONLY),
            source=source,
            available_from=available_from if pending else None,
        )
        self.lots[lot.pk] = lot
        self.settle_debt_from(lot)

    @rule(slot=slots, amount=amounts, negative=st.booleans(), spend=spends)
    def adjust(self, slot, amount, negative, spend):
        spendable = self.spendable(slot, ignore_restrictions=True)
        if negative:
            amount = self.spend_amount(spend, spendable)
        call = {
            "customer": self.customer(slot),
            "amount": -amount if negative else amount,
            "operation_key": key(),
            "actor": self.staff,
            "reason": "property test",
            "balance_type": self.balance_type(slot),
            "now": self.now,
        }
        if not negative:
            operation = self.succeeded(points_adjust, **call)
            days = self.lifetime(slot, "manual")
            lot = ModelLot(
                pk=operation.lot.pk,
                slot=slot,
                amount=amount,
                remaining=amount,
                state=ACTIVE,
                expires_at=expiry_from(self.now, days),
                lifetime_days=None,
                restriction="",
                source="",
                available_from=None,
            )
            self.lots[lot.pk] = lot
            self.settle_debt_from(lot)
            return
        taken = self.take(spendable, amount)
        if taken is None:
            self.refused(InsufficientPoints, lambda: points_adjust(**call))
            return
        self.succeeded(points_adjust, **call)
        for lot, part in taken:
            lot.remaining -= part
            lot.settle_state()

    def pick_selection(self, data) -> tuple[list[int] | None, str]:
        if self.lots and data.draw(st.booleans(), label="by lot"):
            return sorted(data.draw(st.sets(st.sampled_from(sorted(self.lots)), min_size=1, max_size=3))), ""
        return None, data.draw(st.sampled_from(SOURCES), label="source")

    @rule(data=st.data())
    def unlock(self, data):
        lot_ids, source = self.pick_selection(data)
        lots = self.selection(lot_ids, source)
        call = {"operation_key": key(), "lot_ids": lot_ids, "now": self.now}
        if lot_ids is None:
            call.update(source_type="order_line", source_id=source)
        if any(lot.state == CANCELLED for lot in lots):
            self.refused(LotNotPending, lambda: points_unlock(**call))
            return
        self.succeeded(points_unlock, **call)
        self.unlock_lots(lots)

    def unlock_lots(self, lots: list[ModelLot]) -> None:
        pending = [lot for lot in lots if lot.state == PENDING]
        for lot in pending:
            lot.state = ACTIVE
            if lot.expires_at is None and lot.lifetime_days is not None:
                lot.expires_at = expiry_from(self.now, lot.lifetime_days)
        for lot in pending:
            self.settle_debt_from(lot)

    def unlock_due(self) -> None:
        due = sorted(
            (lot for lot in self.lots.values() if lot.state == PENDING and lot.available_from is not None),
            key=lambda lot: lot.pk,
        )
        due = [lot for lot in due if lot.available_from <= self.now]
        assert points_unlock_due(now=self.now) == len(due)
        for lot in due:
            self.unlock_lots([lot])

    @rule(data=st.data())
    def cancel(self, data):
        lot_ids, source = self.pick_selection(data)
        lots = self.selection(lot_ids, source)
        call = {"operation_key": key(), "lot_ids": lot_ids, "now": self.now}
        if lot_ids is None:
            call.update(source_type="order_line", source_id=source)
        if any(lot.state not in (PENDING, CANCELLED) for lot in lots):
            self.refused(LotNotPending, lambda: points_cancel_accrual(**call))
            return
        self.succeeded(points_cancel_accrual, **call)
        for lot in lots:
            if lot.state == PENDING:
                lot.gone += lot.remaining
                lot.remaining = ZERO
                lot.state = CANCELLED

    @rule(data=st.data(), percent=shares)
    def clawback(self, data, percent):
        lot_ids, source = self.pick_selection(data)
        amount = None
        if lot_ids is not None and len(lot_ids) == 1:
            amount = share_of(self.lots[lot_ids[0]].amount, percent)
        lots = self.selection(lot_ids, source)
        call = {"operation_key": key(), "lot_ids": lot_ids, "amount": amount, "now": self.now}
        if lot_ids is None:
            call.update(source_type="order_line", source_id=source)
        settled = [lot for lot in lots if lot.state in (ACTIVE, SPENT, EXPIRED)]
        outstanding = {lot.pk: max(lot.amount - lot.gone - lot.clawed, ZERO) for lot in settled}
        if amount is not None and any(amount > outstanding[lot.pk] for lot in settled):
            self.refused(InvalidAmount, lambda: points_clawback(**call))
            return
        self.succeeded(points_clawback, **call)
        for lot in lots:
            if lot.state == PENDING:
                lot.gone += lot.remaining
                lot.remaining = ZERO
                lot.state = CANCELLED
        for lot in settled:
            wanted = outstanding[lot.pk] if amount is None else amount
            taken = min(lot.remaining, wanted)
            lot.remaining -= taken
            lot.clawed += wanted
            self.debt[lot.slot] += wanted - taken
            lot.settle_state()

    # --- rules: spending -----------------------------------------------------------------------------

    @rule(slot=slots, spend=spends, first_order=st.booleans())
    def redeem(self, slot, spend, first_order):
        spendable = self.spendable(slot, first_order=first_order)
        amount = self.spend_amount(spend, spendable)
        call = {
            "customer": self.customer(slot),
            "amount": amount,
            "operation_key": key(),
            "balance_type": self.balance_type(slot),
            "first_order": first_order,
            "now": self.now,
        }
        taken = self.take(spendable, amount)
        if taken is None:
            self.refused(InsufficientPoints, lambda: points_redeem(**call))
            return
        operation = self.succeeded(points_redeem, **call)
        assert operation.allocations == {lot.pk: part for lot, part in taken}
        for lot, part in taken:
            lot.remaining -= part
            lot.settle_state()
        redemption = operation.entries[0].pk
        self.redemptions[redemption] = ModelRedemption(redemption, [(lot.pk, part) for lot, part in taken])

    @rule(slot=slots, spend=spends, first_order=st.booleans(), minutes=st.sampled_from([None, 1, 15, 60, 7 * 24 * 60]))
    def hold(self, slot, spend, first_order, minutes):
        spendable = self.spendable(slot, first_order=first_order)
        amount = self.spend_amount(spend, spendable)
        call = {
            "customer": self.customer(slot),
            "amount": amount,
            "operation_key": key(),
            "balance_type": self.balance_type(slot),
            "first_order": first_order,
            "timeout": minutes and timedelta(minutes=minutes),
            "now": self.now,
        }
        taken = self.take(spendable, amount)
        if taken is None:
            self.refused(InsufficientPoints, lambda: points_hold(**call))
            return
        operation = self.succeeded(points_hold, **call)
        for lot, part in taken:
            lot.remaining -= part
            lot.held += part
        timeout = timedelta(minutes=minutes or django_settings.POINTS_HOLD_TIMEOUT_MINUTES)
        self.holds[operation.hold.pk] = ModelHold(
            operation.hold.pk, slot, amount, self.now + timeout, {lot.pk: part for lot, part in taken}
        )

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), percent=shares)
    def commit(self, data, percent):
        hold = data.draw(st.sampled_from(list(self.holds.values())))
        amount = share_of(hold.amount, percent)
        call = {"hold_id": hold.pk, "amount": amount, "operation_key": key(), "now": self.now}
        # A hold past its timeout is as good as released, whether or not the job has run.
        if hold.state != "open" or hold.expires_at <= self.now:
            self.refused(HoldNotOpen, lambda: points_hold_commit(**call))
            return
        if amount is not None and amount > hold.amount:
            self.refused(InvalidAmount, lambda: points_hold_commit(**call))
            return
        operation = self.succeeded(points_hold_commit, **call)
        spent, rest, left = [], [], hold.amount if amount is None else amount
        for lot, held in self.held_lots(hold):
            part = min(held, left)
            left -= part
            if part > 0:
                spent.append((lot, part))
            if held > part:
                rest.append((lot, held - part))
        for lot, part in spent:
            lot.held -= part
            hold.parts[lot.pk] -= part
            lot.settle_state()
        self.release(hold, rest)
        hold.state = "committed"
        redemption = operation.entries[0].pk
        self.redemptions[redemption] = ModelRedemption(redemption, [(lot.pk, part) for lot, part in spent])

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release_hold(self, data):
        hold = data.draw(st.sampled_from(list(self.holds.values())))
        call = {"hold_id": hold.pk, "operation_key": key(), "now": self.now}
        if hold.state != "open":
            self.refused(HoldNotOpen, lambda: points_hold_release(**call))
            return
        self.succeeded(points_hold_release, **call)
        self.release(hold, self.held_lots(hold))
        hold.state = "released"

    def release_timed_out_holds(self) -> None:
        due = [hold for pk, hold in sorted(self.holds.items()) if hold.state == "open" and hold.expires_at <= self.now]
        assert points_holds_release_expired(now=self.now) == len(due)
        for hold in due:
            self.release(hold, self.held_lots(hold))
            hold.state = "released"

    @precondition(lambda self: self.redemptions)
    @rule(data=st.data(), percent=shares)
    def refund(self, data, percent):
        redemption = data.draw(st.sampled_from(list(self.redemptions.values())))
        refundable = redemption.refundable()
        total = sum(refundable.values(), ZERO)
        amount = share_of(total, percent) if total > 0 else share_of(Decimal(10), percent)
        call = {"redemption_id": redemption.entry_id, "amount": amount, "operation_key": key(), "now": self.now}
        if total == 0:
            self.refused(NothingToRefund, lambda: points_refund(**call))
            return
        if amount is not None and amount > total:
            self.refused(RefundExceedsRedemption, lambda: points_refund(**call))
            return
        self.succeeded(points_refund, **call)
        left = total if amount is None else amount
        for pk in reversed(list(refundable)):
            part = min(refundable[pk], left)
            if part == 0:
                continue
            lot = self.lots[pk]
            if lot.state == EXPIRED or lot.is_expired(self.now):
                # What expired with the lot stays expired; only the refunded points come back, with a grace.
                lot.gone += lot.remaining
                lot.remaining = ZERO
                lot.state = ACTIVE
                lot.expires_at = max(lot.expires_at, self.now + self.grace)
            lot.remaining += part
            lot.settle_state()
            redemption.refunded[pk] = redemption.refunded.get(pk, ZERO) + part
            left -= part

    # --- rules: time and jobs ------------------------------------------------------------------------

    @rule(job=st.sampled_from(["expire", "unlock", "release holds"]), chunk_size=st.sampled_from([1, 2, 1000]))
    def run_job(self, job, chunk_size):
        self.dirty = True
        if job == "expire":
            self.expire_due(chunk_size)
        elif job == "unlock":
            self.unlock_due()
        else:
            self.release_timed_out_holds()

    def expire_due(self, chunk_size: int) -> None:
        due = [lot for lot in self.lots.values() if lot.state == ACTIVE and lot.is_expired(self.now)]
        result = points_expire_due(now=self.now, chunk_size=chunk_size)
        assert (result.lots, result.points) == (len(due), sum((lot.remaining for lot in due), ZERO))
        for lot in due:
            lot.gone += lot.remaining
            lot.remaining = ZERO
            lot.state = EXPIRED

    @rule(step=st.sampled_from([*STEPS, "to the next expiry", "to a hold's timeout", "to just before it"]))
    def advance_time(self, step):
        expiries = [lot.expires_at for lot in self.lots.values() if lot.expires_at and lot.expires_at > self.now]
        timeouts = [hold.expires_at for hold in self.holds.values() if hold.expires_at > self.now]
        if step == "to the next expiry":
            self.now = min(expiries, default=self.now)  # exactly the boundary second
        elif step == "to a hold's timeout":
            self.now = min(timeouts, default=self.now)
        elif step == "to just before it":
            self.now = max(self.now, min(timeouts, default=self.now) - timedelta(seconds=1))
        else:
            self.now += step

    @precondition(lambda self: not self.customers[1].is_member)
    @rule()
    def non_member_joins(self):
        customer = self.customers[1]
        customer.membership, customer.joined_at = Customer.Membership.MEMBER, self.now
        customer.save()

    # --- rules: keys, bad input, probes --------------------------------------------------------------

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def replay(self, data):
        done = data.draw(st.sampled_from(self.done))
        before = self.snapshot()

        result = done.call(**{**done.kwargs, "now": self.now})

        operations = result if isinstance(result, list) else [result]
        assert all(operation.replayed for operation in operations)
        assert entry_ids(result) == done.entry_ids
        assert self.snapshot() == before

    @rule(slot=slots, bad=st.sampled_from(["0", "-5", "1.001", "NaN", "Infinity", "abc", "a used key"]), data=st.data())
    def bad_request(self, slot, bad, data):
        """A malformed amount, or an operation key already used for another operation: refused, nothing changes."""
        customer, balance_type = self.customer(slot), self.balance_type(slot)
        if bad == "a used key":
            if self.done:
                used = data.draw(st.sampled_from(self.done)).kwargs["operation_key"]
                self.refused(
                    OperationKeyConflict,
                    lambda: points_accrue(
                        customer=customer, amount=1, kind="apology", operation_key=used, now=self.now
                    ),
                )
            return
        calls = {
            "accrue": lambda: points_accrue(
                customer=customer, amount=bad, kind="purchase", operation_key=key(), balance_type=balance_type
            ),
            "redeem": lambda: points_redeem(
                customer=customer, amount=bad, operation_key=key(), balance_type=balance_type, now=self.now
            ),
            "hold": lambda: points_hold(
                customer=customer, amount=bad, operation_key=key(), balance_type=balance_type, now=self.now
            ),
        }
        if bad != "-5":  # a negative adjustment is a removal
            calls["adjust"] = lambda: points_adjust(
                customer=customer, amount=bad, operation_key=key(), actor=self.staff, reason="x", now=self.now
            )
        self.refused(InvalidAmount, calls[data.draw(st.sampled_from(sorted(calls)))])

    @rule(slot=slots, first_order=st.booleans())
    def probe_spendable(self, slot, first_order):
        """Exactly the model's spendable amount can be redeemed, and not a cent more."""
        expected = sum((lot.remaining for lot in self.spendable(slot, first_order=first_order)), ZERO)
        call = {
            "customer": self.customer(slot),
            "balance_type": self.balance_type(slot),
            "first_order": first_order,
            "now": self.now,
        }
        before = self.snapshot()
        with pytest.raises(InsufficientPoints) as refused:
            points_redeem(amount=expected + CENT, operation_key=key(), **call)
        assert refused.value.extra["spendable"] == str(expected)
        if expected > 0:
            with transaction.atomic():
                points_redeem(amount=expected, operation_key=key(), **call)
                transaction.set_rollback(True)
        assert self.snapshot() == before

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def ledger_is_consistent_and_matches_the_model(self):
        # Only the database is checked, and a step that changed nothing in it (a refused operation, a replay,
        # a probe — each proved unchanged by its snapshot — or the clock) cannot change the answers.
        if not self.dirty:
            return
        self.dirty = False
        problems = points_reconcile()
        assert problems == [], problems
        with connection.cursor() as cursor:
            cursor.execute(LOTS_SQL)
            stored_lots = {pk: tuple(row) for pk, *row in cursor.fetchall()}
            cursor.execute(ACCOUNTS_SQL)
            stored_accounts = {(customer, code): tuple(row) for customer, code, *row in cursor.fetchall()}
            cursor.execute(HOLDS_SQL)
            stored_holds = dict(cursor.fetchall())
            cursor.execute(SPENT_AFTER_EXPIRY_SQL)
            spent_after_expiry = cursor.fetchall()
        assert all(remaining >= 0 and held >= 0 for remaining, held, *_ in stored_lots.values())
        assert stored_lots == {
            lot.pk: (lot.remaining, lot.held, lot.state, lot.expires_at) for lot in self.lots.values()
        }
        for slot, (customer, code) in enumerate(SLOTS):
            stored = stored_accounts.get((self.customers[customer].pk, code), (ZERO, ZERO, ZERO, ZERO))
            assert stored == self.buckets(slot), SLOTS[slot]
        assert stored_holds == {hold.pk: hold.state for hold in self.holds.values()}
        assert spent_after_expiry == []


@pytest.mark.django_db
@pytest.mark.parametrize("sql_functions", [True, False], ids=["sql_functions", "python"])
def test_ledger_stays_consistent_under_random_operations(request, sql_functions):
    # Redemptions, holds and commits have two versions: PL/pgSQL functions (PostgreSQL's default) and Python
    # (SQLite's, or POINTS_LEDGER_SQL_FUNCTIONS = False). The model holds both to the same results.
    slow = request.config.getoption("--slow")
    request.getfixturevalue("settings").POINTS_LEDGER_SQL_FUNCTIONS = sql_functions  # pytest-django's, restored after
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=(2000 if slow else 200) // (1 if sql_functions else 2),
            stateful_step_count=50 if slow else 30,
            derandomize=not slow,  # CI runs the same examples every time; --slow explores new ones
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        ),
    )


# --- What the machine found, pinned as plain examples --------------------------------------------------


def _accrue(customer, amount, **kwargs):
    arguments = {"kind": "purchase", "operation_key": key(), "now": START} | kwargs
    return points_accrue(customer=customer, amount=amount, **arguments)


@pytest.mark.django_db
def test_an_accrual_retried_after_its_unlock_date_passed_replays_instead_of_conflicting(customer):
    arguments = {
        "amount": 100,
        "kind": "purchase",
        "operation_key": "erp:7",
        "available_from": START + timedelta(days=14),
    }
    first = points_accrue(customer=customer, now=START, **arguments)

    again = points_accrue(customer=customer, now=START + timedelta(days=15), **arguments)

    assert (again.replayed, again.lot.pk) == (True, first.lot.pk)
    assert buckets(customer) == (D(0), D(100), D(0), D(0))


@pytest.mark.django_db
def test_an_accrual_retried_after_the_customer_joined_replays_instead_of_conflicting():
    customer = CustomerFactory(membership=Customer.Membership.NON_MEMBER, joined_at=None)
    first = points_accrue(customer=customer, amount=100, kind="purchase", operation_key="erp:8", now=START)
    customer.membership, customer.joined_at = Customer.Membership.MEMBER, START
    customer.save()

    again = points_accrue(customer=customer, amount=100, kind="purchase", operation_key="erp:8", now=START)

    assert (again.replayed, again.lot.pk) == (True, first.lot.pk)
    assert Lot.objects.get().restriction == Lot.Restriction.MEMBERS_ONLY
    assert buckets(customer) == (D(100), D(0), D(0), D(0))


@pytest.mark.django_db
def test_an_adjustment_by_a_non_number_is_an_invalid_amount(customer, admin_user):
    with pytest.raises(InvalidAmount):
        points_adjust(customer=customer, amount="abc", operation_key=key(), actor=Actor(user=admin_user), reason="x")

    assert not Account.objects.exists()


@pytest.mark.django_db
def test_a_hold_past_its_timeout_cannot_be_committed_though_the_release_job_has_not_run(customer):
    _accrue(customer, 100)
    hold = points_hold(customer=customer, amount=60, timeout=timedelta(minutes=15), operation_key=key(), now=START)
    timeout = START + timedelta(minutes=15)

    with pytest.raises(HoldNotOpen) as refused:
        points_hold_commit(hold_id=hold.hold.pk, operation_key=key(), now=timeout)

    assert refused.value.extra == {"state": "timed_out"}
    assert buckets(customer) == (D(40), D(0), D(60), D(0))
    assert points_holds_release_expired(now=timeout) == 1
    assert buckets(customer) == (D(100), D(0), D(0), D(0))


@pytest.mark.django_db
def test_a_hold_can_be_committed_up_to_the_second_before_its_timeout(customer):
    _accrue(customer, 100)
    hold = points_hold(customer=customer, amount=60, timeout=timedelta(minutes=15), operation_key=key(), now=START)

    points_hold_commit(hold_id=hold.hold.pk, operation_key=key(), now=START + timedelta(minutes=15, seconds=-1))

    assert buckets(customer) == (D(40), D(0), D(0), D(0))


@pytest.mark.django_db
@pytest.mark.parametrize("swept", [True, False], ids=["swept", "not-swept-yet"])
def test_a_refund_to_an_expired_lot_brings_back_only_the_refunded_points(customer, swept):
    # given a lot of 100 expiring at `expires`, 40 of it redeemed before
    expires = START + timedelta(days=10)
    lot = _accrue(customer, 100, expires_at=expires).lot
    redemption = points_redeem(customer=customer, amount=40, operation_key=key(), now=START).entries[0]
    later = expires + timedelta(days=1)
    if swept:
        points_expire_due(now=later)

    # when the redemption is refunded after the expiry, whether or not the job swept the lot
    points_refund(redemption_id=redemption.pk, operation_key=key(), now=later)
    points_expire_due(now=later)

    # then the 60 left in it stay expired and the refunded 40 live for the grace period
    lot.refresh_from_db()
    grace = timedelta(days=django_settings.POINTS_REFUND_GRACE_DAYS)
    assert (lot.state, lot.remaining, lot.expires_at) == (Lot.State.ACTIVE, D(40), later + grace)
    assert buckets(customer) == (D(40), D(0), D(0), D(0))
    assert Entry.objects.get(kind=Entry.Kind.EXPIRE).amount == D(60)
    assert points_reconcile() == []


@pytest.mark.django_db
def test_debt_is_not_paid_with_points_that_expired_before_they_were_unlocked(customer):
    # given a debt of 70 from a clawback
    returned = _accrue(customer, 100).lot
    points_redeem(customer=customer, amount=70, operation_key=key(), now=START)
    points_clawback(operation_key=key(), lot_ids=[returned.pk], now=START)
    # and pending points that expire on day 10
    pending = _accrue(customer, 50, pending=True, expires_at=START + timedelta(days=10)).lot

    # when they are unlocked on day 20, and the expiry job runs
    later = START + timedelta(days=20)
    points_unlock(operation_key=key(), lot_ids=[pending.pk], now=later)
    points_expire_due(now=later)

    # then the expired points paid nothing: they expired whole, the debt is still 70
    assert buckets(customer) == (D(0), D(0), D(0), D(70))
    assert Entry.objects.get(kind=Entry.Kind.EXPIRE).amount == D(50)
    assert points_reconcile() == []
