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
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from core.actors import Actor
from core.sql import default_database, insert, insert_unless_taken, insert_unless_taken_statement, inserted_as
from orders.exceptions import (
    OperationConflict,
    OrderInvalid,
    OrderLineUnknown,
    OrderNotFound,
    QuantityExceeded,
)
from orders.models import ZERO, Order, OrderEvent, OrderLine
from orders.selectors import LINES_ORDER, lines_from, lines_select, order_lines_of, order_locked_with_parties
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


@dataclass(frozen=True)
class OrderNumber:
    """An order named by its channel's number, as a channel call names it: locked and read by one statement
    (``order_lock``), with no read of it before."""

    channel_id: int
    number: str


def order_lock(order: Order | OrderNumber) -> Order:
    """The order (an instance, or named by its number), row-locked for the rest of the transaction: every change of
    one order queues here, before any ledger lock (always order first, then accounts — no deadlock). With its
    parties: a delivery copies its channel, store and customer, and the answer shows their codes. ``OrderNotFound``
    if none."""
    if isinstance(order, OrderNumber):
        return order_locked_with_parties(channel_id=order.channel_id, number=order.number)
    return order_locked_with_parties(order_id=order.pk)


def event_claim(**claim) -> tuple[OrderEvent, bool]:
    """The event ``order_event(**claim)`` describes, new — or (event, True) when its ``operation_key`` was used before
    for the same change: the caller replays it. The same key for another change is ``order_operation_conflict``.
    Under the order lock."""
    event = order_event(**claim)
    if insert_unless_taken(event):
        return event, False
    return event_claimed_before(event), True


def order_event(
    *,
    order: Order,
    kind: str,
    operation_key: str,
    fingerprint_: str,
    actor: Actor,
    at: datetime,
    reason: str = "",
    lines: list | None = None,
) -> OrderEvent:
    """An order's event, unsaved: what ``event_claim`` claims."""
    return OrderEvent(
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


def event_claimed_before(event: OrderEvent) -> OrderEvent:
    """The event that took ``event``'s key (committed, or waited for), if it was for the same change; else
    ``order_operation_conflict``."""
    existing = OrderEvent.objects.get(operation_key=event.operation_key)
    if existing.fingerprint != event.fingerprint or existing.order_id != event.order_id:
        raise OperationConflict()
    return existing


def event_claim_reading_lines(*, deliveries: bool = False, **claim) -> tuple[OrderEvent, bool, list[OrderLine]]:
    """``event_claim(**claim)`` and, for a new event, the order's lines (``order_lines_of``): one statement on
    PostgreSQL, the event's insert in a CTE (a delivery, cancellation or return claims its event, then reads the
    lines it changes: two round trips). A replay gets no lines."""
    order = claim["order"]
    if connection.vendor != "postgresql":
        event, replayed = event_claim(**claim)
        return event, replayed, [] if replayed else order_lines_of(order, deliveries=deliveries)
    event = order_event(**claim)
    insert_sql, values = insert_unless_taken_statement(event, connection.alias)
    columns, table, joins = lines_select(deliveries)
    sql = (
        f"WITH claimed AS ({insert_sql}) SELECT (SELECT id FROM claimed), {columns} "
        f"FROM (SELECT 1) AS one LEFT JOIN {table} ON l.order_id = %s{joins} {LINES_ORDER}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, order.pk])
        rows = cursor.fetchall()
    if not inserted_as(event, rows[0][0], connection.alias):
        return event_claimed_before(event), True, []
    return event, False, lines_from([row[1:] for row in rows if row[1] is not None], order, deliveries=deliveries)


def ledger_key(event: OrderEvent, suffix: str) -> str:
    return f"order-event:{event.pk}:{suffix}"


def share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``part``/``whole`` of ``total``, rounded down to cents: what remains stays with the original line."""
    if part == whole:
        return total
    return (total * part / whole).quantize(CENT, rounding=ROUND_DOWN)


def lines_take(
    order: Order,
    requested: list[LineRequest],
    statuses: set[str],
    wrong_status,
    *,
    deliveries: bool = False,
    held: list[OrderLine] | None = None,
) -> tuple[list[tuple], list[OrderLine]]:
    """The order's line parts that ``requested`` names, as (part, quantity taken), in line order, and every line of
    the order as read (for its status: ``order_status_refresh``). A line number the order lacks is
    ``order_line_unknown``; one with nothing in ``statuses`` raises ``wrong_status``; a quantity above what is left
    in them ``order_line_quantity_exceeded`` — each naming the request's field. ``deliveries``: the lines come
    with their delivery sub-orders (for an answer built from them: ``order_answered``). ``held``: every line of the
    order, read already (``event_claim_reading_lines``)."""
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
    if held is None:
        held = order_lines_of(order, deliveries=deliveries)  # all of them: a handful, in the same one query
    for line in held:
        by_number[line.line_number].append(line)
    for parts in by_number.values():
        for line in parts:  # every part of the number is here: a split needs no query for the next part
            line.last_part = parts[-1].part
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
    return taken, held


def line_split(
    line: OrderLine, quantity: Decimal, event: OrderEvent, last_parts: dict[int, int] | None = None
) -> OrderLine:
    """Split ``quantity`` off ``line`` into a new part with its shares of the amount and points; a pending lot is
    split with it (the part's points go their own way), an unlocked one is shared (a partial return takes back
    the part's share of it). ``last_parts``: the highest part of each line number, when known (``lines_take``)."""
    if quantity >= line.quantity:
        return line
    amount = share(line.amount, quantity, line.quantity)
    redeemed = min(share(line.points_redeemed, quantity, line.quantity), amount)
    earned = share(line.points_to_earn, quantity, line.quantity)
    last = (last_parts or {}).get(line.line_number)
    if last is None:
        last = OrderLine.objects.filter(order_id=line.order_id, line_number=line.line_number).aggregate(m=Max("part"))[
            "m"
        ]
    if last_parts is not None:
        last_parts[line.line_number] = last + 1
    # By ids: the related rows are not loaded, and reading them would cost a query each.
    part = OrderLine(
        order_id=line.order_id,
        line_number=line.line_number,
        part=last + 1,
        split_from_id=line.split_from_id or line.pk,
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
        delivery_id=line.delivery_id,
        lot_id=line.lot_id,
        redemption_id=line.redemption_id,
        points_unlocked=line.points_unlocked,
        delivered_at=line.delivered_at,
        closed_at=line.closed_at,
        reason=line.reason,
    )
    insert(part)
    if line.lot_id is not None and line.status != OrderLine.Status.CANCELLED and not line.points_unlocked:
        if earned > 0:
            operation = points_split_pending(
                actor=Actor(channel=event.actor_channel, user=event.actor_user),
                now=event.created_at,
                lot_id=line.lot_id,
                amount=earned,
                source_id=str(part.pk),
                operation_key=ledger_key(event, f"split:{part.pk}"),
                savepoint=False,
            )
            part.lot = operation.lot
        else:
            part.lot = None
        lines_update([part], ["lot"])
    line.quantity -= quantity
    line.amount -= amount
    line.points_redeemed -= redeemed
    line.points_to_earn -= earned
    lines_update([line], ["quantity", "amount", "points_redeemed", "points_to_earn"])
    return part


def lines_split(taken: list[tuple[OrderLine, Decimal]], event: OrderEvent) -> list[OrderLine]:
    known = [line for line, _quantity in taken if hasattr(line, "last_part")]
    last_parts = {line.line_number: line.last_part for line in known} if len(known) == len(taken) else None
    return [line_split(line, quantity, event, last_parts) for line, quantity in taken]


LINES_UPDATE_SQL = (
    "UPDATE orders_orderline AS line SET {sets} FROM (VALUES {rows}) AS v (id, {names}) WHERE line.id = v.id"
)


def lines_update(lines: list[OrderLine], fields: list[str]) -> None:
    """``OrderLine.objects.bulk_update(lines, fields)`` as one plain statement on PostgreSQL: the ORM's CASE/WHEN
    per line and field costs more to build than the order's ledger work (the lots: ``journal.lots_update``)."""
    if not lines:
        return
    if connection.vendor != "postgresql":
        OrderLine.objects.bulk_update(lines, fields)
        return
    database = default_database()
    model_fields = [OrderLine._meta.get_field(name) for name in fields]
    columns = [field.column for field in model_fields]
    row = "(%s::bigint, " + ", ".join(f"%s::{field.cast_db_type(database)}" for field in model_fields) + ")"
    parameters = []
    for line in lines:
        parameters.append(line.pk)
        parameters.extend(field.get_db_prep_save(getattr(line, field.attname), database) for field in model_fields)
    sql = LINES_UPDATE_SQL.format(
        sets=", ".join(f'"{column}" = v."{column}"' for column in columns),
        rows=", ".join([row] * len(lines)),
        names=", ".join(f'"{column}"' for column in columns),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)


def points_unlock_lines(lines: list[OrderLine], event: OrderEvent, actor: Actor) -> list[OrderLine]:
    """Make the lines' pending points spendable; the lines that were unlocked."""
    locked = [line for line in lines if line.lot_id is not None and not line.points_unlocked]
    if locked:
        operations = points_unlock(
            lot_ids=[line.lot_id for line in locked],
            operation_key=ledger_key(event, "unlock"),
            actor=actor,
            now=event.created_at,
            savepoint=False,  # keys of the order's event: see points.services.journal
        )
        # The lots as the ledger left them, for the answer (``lines_lots_load`` reads the others).
        after = {lot.pk: lot for operation in operations for lot in operation.lots}
        for line in locked:
            line.points_unlocked = True
            if line.lot_id in after:
                line.lot = after[line.lot_id]
                line.lot_fresh = True
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
            savepoint=False,
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
                savepoint=False,
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
            savepoint=False,
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


def order_status_refresh(order: Order, lines: list[OrderLine] | None = None) -> None:
    """The order's status from its lines' (F-ORD-1): ``lines`` when the caller holds all of them, else read."""
    if lines is not None:
        statuses = {line.status for line in lines}
    else:
        statuses = set(order.lines.values_list("status", flat=True))
    _order_update(order, _status_of(statuses))


def order_status_refresh_with_result(order: Order, lines: list[OrderLine], event: OrderEvent, result: Order) -> None:
    """``order_status_refresh(order, lines)`` and the ``result`` of ``event`` recorded: one statement on PostgreSQL."""
    event.result = result
    _order_update(order, _status_of({line.status for line in lines}), event)


EVENT_RESULT_SQL = f"UPDATE {OrderEvent._meta.db_table} SET result_id = %s WHERE id = %s"
ORDER_STATUS_SQL = f"UPDATE {Order._meta.db_table} SET status = %s, updated_at = %s WHERE id = %s"


def _order_update(order: Order, status: str, event: OrderEvent | None = None) -> None:
    """The order's new ``status`` (if it changed) and ``event``'s result written: as plain statements on PostgreSQL,
    both in one (every order operation ends here; the ORM's updates cost more to build than to run)."""
    changed = status != order.status
    if changed:
        order.status, order.updated_at = status, timezone.now()  # as save(update_fields=...) would (auto_now)
    if connection.vendor != "postgresql":
        if event is not None:
            OrderEvent.objects.filter(pk=event.pk).update(result=event.result)
        if changed:
            Order.objects.filter(pk=order.pk).update(status=status, updated_at=order.updated_at)
        return
    statements, parameters = [], []
    if event is not None:
        statements.append(EVENT_RESULT_SQL)
        parameters += [event.result_id, event.pk]
    if changed:
        statements.append(ORDER_STATUS_SQL)
        parameters += [status, order.updated_at, order.pk]
    if not statements:
        return
    sql = statements[0] if len(statements) == 1 else f"WITH event AS ({statements[0]}) {statements[1]}"
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)


def _status_of(statuses: set[str]) -> str:
    live = statuses - {OrderLine.Status.CANCELLED}
    if not live:
        return Order.Status.CANCELLED
    if live == {OrderLine.Status.RETURNED}:
        return Order.Status.RETURNED
    if OrderLine.Status.RETURNED in live:
        return Order.Status.PARTIALLY_RETURNED
    if live == {OrderLine.Status.DELIVERED}:
        return Order.Status.DELIVERED
    if OrderLine.Status.DELIVERED in live:
        return Order.Status.PARTIALLY_DELIVERED
    return Order.Status.PLACED


def order_find(*, channel, number: str) -> Order:
    order = Order.objects.filter(channel=channel, number=number).first()
    if order is None:
        raise OrderNotFound(extra={"number": number})
    return order
