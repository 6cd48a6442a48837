"""The benchmark data generator writes a ledger the services and the reconcile check accept."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from customers.models import Customer
from points.models import Account, Allocation, Entry, Lot
from points.services import points_expire_due, points_reconcile, points_redeem
from points.tests.helpers import key

pytestmark = pytest.mark.django_db


def generate(**options) -> str:
    out = StringIO()
    call_command("points_bulk_generate", stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_generated_ledger_reconciles_and_serves_the_services():
    generate(accounts=30, lots_per_account=4, due_fraction=0.25, batch=7, seed=1)

    accounts = Account.objects.order_by("pk")
    assert accounts.count() == 30
    assert Lot.objects.filter(state=Lot.State.ACTIVE).count() == 120
    assert Entry.objects.filter(kind=Entry.Kind.ACCRUE).count() == 120
    assert Allocation.objects.count() == 120
    assert points_reconcile() == []

    # given the generated rows, the services work on them and keep the ledger consistent
    due = Lot.objects.filter(expires_at__lte=timezone.now()).count()
    assert 0 < due < 120
    account = accounts.first()
    spendable = sum(
        lot.remaining for lot in account.lots.filter(expires_at__gt=timezone.now()).order_by("expires_at")[:2]
    )
    points_redeem(customer=account.customer, amount=spendable, operation_key=key())
    assert points_expire_due().lots == due
    assert points_reconcile() == []


def test_a_second_run_appends_with_fresh_ids():
    generate(accounts=5, lots_per_account=2, seed=1)

    generate(accounts=5, lots_per_account=2, seed=2)

    assert Customer.objects.count() == 10
    assert Lot.objects.count() == 20
    assert sum(Account.objects.values_list("available", flat=True)) == sum(Lot.objects.values_list("amount", flat=True))
    assert points_reconcile() == []


def test_refuses_a_non_empty_database_that_does_not_look_like_a_benchmark(customer, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "NAME", "loyalty_crm")

    with pytest.raises(CommandError, match="refusing"):
        generate(accounts=3)
    assert Account.objects.count() == 0

    generate(accounts=3, force=True)
    assert Account.objects.count() == 3
