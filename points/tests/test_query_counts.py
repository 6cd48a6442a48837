"""SQL round trips per ledger operation: a small fixed number, whatever the number of lots it touches.

Counted with ``CaptureQueriesContext``. A test runs inside a transaction, so every service's
``transaction.atomic()`` becomes ``SAVEPOINT`` / ``RELEASE SAVEPOINT`` here; in production the same block
is ``BEGIN`` / ``COMMIT``, which Django does not log either. Savepoint statements are therefore left out,
and the figures below are the statements a service really sends.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from points.models import BalanceType, Lot, LotLifetime
from points.services import (
    points_accrue,
    points_accrue_lots,
    points_hold,
    points_hold_commit,
    points_redeem,
    points_refund,
)
from points.tests.helpers import D, assert_consistent, buckets, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
SAVEPOINT_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")

# The journal's writes (entries, allocations, lots, account): one statement on PostgreSQL, four elsewhere.
JOURNAL = 1 if connection.vendor == "postgresql" else 4
# Statements per operation. Redeem: lock + key check, not merged, spendable lots, the journal.
REDEEM = 3 + JOURNAL
ACCRUE = 4 + JOURNAL  # lock + key check, not merged, lifetime, lot, the journal
# An order's lots: lock + key check, not merged, the journal — which on PostgreSQL also inserts the lots and, for
# pending ones, looks up their lifetime; elsewhere those are two statements of their own.
ACCRUE_LOTS_PENDING = 2 + (1 if connection.vendor == "postgresql" else 2 + JOURNAL)
ACCRUE_LOTS_ACTIVE = 3 + (1 if connection.vendor == "postgresql" else 1 + JOURNAL)  # lifetime always in Python
HOLD = 4 + JOURNAL  # lock + key check, not merged, spendable lots, hold, the journal
HOLD_COMMIT = 6 + JOURNAL  # hold's account, lock + key check, hold, held sums, held lots, the journal, hold
# On PostgreSQL those three are one call of a PL/pgSQL function each (points 0009); the figures above are the
# Python version's, which SQLite runs and POINTS_LEDGER_SQL_FUNCTIONS = False selects.
SQL_FUNCTION_CALL = 1
# redemption, where its lots are now (a merge may have moved them), lock + key check, allocations, refunded sums,
# lots, the journal
REFUND = 6 + JOURNAL


def statements(run) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [query["sql"] for query in captured.captured_queries if not query["sql"].startswith(SAVEPOINT_STATEMENTS)]


def accrue_lots(customer, count: int, amount: int = 10) -> None:
    for day in range(count):
        points_accrue(
            customer=customer,
            amount=amount,
            kind="purchase",
            operation_key=key("accrue"),
            expires_at=NOW + timedelta(days=10 + day),
            now=NOW,
        )


@pytest.fixture(params=["sql_functions", "python"])
def sql_functions(request, settings) -> bool:
    settings.POINTS_LEDGER_SQL_FUNCTIONS = request.param == "sql_functions"
    return settings.POINTS_LEDGER_SQL_FUNCTIONS


@pytest.mark.parametrize("lots", [2, 5, 20])
def test_redeem_across_lots_takes_fixed_statements(customer, lots, sql_functions):
    accrue_lots(customer, lots)

    sent = statements(lambda: points_redeem(customer=customer, amount=10 * lots - 5, operation_key=key(), now=NOW))

    assert len(sent) == (SQL_FUNCTION_CALL if sql_functions else REDEEM), sent
    assert buckets(customer) == (D(5), D(0), D(0), D(0))
    assert_consistent()


def test_redeem_replay_takes_no_more_than_the_first_call(customer):
    accrue_lots(customer, 3)
    points_redeem(customer=customer, amount=25, operation_key="redeem:1", now=NOW)

    sent = statements(lambda: points_redeem(customer=customer, amount=25, operation_key="redeem:1", now=NOW))

    assert len(sent) <= REDEEM, sent


@pytest.mark.parametrize("lots", [1, 20])  # the account exists: its creation is a one-off
def test_accrue_statements_do_not_grow_with_the_account_lots(customer, lots):
    accrue_lots(customer, lots)

    sent = statements(
        lambda: points_accrue(customer=customer, amount=10, kind="purchase", operation_key=key(), now=NOW)
    )

    assert len(sent) == ACCRUE, sent


@pytest.mark.parametrize("lots", [2, 20])
def test_hold_and_commit_across_lots_take_fixed_statements(customer, lots, sql_functions):
    accrue_lots(customer, lots)

    held = []
    hold_sent = statements(
        lambda: held.append(points_hold(customer=customer, amount=10 * lots - 5, operation_key=key(), now=NOW))
    )
    commit_sent = statements(
        lambda: points_hold_commit(hold_id=held[0].hold.pk, amount=10 * lots - 10, operation_key=key(), now=NOW)
    )

    assert len(hold_sent) == (SQL_FUNCTION_CALL if sql_functions else HOLD), hold_sent
    assert len(commit_sent) == (SQL_FUNCTION_CALL if sql_functions else HOLD_COMMIT), commit_sent
    assert buckets(customer) == (D(10), D(0), D(0), D(0))
    assert_consistent()


@pytest.mark.parametrize("lots", [2, 20])
def test_refund_across_lots_takes_fixed_statements(customer, lots):
    accrue_lots(customer, lots)
    redemption = points_redeem(customer=customer, amount=10 * lots, operation_key=key(), now=NOW)

    sent = statements(
        lambda: points_refund(
            redemption_id=redemption.entries[0].pk, amount=10 * lots - 1, operation_key=key(), now=NOW
        )
    )

    assert len(sent) == REFUND, sent
    assert buckets(customer) == (D(10 * lots - 1), D(0), D(0), D(0))
    assert_consistent()


@pytest.mark.parametrize("pending", [True, False])
@pytest.mark.parametrize("lifetime", ["specific", "never", "default"])
def test_accrue_lots_takes_fixed_statements_and_the_kinds_lifetime(customer, pending, lifetime):
    retail = BalanceType.objects.get(code="retail")
    if lifetime != "default":
        LotLifetime.objects.update_or_create(
            balance_type=retail, kind="purchase", defaults={"lifetime_days": 30 if lifetime == "specific" else None}
        )
    days = {"specific": 30, "never": None, "default": retail.default_lifetime_days}[lifetime]
    accrue_lots(customer, 2)  # the account exists: its creation is not counted
    operation = None

    def run():
        nonlocal operation
        operation = points_accrue_lots(
            customer=customer,
            lots=[(D(5), "line-1"), (D(7), "line-2")],
            kind="purchase",
            operation_key=key(),
            source_type="order_line",
            pending=pending,
            now=NOW,
        )

    sent = statements(run)

    assert len(sent) == (ACCRUE_LOTS_PENDING if pending else ACCRUE_LOTS_ACTIVE), sent
    stored = list(Lot.objects.filter(source_type="order_line").order_by("pk"))
    assert [lot.pk for lot in operation.lots] == [lot.pk for lot in stored]
    assert [(lot.amount, lot.remaining, lot.source_id, lot.lifetime_days) for lot in stored] == [
        (D(5), D(5), "line-1", days),
        (D(7), D(7), "line-2", days),
    ]
    assert [lot.lifetime_days for lot in operation.lots] == [days, days]
    assert {allocation.lot_id for entry in operation.entries for allocation in entry.allocations.all()} == {
        lot.pk for lot in stored
    }
    assert buckets(customer) == ((D(20), D(12), D(0), D(0)) if pending else (D(32), D(0), D(0), D(0)))
    assert_consistent()
