"""Races on a customer's tier row: concurrent first purchases create one row and one initial history row."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from customers.tests.factories import CustomerFactory
from programmes.models import CustomerTier, PurchaseRecord, TierChange
from programmes.services import purchase_record


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_purchases_create_one_tier_row_and_upgrade_once():
    customer = CustomerFactory()
    barrier = threading.Barrier(4)
    errors = []

    def buy(index: int) -> None:
        try:
            barrier.wait()
            purchase_record(
                customer=customer,
                amount="60000",
                occurred_at=timezone.now(),
                source_type="order",
                source_id=str(index % 2),  # two sources, each sent twice
            )
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert PurchaseRecord.objects.filter(customer=customer).count() == 2
    assert CustomerTier.objects.get(customer=customer).tier.code == "silver"
    assert list(TierChange.objects.filter(customer=customer).order_by("pk").values_list("reason", flat=True)) == [
        "initial",
        "upgrade",
    ]
