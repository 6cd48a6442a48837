"""What every order service shares: the order lock, the event that makes a repeat harmless, line selection and
splitting, and the ledger calls that move a set of lines' points."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max

from core.actors import Actor
from orders.exceptions import (
    OperationConflict,
    OrderInvalid,
    OrderLineUnknown,
    OrderNotFound,
    QuantityExceeded,
)
from orders.models import ZERO, Order, OrderEvent, OrderLine
from points.services import (
    points_cancel_accrual,
    points_clawback,
    points_refund,
    points_split_pending,
    points_unlock,
)
from programmes.services import purchase_record

CENT = Decimal("0.01")
LOT_SOURCE = "order_line"


@dataclass(frozen=True)
class LineRequest:
    """A line named by a delivery, cancellation or return; ``quantity`` None means all it has in that status."""

    line_number: int
    quantity: Decimal | None = None


def request_fingerprint(**arguments) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, cls=DjangoJSONEncoder).encode()).hexdigest()


def order_lock(order_id: int) -> Order:
    """The order, row-locked for the rest of the transaction: every change of one order queues here, before any
    ledger lock (always order first, then accounts — no deadlock)."""
    if not Order.objects.select_for_update().filter(pk=order_id).values_list("pk", flat=True):
        raise OrderNotFound()
    # Read in a statement of its own, after the lock: a locking query that waited re-checks only the locked row,
    # so a customer attached meanwhile would come back as an id without its row.
    return Order.objects.select_related("customer").get(pk=order_id)


def event_claim(
    *,
    order: Order,
    kind: str,
    operation_key: str,
    fingerprint_: str,
    actor: Actor,
    at: datetime,
    reason: str = "",
    lines: list | None = None,
) -> tuple[OrderEvent, bool]:
    """(event, True) when ``operation_key`` was used before for the same change — the caller replays it —, or a
    new event. The same key for another change is ``order_operation_conflict``. Under the order lock."""
    existing = OrderEvent.objects.filter(operation_key=operation_key).first()
    if existing is not None:
        if existing.fingerprint != fingerprint_ or existing.order_id != order.pk:
            raise OperationConflict()
        return existing, True
    event = OrderEvent.objects.create(
        order=order,
        kind=kind,
        operation_key=operation_key,
        fingerprint=fingerprint_,
        actor_channel=actor.channel,
        actor_user=actor.user,
        reason=reason,
        lines=lines or [],
        created_at=at,
    )
    return event, False


def ledger_key(event: OrderEvent, suffix: str) -> str:
    return f"order-event:{event.pk}:{suffix}"


def share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``part``/``whole`` of ``total``, rounded down to cents: what remains stays with the original line."""
    if part == whole:
        return total
    return (total * part / whole).quantize(CENT, rounding=ROUND_DOWN)


def lines_take(order: Order, requested: list[LineRequest], statuses: set[str], wrong_status) -> list[tuple]:
    """The order's line parts that ``requested`` names, as (part, quantity taken), in line order. A line number the
    order lacks is ``order_line_unknown``; one with nothing in ``statuses`` raises ``wrong_status``; a quantity
    above what is left in them ``order_line_quantity_exceeded`` — each naming the request's field."""
    if not requested:
        raise OrderInvalid(fields={"lines": [{"code": "empty", "message": "Name at least one line."}]})
    seen = set()
    for index, request in enumerate(requested):
        if request.line_number in seen:
            raise OrderInvalid(
                fields={f"lines.{index}.line_number": [{"code": "duplicate", "message": "Named twice."}]}
            )
        seen.add(request.line_number)
    by_number: dict[int, list[OrderLine]] = defaultdict(list)
    for line in order.lines.filter(line_number__in=seen).order_by("line_number", "part"):
        by_number[line.line_number].append(line)
    taken = []
    for index, request in enumerate(requested):
        parts = by_number.get(request.line_number)
        field = f"lines.{index}"
        if not parts:
            raise OrderLineUnknown(extra={"field": field, "line_number": request.line_number})
        eligible = [line for line in parts if line.status in statuses]
        if not eligible:
            raise wrong_status(extra={"field": field, "line_number": request.line_number, "status": parts[-1].status})
        available = sum((line.quantity for line in eligible), ZERO)
        wanted = available if request.quantity is None else request.quantity
        if wanted <= 0 or wanted > available:
            raise QuantityExceeded(
                extra={"field": field, "line_number": request.line_number, "available": str(available)}
            )
        for line in eligible:
            if wanted <= 0:
                break
            quantity = min(line.quantity, wanted)
            taken.append((line, quantity))
            wanted -= quantity
    return taken


def line_split(line: OrderLine, quantity: Decimal, event: OrderEvent) -> OrderLine:
    """Split ``quantity`` off ``line`` into a new part with its shares of the amount and points; a pending lot is
    split with it (the part's points go their own way), an unlocked one is shared (a partial return takes back
    the part's share of it)."""
    if quantity >= line.quantity:
        return line
    amount = share(line.amount, quantity, line.quantity)
    redeemed = min(share(line.points_redeemed, quantity, line.quantity), amount)
    earned = share(line.points_to_earn, quantity, line.quantity)
    last = OrderLine.objects.filter(order_id=line.order_id, line_number=line.line_number).aggregate(m=Max("part"))["m"]
    part = OrderLine.objects.create(
        order_id=line.order_id,
        line_number=line.line_number,
        part=last + 1,
        split_from=line.split_from or line,
        sku=line.sku,
        name=line.name,
        category=line.category,
        attributes=line.attributes,
        operation_type=line.operation_type,
        price=line.price,
        discount_percent=line.discount_percent,
        quantity=quantity,
        amount=amount,
        points_redeemed=redeemed,
        points_to_earn=earned,
        status=line.status,
        delivery=line.delivery,
        lot=line.lot,
        redemption=line.redemption,
        points_unlocked=line.points_unlocked,
        delivered_at=line.delivered_at,
        closed_at=line.closed_at,
        reason=line.reason,
    )
    if line.lot_id is not None and line.status != OrderLine.Status.CANCELLED and not line.points_unlocked:
        if earned > 0:
            operation = points_split_pending(
                actor=Actor(channel=event.actor_channel, user=event.actor_user),
                now=event.created_at,
                lot_id=line.lot_id,
                amount=earned,
                source_id=str(part.pk),
                operation_key=ledger_key(event, f"split:{part.pk}"),
            )
            part.lot = operation.lot
        else:
            part.lot = None
        part.save(update_fields=["lot"])
    line.quantity -= quantity
    line.amount -= amount
    line.points_redeemed -= redeemed
    line.points_to_earn -= earned
    line.save(update_fields=["quantity", "amount", "points_redeemed", "points_to_earn"])
    return part


def lines_split(taken: list[tuple[OrderLine, Decimal]], event: OrderEvent) -> list[OrderLine]:
    return [line_split(line, quantity, event) for line, quantity in taken]


def points_unlock_lines(lines: list[OrderLine], event: OrderEvent, actor: Actor) -> list[OrderLine]:
    """Make the lines' pending points spendable; the lines that were unlocked."""
    locked = [line for line in lines if line.lot_id is not None and not line.points_unlocked]
    if locked:
        points_unlock(
            lot_ids=[line.lot_id for line in locked],
            operation_key=ledger_key(event, "unlock"),
            actor=actor,
            now=event.created_at,
        )
        for line in locked:
            line.points_unlocked = True
    return locked


def points_reverse_lines(lines: list[OrderLine], event: OrderEvent, actor: Actor, reason: str) -> None:
    """Undo the lines' points: pending ones cancelled, unlocked ones clawed back (debt where already spent), and
    what was redeemed on them refunded to the very lots it came from (F-LED-6)."""
    pending = [line for line in lines if line.lot_id is not None and not line.points_unlocked]
    if pending:
        points_cancel_accrual(
            lot_ids=[line.lot_id for line in pending],
            operation_key=ledger_key(event, "cancel"),
            actor=actor,
            reason=reason,
            now=event.created_at,
        )
    for line in lines:
        if line.lot_id is not None and line.points_unlocked and line.points_to_earn > 0:
            points_clawback(
                lot_ids=[line.lot_id],
                amount=line.points_to_earn,
                operation_key=ledger_key(event, f"clawback:{line.pk}"),
                actor=actor,
                reason=reason,
                now=event.created_at,
            )
    refunds: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        if line.redemption_id is not None and line.points_redeemed > 0:
            refunds[line.redemption_id] += line.points_redeemed
    for redemption_id, amount in sorted(refunds.items()):
        points_refund(
            redemption_id=redemption_id,
            amount=amount,
            operation_key=ledger_key(event, f"refund:{redemption_id}"),
            actor=actor,
            reason=reason,
            now=event.created_at,
        )


def purchase_count(order: Order, lines: list[OrderLine], event: OrderEvent, sign: int) -> None:
    """Count the lines' amount towards the customer's tier (a return or a cancel after unlock: against it)."""
    amount = sum((line.amount for line in lines), ZERO)
    if order.customer_id is None or amount == 0:
        return
    purchase_record(
        customer=order.customer,
        amount=amount * sign,
        occurred_at=event.created_at,
        source_type="order_event",
        source_id=str(event.pk),
    )


def order_status_refresh(order: Order) -> None:
    """The order's status from its lines' (F-ORD-1)."""
    statuses = set(order.lines.values_list("status", flat=True))
    live = statuses - {OrderLine.Status.CANCELLED}
    if not live:
        status = Order.Status.CANCELLED
    elif live == {OrderLine.Status.RETURNED}:
        status = Order.Status.RETURNED
    elif OrderLine.Status.RETURNED in live:
        status = Order.Status.PARTIALLY_RETURNED
    elif live == {OrderLine.Status.DELIVERED}:
        status = Order.Status.DELIVERED
    elif OrderLine.Status.DELIVERED in live:
        status = Order.Status.PARTIALLY_DELIVERED
    else:
        status = Order.Status.PLACED
    if status != order.status:
        order.status = status
        order.save(update_fields=["status", "updated_at"])


def order_find(*, channel, number: str) -> Order:
    order = Order.objects.filter(channel=channel, number=number).first()
    if order is None:
        raise OrderNotFound(extra={"number": number})
    return order
