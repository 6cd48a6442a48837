"""Payments of an order, several and at different times (F-ORD-4), and earning on payment (F-EARN-1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.actors import SYSTEM, Actor
from core.sql import insert
from orders.exceptions import OrderInvalid, PaymentExists
from orders.models import ZERO, Order, OrderEvent, OrderLine, Payment
from orders.services.common import (
    event_claim,
    order_lock,
    points_unlock_lines,
    purchase_count,
    request_fingerprint,
)
from orders.services.placing import NewPayment


def order_pay(
    *,
    order: Order,
    external_id: str,
    method: str,
    amount: Decimal,
    operation_key: str,
    paid_at: datetime | None = None,
    actor: Actor = SYSTEM,
) -> Payment:
    """Record a payment (card, cash, gift certificate, other: points are paid by placing the order with them).
    For an order whose points unlock on payment, the lines the payments now cover — in line order — get their
    points. ``external_id`` is the channel's: the same payment again changes nothing, another one with that id
    is ``payment_exists``."""
    fingerprint_ = request_fingerprint(op="pay", external_id=external_id, method=method, amount=amount, at=paid_at)
    paid_at = paid_at or timezone.now()
    payment = NewPayment(external_id=external_id, method=method, amount=amount, paid_at=paid_at)
    with transaction.atomic():
        order = order_lock(order)
        event, replayed = event_claim(
            order=order,
            kind=OrderEvent.Kind.PAY,
            operation_key=operation_key,
            fingerprint_=fingerprint_,
            actor=actor,
            at=paid_at,
        )
        if not replayed:
            payments_record(order, [payment], event, actor, paid_at)
        return Payment.objects.get(order=order, external_id=external_id)


def payments_record(order: Order, payments: list[NewPayment], event: OrderEvent, actor: Actor, now: datetime) -> None:
    for index, payment in enumerate(payments):
        if payment.method == Payment.Method.POINTS:
            raise OrderInvalid(
                fields={f"payments.{index}.method": [{"code": "points", "message": "Spend points with `redeem`."}]}
            )
        existing = Payment.objects.filter(order=order, external_id=payment.external_id).first()
        if existing is not None:
            if (existing.method, existing.amount) != (payment.method, payment.amount):
                raise PaymentExists(extra={"external_id": payment.external_id})
            continue
        insert(
            Payment(
                order=order,
                external_id=payment.external_id,
                method=payment.method,
                amount=payment.amount,
                paid_at=payment.paid_at or now,
            )
        )
    if order.unlocks_on == Order.UnlocksOn.PAYMENT:
        _unlock_paid(order, event, actor)


def _unlock_paid(order: Order, event: OrderEvent, actor: Actor) -> None:
    """Unlock the lines that payments cover, walking the lines in order (points paid count as paid)."""
    # Points count as paid only while they are spent on live lines: a cancellation refunds them.
    paid = (
        Payment.objects.filter(order=order, status=Payment.Status.PAID)
        .exclude(method=Payment.Method.POINTS)
        .aggregate(total=Sum("amount"))["total"]
    )
    live = order.lines.exclude(status__in=[OrderLine.Status.CANCELLED, OrderLine.Status.RETURNED])
    budget = (paid or ZERO) + (live.aggregate(total=Sum("points_redeemed"))["total"] or ZERO)
    covered, running = [], ZERO
    for line in order.lines.exclude(status__in=[OrderLine.Status.CANCELLED, OrderLine.Status.RETURNED]):
        running += line.amount
        if running > budget:
            break
        if not line.points_unlocked:
            covered.append(line)
    if not covered:
        return
    points_unlock_lines(covered, event, actor)
    purchase_count(order, covered, event, +1)
    for line in covered:
        line.points_unlocked = True
    OrderLine.objects.bulk_update(covered, ["points_unlocked"])
