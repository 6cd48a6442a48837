"""Attaching an anonymous order to its customer later (F-ORD-10), and following a customer merge."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from core.actors import SYSTEM, Actor
from customers.exceptions import CustomerMerged
from customers.models import Customer
from customers.services import customer_merging
from orders.exceptions import CustomerAlreadyAttached
from orders.models import Order, OrderEvent, OrderLine, Reservation
from orders.services.common import event_claim, order_lock, purchase_count, request_fingerprint
from orders.services.placing import lines_accrue


def order_attach_customer(
    *,
    order: Order,
    customer: Customer,
    operation_key: str,
    reason: str = "",
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> Order:
    """Give an order placed without a customer (a receipt with only a phone, or nothing) to ``customer``: its
    lines' points follow — pending for lines still to be delivered, spendable for delivered ones, none for
    cancelled or returned ones — at the amounts calculated when it was placed; a non-member's are members-only
    until they join. Attaching it to the customer it already has changes nothing; to another is
    ``order_customer_attached``."""
    now = now or timezone.now()
    if customer.merged_into_id is not None:
        raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
    fingerprint_ = request_fingerprint(op="match", customer=customer.pk)
    with transaction.atomic():
        order = order_lock(order)
        # Under its lock: a merge that moved this customer's points meanwhile must be seen, not raced.
        customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
        if customer.merged_into_id is not None:
            raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
        if order.customer_id is not None:
            if order.customer_id == customer.pk:
                return order
            raise CustomerAlreadyAttached()
        event, replayed = event_claim(
            order=order,
            kind=OrderEvent.Kind.MATCH,
            operation_key=operation_key,
            fingerprint_=fingerprint_,
            actor=actor,
            at=now,
            reason=reason,
        )
        if replayed:
            return order
        order.customer = customer
        order.save(update_fields=["customer", "updated_at"])
        Order.objects.filter(parent=order).update(customer=customer)
        lines = list(order.lines.exclude(status__in=[OrderLine.Status.CANCELLED, OrderLine.Status.RETURNED]))
        earned = [line for line in lines if _counted(order, line)]
        waiting = [line for line in lines if not _counted(order, line)]
        lines_accrue(order, earned, event, actor, active=True, key="accrue-active")
        lines_accrue(order, waiting, event, actor, active=False, key="accrue-pending")
        purchase_count(order, earned, event, +1)
        OrderLine.objects.filter(pk__in=[line.pk for line in earned]).update(points_unlocked=True)
        return order


def _counted(order: Order, line: OrderLine) -> bool:
    """Has the line earned its points already: delivered (or, for orders that unlock on payment, paid)?"""
    if order.unlocks_on == Order.UnlocksOn.PAYMENT:
        return line.points_unlocked
    return line.status == OrderLine.Status.DELIVERED


@receiver(customer_merging)
def orders_follow_merge(sender, duplicate: Customer, survivor: Customer, **kwargs) -> None:
    """A merged duplicate's orders and reservations are the survivor's. Moved before the ledger moves the points,
    so the merge locks orders before accounts, as every order service does (no deadlock with a delivery)."""
    Order.objects.filter(customer=duplicate).update(customer=survivor)
    Reservation.objects.filter(customer=duplicate).update(customer=survivor)
