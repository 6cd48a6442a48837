"""What a customer merge (F-ID-7) means for tiers: the duplicate's purchases count for the survivor."""

from __future__ import annotations

from django.dispatch import receiver

from customers.models import Customer
from customers.services import customer_merged
from programmes.models import CustomerTier, Programme, PurchaseRecord
from programmes.services import tier_upgrade_if_qualified


@receiver(customer_merged, dispatch_uid="programmes.merge")
def purchases_follow_a_merge(sender, *, duplicate: Customer, survivor: Customer, **kwargs) -> None:
    """Inside the merge's transaction: the duplicate's purchase records move to the survivor, its tier row goes
    (its history stays with it), and the survivor is upgraded if the purchases together qualify — never
    downgraded here (that is the recalculation's job)."""
    programme_ids = set(PurchaseRecord.objects.filter(customer=duplicate).values_list("programme", flat=True))
    PurchaseRecord.objects.filter(customer=duplicate).update(customer=survivor)
    CustomerTier.objects.filter(customer=duplicate).delete()
    for programme in Programme.objects.filter(pk__in=programme_ids):
        tier_upgrade_if_qualified(customer=survivor, programme=programme)
