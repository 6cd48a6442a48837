"""Races on the ledger with real threads on PostgreSQL: the row locks, not luck, keep the points right.

Each thread has its own database connection (closed when it ends) and all start together on a barrier.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.tests.factories import CustomerFactory
from points.exceptions import InsufficientPoints
from points.locks import account_lock
from points.models import Account, Allocation, Entry, Hold, Lot
from points.services import (
    PointsOperation,
    points_accrue,
    points_clawback,
    points_expire_due,
    points_hold,
    points_hold_commit,
    points_hold_release,
    points_redeem,
    points_refund,
    points_unlock,
)
from points.tests.helpers import D, account_of, assert_consistent, buckets, key
from points.tests.seeding import seed_accounts, seed_lots
from tests.helpers import run_together

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("the race tests need PostgreSQL: its row locks are what they prove")


def accrue(customer, amount, *, expires_at=None, **kwargs) -> PointsOperation:
    return points_accrue(
        customer=customer,
        amount=amount,
        kind="purchase",
        operation_key=key("accrue"),
        expires_at=expires_at or NOW + timedelta(days=365),
        now=NOW,
        **kwargs,
    )


def unexpected(outcomes: list[object], *allowed: type[Exception]) -> list[object]:
    return [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, allowed)]


def test_twenty_redemptions_of_ten_from_a_hundred_exactly_ten_succeed():
    customer = CustomerFactory()
    for days in (30, 10, 20, 40):
        accrue(customer, 25, expires_at=NOW + timedelta(days=days))

    outcomes = run_together(
        *[partial(points_redeem, customer=customer, amount=10, operation_key=f"redeem:{i}", now=NOW) for i in range(20)]
    )

    assert unexpected(outcomes, InsufficientPoints) == []
    assert sum(isinstance(o, PointsOperation) for o in outcomes) == 10
    assert [o.code for o in outcomes if isinstance(o, InsufficientPoints)] == ["insufficient_points"] * 10
    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM).count() == 10
    assert set(Lot.objects.values_list("state", flat=True)) == {Lot.State.SPENT}
    assert_consistent()


def _redeem(customer, operation_key):
    return points_redeem(customer=customer, amount=10, operation_key=operation_key, now=NOW)


def _accrue(customer, operation_key):
    return points_accrue(customer=customer, amount=10, kind="purchase", operation_key=operation_key, now=NOW)


def _hold(customer, operation_key):
    return points_hold(customer=customer, amount=10, operation_key=operation_key, now=NOW)


@pytest.mark.parametrize(
    ("operation", "after"),
    [
        (_redeem, (D(90), D(0), D(0), D(0))),
        (_accrue, (D(110), D(0), D(0), D(0))),
        (_hold, (D(90), D(0), D(10), D(0))),
    ],
)
def test_the_same_operation_key_ten_times_at_once_has_one_effect(operation, after):
    customer = CustomerFactory()
    accrue(customer, 100)

    outcomes = run_together(*[partial(operation, customer, "checkout:1042")] * 10)

    assert unexpected(outcomes) == []
    assert len({tuple(entry.pk for entry in o.entries) for o in outcomes}) == 1
    assert sorted(o.replayed for o in outcomes) == [False] + [True] * 9
    assert Entry.objects.filter(operation_key="checkout:1042").count() == 1
    assert buckets(customer) == after
    assert_consistent()


def _commit(customer, operation_key):
    return points_hold_commit(hold_id=Hold.objects.get().pk, amount=5, operation_key=operation_key, now=NOW)


def _release(customer, operation_key):
    return points_hold_release(hold_id=Hold.objects.get().pk, operation_key=operation_key, now=NOW)


def _refund(customer, operation_key):
    redemption = Entry.objects.get(kind=Entry.Kind.REDEEM, hold=None)
    return points_refund(redemption_id=redemption.pk, operation_key=operation_key, now=NOW)


def _partial_refund(customer, operation_key):
    redemption = Entry.objects.get(kind=Entry.Kind.REDEEM, hold=None)
    return points_refund(redemption_id=redemption.pk, amount=20, operation_key=operation_key, now=NOW)


@pytest.mark.parametrize(
    ("operation", "after"),
    [
        (_commit, (D(25), D(0), D(0), D(0))),
        (_release, (D(30), D(0), D(0), D(0))),
        (_refund, (D(80), D(0), D(10), D(0))),
        (_partial_refund, (D(40), D(0), D(10), D(0))),
    ],
)
def test_the_same_key_on_a_hold_or_redemption_ten_times_at_once_has_one_effect(operation, after):
    # given a redemption of 60 and a hold of 10: 20 left available
    customer = CustomerFactory()
    accrue(customer, 90)
    points_redeem(customer=customer, amount=60, operation_key=key(), now=NOW)
    points_hold(customer=customer, amount=10, operation_key=key(), now=NOW)

    outcomes = run_together(*[partial(operation, customer, "payment:1042")] * 10)

    # then one call did it and nine replayed it: not HoldNotOpen, NothingToRefund or a duplicate key
    assert unexpected(outcomes) == []
    assert sorted(o.replayed for o in outcomes) == [False] + [True] * 9
    assert len({tuple(entry.pk for entry in o.entries) for o in outcomes}) == 1
    assert buckets(customer) == after
    assert_consistent()


def test_two_expiry_runs_at_once_expire_every_lot_exactly_once():
    accounts = seed_accounts(accounts=200, now=NOW)
    seed_lots(accounts=accounts, lots_per_account=10, amount=D(5), expires_at=NOW - timedelta(days=1), now=NOW)

    outcomes = run_together(*[partial(points_expire_due, now=NOW, chunk_size=50)] * 2)

    assert unexpected(outcomes) == []
    assert outcomes[0].lots + outcomes[1].lots == 2000
    assert outcomes[0].points + outcomes[1].points == D(10_000)
    assert Entry.objects.filter(kind=Entry.Kind.EXPIRE).count() == 2000
    per_lot = Allocation.objects.filter(entry__kind=Entry.Kind.EXPIRE).values("lot").annotate(times=Count("pk"))
    assert {row["times"] for row in per_lot} == {1}
    assert per_lot.count() == 2000
    assert Lot.objects.exclude(state=Lot.State.EXPIRED).count() == 0
    assert Account.objects.exclude(available=0).count() == 0
    assert_consistent()


def test_a_redemption_racing_the_expiry_of_its_lot_either_spends_it_or_finds_it_expired():
    # given ten customers whose only lot expires at `expires`, each redeeming it all one second before
    expires = NOW + timedelta(days=1)
    customers = CustomerFactory.create_batch(10)
    lots = [accrue(customer, 100, expires_at=expires).lot for customer in customers]

    # when the expiry job runs at `expires` at the same moment
    outcomes = run_together(
        partial(points_expire_due, now=expires, chunk_size=3),
        *[
            partial(
                points_redeem, customer=c, amount=100, operation_key=f"r:{c.pk}", now=expires - timedelta(seconds=1)
            )
            for c in customers
        ],
    )

    # then every lot was either spent or expired, never both
    assert unexpected(outcomes, InsufficientPoints) == []
    for lot, outcome in zip(lots, outcomes[1:], strict=True):
        lot.refresh_from_db()
        kinds = sorted(Allocation.objects.filter(lot=lot).values_list("entry__kind", flat=True))
        if isinstance(outcome, PointsOperation):
            assert (lot.state, kinds) == (Lot.State.SPENT, ["accrue", "redeem"])
        else:
            assert (lot.state, kinds) == (Lot.State.EXPIRED, ["accrue", "expire"])
            assert Entry.objects.get(kind=Entry.Kind.EXPIRE, account_id=lot.account_id).amount == D(100)
    expired = sum(isinstance(o, InsufficientPoints) for o in outcomes[1:])
    assert outcomes[0].lots == expired
    assert Account.objects.exclude(available=0).count() == 0
    assert_consistent()


def test_multi_account_operations_beside_redemptions_and_expiry_never_deadlock():
    # given six customers; each order line's lots span all of them, created in a rotated account order so
    # that lot order and account order disagree
    customers = CustomerFactory.create_batch(6)
    due = NOW + timedelta(hours=1)
    for line in range(4):
        for customer in customers[line:] + customers[:line]:
            accrue(customer, 10, source_type="order_line", source_id=f"returned:{line}")
            accrue(customer, 10, source_type="order_line", source_id=f"shipped:{line}", pending=True)
    for customer in customers:
        accrue(customer, 50)
        for _ in range(3):
            accrue(customer, 5, expires_at=due)

    # when clawbacks and unlocks by source run beside redemptions on every account and two expiry jobs
    calls = []
    for line in range(4):
        calls.append(
            partial(
                points_clawback,
                operation_key=f"claw:{line}",
                source_type="order_line",
                source_id=f"returned:{line}",
                now=due,
            )
        )
        calls.append(
            partial(
                points_unlock,
                operation_key=f"ship:{line}",
                source_type="order_line",
                source_id=f"shipped:{line}",
                now=due,
            )
        )
    for customer in customers:
        calls += [partial(points_redeem, customer=customer, amount=30, operation_key=key(), now=due) for _ in range(2)]
    calls += [partial(points_expire_due, now=due, chunk_size=4)] * 2
    outcomes = run_together(*calls)

    # then nothing failed but the redemptions that found too few points, and the books balance
    assert unexpected(outcomes, InsufficientPoints) == []
    assert Entry.objects.filter(kind=Entry.Kind.EXPIRE).count() == 18
    assert Entry.objects.filter(kind=Entry.Kind.CLAWBACK).count() == 24
    assert Entry.objects.filter(kind=Entry.Kind.UNLOCK).count() == 24
    assert_consistent()


LOCKING_OPERATIONS = {
    "redeem": lambda customer: _redeem(customer, key()),
    "hold": lambda customer: _hold(customer, key()),
    "accrue": lambda customer: _accrue(customer, key()),
    "clawback": lambda customer: points_clawback(
        operation_key=key(), lot_ids=[Lot.objects.get(account__customer=customer).pk], amount=10, now=NOW
    ),
    "expire_due": lambda customer: points_expire_due(now=NOW + timedelta(days=400)),
}


@pytest.mark.parametrize("name", LOCKING_OPERATIONS)
def test_an_operation_waits_while_another_transaction_holds_the_account_lock(name):
    # given a transaction holding the account's lock
    customer = CustomerFactory()
    accrue(customer, 100)
    account = account_of(customer)
    done = {}

    def run() -> None:
        try:
            LOCKING_OPERATIONS[name](customer)
            done["at"] = time.monotonic()
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    with transaction.atomic():
        account_lock(account_id=account.pk)
        worker.start()
        time.sleep(0.4)

        # then the operation is still waiting
        assert worker.is_alive()
        released_at = time.monotonic()
    worker.join(timeout=10)

    # and it went on only once the lock was released
    assert done["at"] >= released_at
    assert_consistent()


@pytest.mark.django_db
@pytest.mark.parametrize("name", LOCKING_OPERATIONS)
def test_the_account_row_is_locked_before_any_ledger_write(name, settings):
    # The statements of the Python version; the SQL functions lock first too, as the test above shows from outside.
    settings.POINTS_LEDGER_SQL_FUNCTIONS = False
    customer = CustomerFactory()
    accrue(customer, 100)

    with CaptureQueriesContext(connection) as captured:
        LOCKING_OPERATIONS[name](customer)

    statements = [q["sql"].lstrip() for q in captured.captured_queries]
    writes = [i for i, sql in enumerate(statements) if sql.startswith(("INSERT", "UPDATE", "DELETE", "WITH"))]
    locks = [i for i, sql in enumerate(statements) if '"points_account"' in sql and "FOR UPDATE" in sql]
    assert writes, statements
    assert locks, statements
    assert locks[0] < writes[0], statements
