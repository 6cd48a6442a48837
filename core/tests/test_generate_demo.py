"""``manage.py generate_demo``: the counts asked for, valid unique phones, a consistent ledger, orders whose status
and totals follow from their lines — and it refuses a database that already holds customers."""

from __future__ import annotations

import re
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum
from django.utils import timezone

from core.generate.rows import phone_of
from customers.models import Customer
from customers.phones import phone_normalise
from customers.tests.factories import CustomerFactory
from integrations.models import Store
from orders.models import Order, OrderLine
from orders.services.common import order_status_refresh
from points.models import Account, Allocation, Entry, Lot
from points.services import points_reconcile
from programmes.models import CustomerTier, TierChange
from programmes.tests.conftest import _demo_programmes  # noqa: F401 (restored after the transactional test)

E164_RU_MOBILE = re.compile(r"^\+79\d{9}$")
LINE_LOT_STATES = {
    OrderLine.Status.PLACED: {Lot.State.PENDING},
    OrderLine.Status.CANCELLED: {Lot.State.CANCELLED},
    OrderLine.Status.DELIVERED: {Lot.State.ACTIVE, Lot.State.SPENT, Lot.State.EXPIRED},
    OrderLine.Status.RETURNED: {Lot.State.SPENT},
}


def generate(**options) -> str:
    out = StringIO()
    call_command("generate_demo", stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def assert_phones_unique_and_valid() -> None:
    phones = list(Customer.objects.exclude(membership=Customer.Membership.ANONYMISED).values_list("phone", flat=True))
    assert all(E164_RU_MOBILE.match(str(phone)) for phone in phones)
    assert all(phone_normalise(phone).as_e164 == str(phone) for phone in phones)
    assert len(set(map(str, phones))) == len(phones)
    anonymised = Customer.objects.filter(membership=Customer.Membership.ANONYMISED)
    assert not anonymised.exclude(phone=None).exists()


def assert_orders_consistent() -> None:
    """Each order's status is the one ``order_status_refresh`` derives from its lines; its amounts are their sums;
    an earning line's lot is its own, with the points it shows, in a state that fits the line's."""
    orders = list(Order.objects.order_by("pk"))
    for order in orders:
        shown = order.status
        order_status_refresh(order)  # saves only if the status differs
        assert order.status == shown, order.number
    totals = Order.objects.annotate(
        lines_amount=Sum("lines__amount"),
        lines_earn=Sum("lines__points_to_earn"),
        lines_redeemed=Sum("lines__points_redeemed"),
    )
    for order in totals:
        assert (order.total_amount, order.points_to_earn, order.points_redeemed) == (
            order.lines_amount,
            order.lines_earn,
            order.lines_redeemed,
        ), order.number
    for line in OrderLine.objects.exclude(lot=None).select_related("lot__account", "order"):
        assert line.lot.source_type == "order_line"
        assert line.lot.source_id == str(line.pk)
        assert line.lot.amount == line.points_to_earn
        assert line.lot.account.customer_id == line.order.customer_id
        assert line.lot.state in LINE_LOT_STATES[line.status], (line.status, line.lot.state)
        assert line.points_unlocked == (line.status in (OrderLine.Status.DELIVERED, OrderLine.Status.RETURNED))
    assert not OrderLine.objects.filter(lot=None).exclude(points_to_earn=0).exists()


@pytest.mark.django_db
def test_generate_demo_makes_the_counts_asked_with_a_consistent_ledger_and_orders():
    # given an empty database (migrations only)
    assert not Customer.objects.exists()

    # when
    output = generate(customers=200, lines_per_customer=5, entries_per_customer=10, stores=7, seed=3)

    # then: exact counts where the options fix them
    assert "generated 200 customers, 1,000 order lines, 2,000 journal entries" in output
    assert Customer.objects.count() == 200
    assert Account.objects.count() == 200
    assert OrderLine.objects.count() == 1000
    assert Entry.objects.count() == 2000
    assert Allocation.objects.count() == 2000
    assert not Account.objects.annotate(n=Count("entries")).exclude(n=10).exists()
    assert not Order.objects.exclude(kind=Order.Kind.ORDER).exists()
    assert 200 <= Order.objects.count() <= 1000
    # the ledger reconciles, and lots are in every state a ledger holds
    assert points_reconcile() == []
    states = set(Lot.objects.values_list("state", flat=True))
    assert states == {"active", "pending", "spent", "expired", "cancelled"}
    kinds = set(Entry.objects.values_list("kind", flat=True))
    assert kinds == {"accrue", "unlock", "redeem", "expire", "cancel", "clawback"}
    assert not Lot.objects.filter(state=Lot.State.ACTIVE, expires_at__lt=timezone.now()).exists()  # none overdue
    assert_phones_unique_and_valid()
    assert_orders_consistent()
    # spread over the stores asked for, the channels and two years
    stores = Store.objects.filter(code__startswith="gen-store-")
    assert stores.count() == 7
    assert set(Order.objects.exclude(store=None).values_list("store", flat=True)) == set(
        stores.values_list("pk", flat=True)
    )
    assert Order.objects.values("channel").distinct().count() == 3
    first, last = Order.objects.earliest("created_at").created_at, Order.objects.latest("created_at").created_at
    assert (last - first).days > 365
    memberships = Counter(Customer.objects.values_list("membership", flat=True))
    assert memberships["member"] > 150
    assert memberships["non_member"] > 0
    assert CustomerTier.objects.count() == TierChange.objects.count() > 0
    assert Customer.objects.exclude(card_number=None).count() > 50
    assert Customer.objects.exclude(email="").count() > 50


@pytest.mark.django_db
def test_generate_demo_refuses_a_database_with_customers_unless_appending():
    # given
    CustomerFactory()

    # when / then: refused, nothing written
    with pytest.raises(CommandError, match=r"already holds 1 customers.*--append"):
        generate(customers=20)
    assert Customer.objects.count() == 1
    assert not Order.objects.exists()

    # when appending, twice
    generate(customers=20, append=True, seed=1)
    generate(customers=20, append=True, seed=1)

    # then
    assert Customer.objects.count() == 41
    assert OrderLine.objects.count() == 200
    assert_phones_unique_and_valid()
    assert points_reconcile() == []


@pytest.mark.django_db
def test_generate_demo_reports_a_phone_taken_by_another_customer_and_writes_nothing_of_that_batch():
    # given a customer made elsewhere holding the phone the generator gives the next customer id
    other = CustomerFactory()
    Customer.objects.filter(pk=other.pk).update(phone=phone_of(other.pk + 1))

    # when / then
    with pytest.raises(CommandError, match="generation stopped"):
        generate(customers=5, append=True)
    assert Customer.objects.count() == 1
    assert not Account.objects.exists()
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_generate_demo_writes_batches_from_worker_processes():
    # given batches smaller than the run, so two forked workers COPY them on their own connections
    # when
    generate(customers=300, batch=50, workers=2, lines_per_customer=3, entries_per_customer=6)

    # then
    assert Customer.objects.count() == 300
    assert OrderLine.objects.count() == 900
    assert Entry.objects.count() == 1800
    assert points_reconcile() == []
    assert_phones_unique_and_valid()
    assert_orders_consistent()


@pytest.mark.smoke
@pytest.mark.django_db
def test_generate_demo_smoke():
    # when (on SQLite: batched INSERTs)
    generate(customers=40, batch=15, lines_per_customer=2, entries_per_customer=4)

    # then
    assert Customer.objects.count() == 40
    assert OrderLine.objects.count() == 80
    assert Entry.objects.count() == 160
    assert points_reconcile() == []
    assert_phones_unique_and_valid()
    assert_orders_consistent()
    customer = Customer.objects.exclude(membership=Customer.Membership.ANONYMISED).first()
    assert customer.created_at.tzinfo is not None
    assert customer.point_accounts.get().created_at == customer.created_at
