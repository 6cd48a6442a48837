"""Read queries about orders, shared by the API, the admin and the personal account.

An order is read with everything its representation shows in a fixed number of queries, whatever the number of
its lines, deliveries and payments: its lines come with their points lot (and where a merge moved it) and their
delivery (``select_related``), so the deliveries are the lines' and each line's points status is its lot's.
"""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from core.sql import RowReader
from customers.models import Customer
from integrations.models import Channel, Store
from orders.exceptions import OrderNotFound
from orders.models import Order, OrderLine, Payment
from points.models import Lot


class PointsStatus:
    """What became of a line's points, as the customer sees them."""

    PENDING = "pending"  # accrued, waiting for the line's delivery (or payment)
    AVAILABLE = "available"  # unlocked: spendable, or already spent or expired
    CANCELLED = "cancelled"  # the line was cancelled before its points unlocked
    CLAWED_BACK = "clawed_back"  # the line was returned after its points unlocked
    NONE = "none"  # the line earns nothing (no customer, nothing to earn, or excluded)

    values = (PENDING, AVAILABLE, CANCELLED, CLAWED_BACK, NONE)


def line_points_status(line: OrderLine) -> str:
    """The line's points status, from its lot (loaded with it: ``order_lines``) and its own status.

    A line closed after its points unlocked had them clawed back; its lot may still be active — a partial return
    takes back only the returned part's share of a lot the parts share —, so that is read from the line. A lot moved
    by a merge of customers is read where it went."""
    if line.lot_id is None:
        return PointsStatus.NONE
    closed = line.status in (OrderLine.Status.CANCELLED, OrderLine.Status.RETURNED)
    if closed:
        return PointsStatus.CLAWED_BACK if line.points_unlocked else PointsStatus.CANCELLED
    lot = line.lot
    if lot.state == Lot.State.MOVED:
        lot = lot.moved_to
    if lot.state == Lot.State.CANCELLED:
        return PointsStatus.CANCELLED
    if lot.state == Lot.State.PENDING:
        return PointsStatus.PENDING
    if lot.state == Lot.State.MOVED:  # merged twice: its second copy is not loaded, the line knows enough
        return PointsStatus.AVAILABLE if line.points_unlocked else PointsStatus.PENDING
    return PointsStatus.AVAILABLE  # active, spent or expired


def order_lines() -> QuerySet[OrderLine]:
    """Lines as the representation needs them: with their lot and delivery, in line order."""
    return OrderLine.objects.select_related("lot__moved_to", "delivery").order_by("line_number", "part")


def _order_queryset() -> QuerySet[Order]:
    return Order.objects.select_related("channel", "parent", "store")


def order_get(*, channel: Channel, number: str) -> Order:
    """The ``channel``'s order ``number`` with what its representation shows, in three queries: the order (with
    its channel, parent and store), its lines (with lots and deliveries), its payments. A delivery sub-order's
    lines are those it delivered (they belong to its parent); it has no payments of its own. Or ``OrderNotFound``.
    """
    order = _order_queryset().filter(channel=channel, number=number).first()
    if order is None:
        raise OrderNotFound(extra={"number": number})
    order_prefetch([order])
    return order


def order_reload(*, order_id: int) -> Order:
    """An order just changed by a service, read again for its representation (see ``order_get``)."""
    order = _order_queryset().get(pk=order_id)
    order_prefetch([order])
    return order


def order_prefetch(orders: list[Order]) -> None:
    """Load the lines and payments of ``orders`` (delivery sub-orders: their delivered lines) as ``loaded_lines``
    and ``loaded_payments`` — two queries for any number of orders. Their deliveries are read from the lines
    (every delivery has delivered lines): ``order_deliveries``."""
    parents = [order for order in orders if order.kind == Order.Kind.ORDER]
    deliveries = [order for order in orders if order.kind == Order.Kind.DELIVERY]
    prefetch_related_objects(
        parents,
        Prefetch("lines", queryset=order_lines(), to_attr="loaded_lines"),
        Prefetch("payments", queryset=Payment.objects.order_by("paid_at", "pk"), to_attr="loaded_payments"),
    )
    prefetch_related_objects(deliveries, Prefetch("delivered_lines", queryset=order_lines(), to_attr="loaded_lines"))
    for order in deliveries:
        order.loaded_payments = []


def order_loaded(order: Order, lines: list[OrderLine], payments: list[Payment]) -> Order:
    """An order a service has just written, with its lines and payments as ``order_prefetch`` would load them —
    from the rows the service holds, so its answer needs no query: ``lines`` are all the order's lines (a
    delivery's: those it delivered) with their lots (``lines_lots_load``) and deliveries, ``payments`` all its
    payments."""
    order.loaded_lines = sorted(lines, key=lambda line: (line.line_number, line.part))
    order.loaded_payments = sorted(payments, key=lambda payment: (payment.paid_at, payment.pk))
    return order


_PAYMENT = RowReader(Payment)


def order_payments(order: Order) -> list[Payment]:
    """``list(order.payments.all())`` by a plain statement (the answer of a cancellation or return reads them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_PAYMENT.columns('p')} FROM {Payment._meta.db_table} AS p"
            f" WHERE p.{connection.ops.quote_name(Payment.order.field.column)} = %s",
            [order.pk],
        )
        payments = [_PAYMENT.instance(row) for row in cursor.fetchall()]
    for payment in payments:
        Payment.order.field.set_cached_value(payment, order)
    return payments


def lines_lots_load(lines: list[OrderLine]) -> None:
    """Attach to ``lines`` their lots as ``line_points_status`` reads them (state, and where a merge moved them),
    in one narrow query: the rows the ledger wrote are not the ones the lines hold — except those it handed back
    (``lot_fresh``: a lot the ledger just unlocked, not moved by a merge)."""
    lot_ids = {line.lot_id for line in lines if line.lot_id is not None and not getattr(line, "lot_fresh", False)}
    if not lot_ids:
        return
    lots = {}
    for pk, state, moved_to_id, moved_state in _lot_states(list(lot_ids)):
        lot = Lot(pk=pk, state=state, moved_to_id=moved_to_id)
        if moved_to_id is not None:
            lot.moved_to = Lot(pk=moved_to_id, state=moved_state)
        lots[pk] = lot
    for line in lines:
        if line.lot_id in lots:
            line.lot = lots[line.lot_id]


LOT_STATES_SQL = (
    f"SELECT l.id, l.state, l.moved_to_id, m.state FROM {Lot._meta.db_table} AS l"
    f" LEFT JOIN {Lot._meta.db_table} AS m ON m.id = l.moved_to_id WHERE l.id = ANY(%s)"
)


def _lot_states(lot_ids: list[int]) -> list[tuple]:
    """(id, state, moved_to_id, the moved-to lot's state) of the lots: a plain statement on PostgreSQL (every order
    operation's answer reads them; the ORM took longer to build the query than to run it)."""
    if connection.vendor != "postgresql":
        return list(Lot.objects.filter(pk__in=lot_ids).values_list("pk", "state", "moved_to_id", "moved_to__state"))
    with connection.cursor() as cursor:
        cursor.execute(LOT_STATES_SQL, [lot_ids])
        return cursor.fetchall()


def order_deliveries(order: Order) -> list[tuple[Order, list[OrderLine]]]:
    """The delivery sub-orders of a loaded order (``order_prefetch``) with the lines each delivered, oldest
    first. No query: a delivery is known through the lines it delivered."""
    if order.kind != Order.Kind.ORDER:
        return []
    found: dict[int, tuple[Order, list[OrderLine]]] = {}
    for line in order.loaded_lines:
        if line.delivery_id is not None:
            found.setdefault(line.delivery_id, (line.delivery, []))[1].append(line)
    return sorted(found.values(), key=lambda item: (item[0].created_at, item[0].pk))


def customer_orders(*, customer: Customer) -> QuerySet[Order]:
    """The customer's orders for the personal account: parent orders only (their deliveries are shown inside
    them), newest first. Load a page's lines and payments with ``order_prefetch``."""
    return (
        Order.objects.select_related("channel", "store")
        .filter(customer=customer, kind=Order.Kind.ORDER)
        .order_by("-created_at", "-pk")
    )


# --- the order a change locks, read by plain statements ------------------------------------------------------------
# Every delivery, cancellation, return and payment reads its order with its parties, then its lines: building these
# two ORM queries (a three-way join, the lines in order) cost more than PostgreSQL took to run them.

_ORDER, _LINE = RowReader(Order), RowReader(OrderLine)
_PARTIES = ((Order.customer.field, RowReader(Customer)), (Order.channel.field, RowReader(Channel)))
_PARTIES += ((Order.store.field, RowReader(Store)),)
assert all(reader.fields[0].primary_key for _field, reader in _PARTIES)  # _order_read compares the first column


@cache
def _order_sql() -> str:
    tables = {field: field.related_model._meta.db_table for field, _reader in _PARTIES}
    columns = ", ".join(
        [_ORDER.columns("o"), *(reader.columns(f"p{index}") for index, (_field, reader) in enumerate(_PARTIES))]
    )
    joins = " ".join(
        f"LEFT JOIN {tables[field]} AS p{index} ON p{index}.id = o.{connection.ops.quote_name(field.column)}"
        for index, (field, _reader) in enumerate(_PARTIES)
    )
    return f"SELECT {columns} FROM {Order._meta.db_table} AS o {joins}"


def order_with_parties(*, order_id: int) -> Order:
    """``Order.objects.select_related("customer", "channel", "store").get(pk=order_id)``: ``OrderNotFound`` if none."""
    order, _parties_as_named = _order_read("o.id = %s", [order_id], lock=False)
    if order is None:
        raise OrderNotFound()
    return order


def order_locked_with_parties(*, order_id: int | None = None, channel_id: int = 0, number: str = "") -> Order:
    """``order_with_parties`` — by id, or by the channel's ``number`` —, the order row-locked for the rest of the
    transaction by the same statement. ``OrderNotFound`` if there is none.

    A locking statement that waited for another transaction re-checks only the locked row, with its latest version:
    the joined parties stay as first read. So when the locked row names a party other than the one joined (a
    customer attached meanwhile), the parties are read again by a statement of their own. The transactions that
    hold an order's lock change its parties only through the order row itself (``order_attach_customer``)."""
    if order_id is not None:
        order, parties_as_named = _order_read("o.id = %s", [order_id], lock=True)
    else:
        order, parties_as_named = _order_read("o.channel_id = %s AND o.number = %s", [channel_id, number], lock=True)
    if order is None:
        raise OrderNotFound(extra={"number": number} if order_id is None else None)
    return order if parties_as_named else order_with_parties(order_id=order.pk)


def _order_read(condition: str, parameters: list, *, lock: bool) -> tuple[Order | None, bool]:
    """The order meeting ``condition`` (None if none) with its parties, and whether each party joined is the one the
    order row names."""
    sql = f"{_order_sql()} WHERE {condition}"
    if lock and connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF o"
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        row = cursor.fetchone()
    if row is None:
        return None, True
    start = len(_ORDER.fields)
    order = _ORDER.instance(row[:start])
    parties_as_named = True
    for field, reader in _PARTIES:
        values = row[start : start + len(reader.fields)]
        start += len(reader.fields)
        party_id = getattr(order, field.attname)
        if party_id is not None and values[0] != party_id:  # the first column is the party's id
            parties_as_named = False
        # A missing party (no customer, no store) joins as NULLs: cached as None, as select_related does.
        field.set_cached_value(order, None if party_id is None else reader.instance(values))
    return order, parties_as_named


@cache
def lines_select(deliveries: bool) -> tuple[str, str, str]:
    """The columns, the table (``l``) and the joins (``d``, its delivery) of the order's lines as ``lines_from`` reads
    them; ``l.order_id`` names the order."""
    quote = connection.ops.quote_name
    delivery_column = quote(OrderLine.delivery.field.column)
    columns, table, joins = _LINE.columns("l"), f"{quote(OrderLine._meta.db_table)} AS l", ""
    if deliveries:
        columns += f", {_ORDER.columns('d')}"
        joins = f" LEFT JOIN {quote(Order._meta.db_table)} AS d ON d.id = l.{delivery_column}"
    return columns, table, joins


LINES_ORDER = "ORDER BY l.line_number, l.part"


@cache
def _lines_sql(deliveries: bool) -> str:
    columns, table, joins = lines_select(deliveries)
    order_column = connection.ops.quote_name(OrderLine.order.field.column)
    return f"SELECT {columns} FROM {table}{joins} WHERE l.{order_column} = %s {LINES_ORDER}"


def order_lines_of(order: Order, *, deliveries: bool = False) -> list[OrderLine]:
    """``list(order.lines.order_by("line_number", "part"))`` (with ``deliveries``: ``.select_related("delivery")``);
    each line's ``order`` is ``order``."""
    with connection.cursor() as cursor:
        cursor.execute(_lines_sql(deliveries), [order.pk])
        rows = cursor.fetchall()
    return lines_from(rows, order, deliveries=deliveries)


def lines_from(rows, order: Order, *, deliveries: bool) -> list[OrderLine]:
    """The lines of rows of ``lines_select``'s columns; each line's ``order`` is ``order``."""
    split = len(_LINE.fields)
    lines = []
    for row in rows:
        line = _LINE.instance(row[:split])
        OrderLine.order.field.set_cached_value(line, order)
        if deliveries:
            delivery = None if line.delivery_id is None else _ORDER.instance(row[split:])
            OrderLine.delivery.field.set_cached_value(line, delivery)
        lines.append(line)
    return lines


_NAMED = RowReader(Order, "id", "kind", "parent_id")


@cache
def _named_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {_NAMED.columns('o')} FROM {quote(Order._meta.db_table)} AS o "
        f"WHERE o.{quote(Order.channel.field.column)} = %s AND o.number = %s ORDER BY o.created_at DESC, o.id DESC"
    )


def order_named(*, channel: Channel, number: str) -> Order | None:
    """``Order.objects.filter(channel=channel, number=number).only("pk", "kind", "parent_id").first()``: the order a
    channel call names in its path, only to name it to a service (which locks and reads it)."""
    with connection.cursor() as cursor:
        cursor.execute(_named_sql(), [channel.pk, number])
        row = cursor.fetchone()
    return None if row is None else _NAMED.instance(row)
