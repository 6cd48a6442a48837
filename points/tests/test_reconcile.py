"""``points_reconcile`` finds nothing on a healthy ledger and every kind of corruption on a damaged one."""

from datetime import timedelta

import pytest
from django.core.management import call_command, execute_from_command_line
from django.db import connection
from django.db.models import F
from django.utils import timezone

from customers.tests.factories import CustomerFactory
from points.models import Account, Allocation, Entry, Lot
from points.services import (
    points_accrue,
    points_clawback,
    points_expire_due,
    points_hold,
    points_reconcile,
    points_redeem,
    points_refund,
)
from points.tests.helpers import D, account_of, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def accrue(customer, amount, **kwargs):
    return points_accrue(customer=customer, amount=amount, kind="purchase", operation_key=key(), now=NOW, **kwargs)


@pytest.fixture
def ledger(customer):
    """One customer's ledger with every kind of movement: available, pending, held, debt, expired, refunded."""
    returned = accrue(customer, 100, source_type="order_line", source_id="1/1").lot
    accrue(customer, 300)
    accrue(customer, 50, pending=True)
    redemption = points_redeem(customer=customer, amount=150, operation_key=key(), now=NOW)
    points_refund(redemption_id=redemption.entries[0].pk, amount=30, operation_key=key(), now=NOW)
    points_hold(customer=customer, amount=40, operation_key=key(), now=NOW)
    points_redeem(customer=customer, amount=60, operation_key=key(), now=NOW)
    accrue(customer, 20, expires_at=NOW + timedelta(days=1))
    points_clawback(operation_key=key(), lot_ids=[returned.pk], now=NOW)
    points_expire_due(now=NOW + timedelta(days=2))
    return account_of(customer)


def found() -> list[tuple[str, int]]:
    return sorted((problem.check, problem.object_id) for problem in points_reconcile())


def test_a_healthy_ledger_has_no_discrepancies(ledger):
    assert (ledger.available, ledger.pending, ledger.held, ledger.debt) == (D(180), D(50), D(40), D(100))
    assert set(Entry.objects.values_list("kind", flat=True)) == {
        "accrue",
        "redeem",
        "refund",
        "hold",
        "clawback",
        "expire",
    }
    assert points_reconcile() == []


@pytest.mark.parametrize("bucket", ["available", "pending", "held"])
def test_a_tampered_cached_bucket_disagrees_with_the_lots_and_the_journal(ledger, bucket):
    Account.objects.filter(pk=ledger.pk).update(**{bucket: F(bucket) + 1})

    assert found() == [("account_vs_journal", ledger.pk), ("account_vs_lots", ledger.pk)]


def test_a_tampered_debt_disagrees_with_the_journal(ledger):
    Account.objects.filter(pk=ledger.pk).update(debt=0)

    problems = points_reconcile()

    assert [(p.check, p.object_id) for p in problems] == [("account_vs_journal", ledger.pk)]
    assert problems[0].detail == "cached 180.00/50.00/40.00/0.00, journal 180.00/50.00/40.00/100.00"


@pytest.mark.parametrize("column", ["remaining", "held"])
def test_a_tampered_lot_disagrees_with_its_allocations_and_its_account(ledger, column):
    lot = Lot.objects.filter(account=ledger, state=Lot.State.ACTIVE, held__gt=0).get()
    Lot.objects.filter(pk=lot.pk).update(**{column: F(column) - 1})

    assert found() == [("account_vs_lots", ledger.pk), ("lot_vs_allocations", lot.pk)]


def test_a_lot_moved_back_to_pending_disagrees_with_its_account(ledger):
    lot = Lot.objects.filter(account=ledger, state=Lot.State.ACTIVE).first()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE points_lot SET state = 'pending', held = 0 WHERE id = %s", [lot.pk])

    assert ("account_vs_lots", ledger.pk) in found()


def test_an_entry_written_without_its_allocations_is_found(ledger):
    entry = Entry.objects.bulk_create(
        [
            Entry(
                account=ledger,
                kind=Entry.Kind.ADJUST,
                amount=5,
                available_delta=5,
                operation_key="rogue",
                created_at=NOW,
            )
        ]
    )[0]

    assert found() == [("account_vs_journal", ledger.pk), ("entry_vs_allocations", entry.pk)]


def test_an_entry_whose_deltas_disagree_with_its_allocations_is_found(ledger):
    # the lot and the account were moved by 5, the entry claims 7
    lot = Lot.objects.filter(account=ledger, state=Lot.State.ACTIVE).first()
    entry = Entry.objects.bulk_create(
        [
            Entry(
                account=ledger,
                kind=Entry.Kind.ADJUST,
                amount=7,
                available_delta=-7,
                operation_key="rogue",
                created_at=NOW,
            )
        ]
    )[0]
    Allocation.objects.bulk_create([Allocation(entry=entry, lot=lot, remaining_delta=-5)])
    Lot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - 5)
    Account.objects.filter(pk=ledger.pk).update(available=F("available") - 5)

    assert found() == [("account_vs_journal", ledger.pk), ("entry_vs_allocations", entry.pk)]


def test_an_allocation_to_another_accounts_lot_is_found(ledger):
    other = CustomerFactory()
    foreign = accrue(other, 10).lot
    entry = Entry.objects.filter(account=ledger, kind=Entry.Kind.REDEEM).first()
    allocation = Allocation.objects.bulk_create([Allocation(entry=entry, lot=foreign, remaining_delta=0)])[0]

    assert found() == [("allocation_account", allocation.pk)]


def test_reconcile_of_some_accounts_checks_only_those(ledger):
    healthy = CustomerFactory()
    accrue(healthy, 10)
    Account.objects.filter(pk=ledger.pk).update(available=0)

    assert points_reconcile(account_ids=[account_of(healthy).pk]) == []
    assert {p.check for p in points_reconcile(account_ids=[ledger.pk])} == {"account_vs_lots", "account_vs_journal"}


def test_the_command_says_the_ledger_is_consistent(ledger, capsys):
    call_command("points_reconcile")

    assert capsys.readouterr().out == "ledger consistent\n"


def test_the_command_exits_non_zero_and_names_every_discrepancy(ledger, capsys):
    Account.objects.filter(pk=ledger.pk).update(available=0)

    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(["manage.py", "points_reconcile"])

    assert exit_.value.code == 1
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.splitlines() == [
        f"account_vs_lots #{ledger.pk}: cached 0.00/50.00/40.00, lots 180.00/50.00/40.00",
        f"account_vs_journal #{ledger.pk}: cached 0.00/50.00/40.00/100.00, journal 180.00/50.00/40.00/100.00",
        "CommandError: 2 discrepancies",
    ]


def test_the_command_checks_only_the_accounts_asked_for(ledger, capsys):
    healthy = CustomerFactory()
    accrue(healthy, 10)
    Account.objects.filter(pk=ledger.pk).update(available=0)

    call_command("points_reconcile", "--account", str(account_of(healthy).pk))

    assert capsys.readouterr().out == "ledger consistent\n"
