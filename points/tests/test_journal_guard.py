"""The journal is append-only: the database refuses to change or remove its rows (triggers installed by
migration 0002), and so does the ORM before a query is even sent."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from points.models import Allocation, Entry
from points.services import points_accrue, points_redeem
from points.tests.helpers import D, assert_consistent, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)

RAW_WRITES = [
    "UPDATE points_entry SET amount = amount + 1",
    "UPDATE points_entry SET available_delta = 0 WHERE kind = 'redeem'",
    "DELETE FROM points_entry WHERE kind = 'redeem'",
    "UPDATE points_allocation SET remaining_delta = 0",
    "DELETE FROM points_allocation",
]


@pytest.fixture
def journal(customer) -> list[tuple]:
    """A small ledger: an accrual and a redemption, as their journal rows."""
    points_accrue(customer=customer, amount=100, kind="purchase", operation_key=key(), now=NOW)
    points_redeem(customer=customer, amount=30, operation_key=key(), now=NOW)
    return rows()


def rows() -> list[tuple]:
    entries = Entry.objects.order_by("pk").values_list("pk", "kind", "amount", "available_delta")
    allocations = Allocation.objects.order_by("pk").values_list("pk", "entry_id", "lot_id", "remaining_delta")
    return [*entries, *allocations]


@pytest.mark.parametrize("sql", RAW_WRITES)
def test_the_database_refuses_raw_sql_that_changes_or_removes_journal_rows(journal, sql):
    if connection.vendor != "postgresql":
        pytest.fail("the journal's triggers are PostgreSQL's")

    with (
        pytest.raises(IntegrityError, match="the points journal is append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)

    assert rows() == journal
    assert_consistent()


def test_saving_an_existing_entry_again_is_refused(journal):
    entry = Entry.objects.get(kind=Entry.Kind.REDEEM)
    entry.amount = Decimal("1.00")

    with pytest.raises(TypeError, match="append-only"):
        entry.save()

    assert rows() == journal


def test_saving_an_existing_allocation_again_is_refused(journal):
    allocation = Allocation.objects.filter(entry__kind=Entry.Kind.REDEEM).get()
    allocation.remaining_delta = D(0)

    with pytest.raises(TypeError, match="append-only"):
        allocation.save()

    assert rows() == journal


@pytest.mark.parametrize("model", [Entry, Allocation])
def test_deleting_a_journal_row_is_refused(journal, model):
    with pytest.raises(TypeError, match="append-only"):
        model.objects.order_by("pk").last().delete()

    assert rows() == journal


@pytest.mark.parametrize(
    "write",
    [
        lambda: Entry.objects.filter(kind=Entry.Kind.REDEEM).update(amount=0),
        lambda: Entry.objects.all().delete(),
        lambda: Entry.objects.bulk_update(list(Entry.objects.all()), ["reason"]),
        lambda: Allocation.objects.all().update(remaining_delta=0),
        lambda: Allocation.objects.filter(entry__kind=Entry.Kind.REDEEM).delete(),
    ],
    ids=["entry-update", "entry-delete", "entry-bulk-update", "allocation-update", "allocation-delete"],
)
def test_queryset_writes_to_the_journal_are_refused(journal, write):
    # bulk_update raises inside its own atomic block: the savepoint keeps the test's transaction usable
    with pytest.raises(TypeError, match="append-only"), transaction.atomic():
        write()

    assert rows() == journal


def test_an_accounts_journal_cannot_be_changed_through_its_related_manager(journal, customer):
    account = customer.point_accounts.get()

    with pytest.raises(TypeError, match="append-only"):
        account.entries.update(reason="rewritten")
    with pytest.raises(TypeError, match="append-only"):
        account.entries.all().delete()

    assert rows() == journal
