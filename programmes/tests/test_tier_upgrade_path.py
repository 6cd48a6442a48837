"""The tier check after a purchase: tiers cached per rules version, the sum skipped at the top (same outcomes)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.tests.factories import CustomerFactory
from programmes.models import CustomerTier
from programmes.services import purchase_record, tiers_recalculate

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
DAY = timedelta(days=1)


def buy(customer, amount, source_id, at=NOW):
    return purchase_record(
        customer=customer, amount=amount, occurred_at=at, source_type="order", source_id=source_id, now=at
    )


def tier_of(customer) -> str:
    return CustomerTier.objects.select_related("tier").get(customer=customer).tier.code


def test_a_changed_threshold_applies_to_the_next_purchase(tiers):
    buy(CustomerFactory(), "150000", "warm")  # the tiers are cached now
    tiers["silver"].qualification_threshold = 200000
    tiers["silver"].save()
    customer = CustomerFactory()

    buy(customer, "150000", "o-1")
    assert tier_of(customer) == "basic"
    buy(customer, "60000", "o-2")
    assert tier_of(customer) == "silver"


def test_a_new_tier_applies_to_the_next_purchase(retail, tiers):
    buy(CustomerFactory(), "150000", "warm")
    retail.tiers.create(code="diamond", name="Diamond", rank=4, qualification_threshold=2000000)
    customer = CustomerFactory()

    buy(customer, "2500000", "o-1")

    assert tier_of(customer) == "diamond"


def test_at_the_top_a_purchase_reads_no_sum_and_changes_nothing(tiers, django_assert_num_queries):
    customer = CustomerFactory()
    buy(customer, "1200000", "o-1")
    assert tier_of(customer) == "platinum"

    # The programme with the record (one statement), the row lock: no tiers (cached), no savepoint, no sum.
    with django_assert_num_queries(2):
        buy(customer, "1000", "o-2")

    assert tier_of(customer) == "platinum"


def test_an_upgrade_reads_the_sum_under_the_lock(tiers, django_assert_num_queries):
    customer = CustomerFactory()
    buy(customer, "1000", "o-1")

    # The programme with the record (one statement), the row lock, the sum, the history row, the row's update.
    with django_assert_num_queries(5):
        buy(customer, "150000", "o-2")

    assert tier_of(customer) == "silver"


def test_at_the_top_in_grace_a_purchase_back_above_clears_it(retail, tiers):
    customer = CustomerFactory()
    buy(customer, "1100000", "o-1")
    buy(customer, "-200000", "r-1", at=NOW + DAY)
    tiers_recalculate(programme=retail, now=NOW + 2 * DAY)
    assert CustomerTier.objects.get(customer=customer).below_threshold_since == NOW + 2 * DAY

    buy(customer, "150000", "o-2", at=NOW + 3 * DAY)

    row = CustomerTier.objects.get(customer=customer)
    assert (row.tier.code, row.below_threshold_since) == ("platinum", None)
