"""Placing an order (F-ORD-1, F-ORD-8, F-ORD-9, F-EARN-4, F-LED-10)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.actors import SYSTEM, Actor
from core.sql import default_database, insert, insert_unless_taken_statement, inserted_as
from customers.models import Customer
from integrations.models import Channel, Store
from orders.exceptions import (
    CalculationInvalid,
    HoldNotForCustomer,
    OfflineRedemptionNotHeld,
    OrderExists,
    OrderInvalid,
    PriceChanged,
    RedemptionNeedsCustomer,
)
from orders.models import ZERO, Order, OrderEvent, OrderLine, Payment
from orders.selectors import order_loaded, order_named
from orders.services.common import (
    LOT_SOURCE,
    event_claim,
    event_claimed_before,
    ledger_key,
    lines_update,
    order_event,
    order_status_refresh,
    purchase_count,
    request_fingerprint,
)
from points.models import Hold, LotKind
from points.services import points_accrue_lots, points_hold_commit, points_redeem
from programmes.calculator import CartLine, CartResult, CustomerState, cart_calculate
from programmes.calculator.reference import calculation_read
from programmes.models import OperationType


@dataclass(frozen=True)
class NewLine:
    line_number: int
    sku: str
    quantity: Decimal
    price: Decimal
    discount_percent: Decimal = Decimal("0")
    name: str = ""
    category: str | None = None
    operation_type: str = OperationType.PURCHASE
    new_arrival: bool | None = None
    attributes: dict = field(default_factory=dict)

    def cart_line(self) -> CartLine:
        return CartLine(
            sku=self.sku,
            quantity=self.quantity,
            price=self.price,
            discount_percent=self.discount_percent,
            operation_type=self.operation_type,
            name=self.name,
            category=self.category,
            new_arrival=self.new_arrival,
        )


@dataclass(frozen=True)
class NewPayment:
    external_id: str
    method: str
    amount: Decimal
    paid_at: datetime | None = None


@dataclass
class Placed:
    order: Order
    replayed: bool = False


def order_place(
    *,
    channel: Channel,
    number: str,
    lines: list[NewLine],
    operation_key: str,
    customer: Customer | None = None,
    phone: str = "",
    card_number: str = "",
    store: Store | None = None,
    seller: str = "",
    created_at: datetime | None = None,
    offline: bool = False,
    delivered: bool = False,
    redeem: Decimal | None = None,
    hold_id: int | None = None,
    calculation: str = "",
    payments: list[NewPayment] = (),
    actor: Actor = SYSTEM,
    now: datetime | None = None,
    state: CustomerState | None = None,
) -> Placed:
    """Place an order: calculate it (as of ``created_at`` for an ``offline`` till), spend ``redeem`` points —
    or commit the checkout's hold ``hold_id`` — spread over the lines by their caps, and accrue each line's points
    as a pending lot of its own (active at once for a sale ``delivered`` at the till).

    The number is the channel's and unique per channel: the same number with the same content replays the first
    result (an offline till that sends twice), with other content is ``order_exists``. ``calculation`` (from
    the cart calculation) must match the lines, else ``price_changed``. All or nothing: one transaction.
    ``state``: the customer's state for the calculation, when the caller read it with the customer (``cart_read``)."""
    now = now or timezone.now()
    _lines_validate(lines)
    fingerprint_ = request_fingerprint(
        number=number,
        lines=[asdict(line) for line in lines],
        # The identifiers as sent: a till's resend after the phone's holder joined is the same order.
        customer=customer.pk if customer and not (phone or card_number) else None,
        phone=str(phone or ""),
        card=card_number,
        store=store.pk if store else None,
        seller=seller,
        created_at=created_at,
        offline=offline,
        delivered=delivered,
        redeem=redeem,
        hold=hold_id,
        payments=[asdict(payment) for payment in payments],
    )
    created_at = created_at or now  # after the fingerprint: a retry without a time is the same order
    if order_named(channel=channel, number=number) is not None:  # a plain statement: the usual answer is no
        return _replay(Order.objects.get(channel=channel, number=number), fingerprint_)
    if calculation:
        _price_guard(calculation, customer, lines)
    hold = _hold_for(hold_id, customer)
    if hold is not None and redeem is None:
        redeem = hold.amount
    redeem = redeem or ZERO
    if redeem > 0 and customer is None:
        raise RedemptionNeedsCustomer()
    if redeem > 0 and offline and hold is None:
        raise OfflineRedemptionNotHeld()
    result = cart_calculate(
        customer=customer,
        lines=[line.cart_line() for line in lines],
        channel=channel,
        store=store,
        at=created_at if offline else None,
        redeem=redeem,
        first_order=None,
        # Held points are no longer available, but they are this order's to spend.
        held=hold.amount if hold is not None else ZERO,
        state=state,
    )
    try:
        with transaction.atomic():
            return _place(
                channel=channel,
                number=number,
                lines=lines,
                result=result,
                customer=customer,
                phone=phone,
                card_number=card_number,
                store=store,
                seller=seller,
                created_at=created_at,
                offline=offline,
                delivered=delivered,
                redeem=redeem,
                hold=hold,
                payments=payments,
                operation_key=operation_key,
                fingerprint_=fingerprint_,
                actor=actor,
                now=now,
            )
    except IntegrityError:
        # The same number placed concurrently: ours waited for theirs, which is now committed.
        existing = Order.objects.filter(channel=channel, number=number).first()
        if existing is None:
            raise
        return _replay(existing, fingerprint_)


def _place(
    *,
    channel,
    number,
    lines,
    result: CartResult,
    customer,
    phone,
    card_number,
    store,
    seller,
    created_at,
    offline,
    delivered,
    redeem,
    hold,
    payments,
    operation_key,
    fingerprint_,
    actor,
    now,
) -> Placed:
    on_payment = all(line.operation_type in result.unlock_on_payment for line in lines)
    order = Order(
        channel=channel,
        number=number,
        store=store,
        seller=seller,
        customer=customer,
        phone=None if customer else (phone or None),
        card_number="" if customer else card_number,
        unlocks_on=Order.UnlocksOn.PAYMENT if on_payment else Order.UnlocksOn.DELIVERY,
        offline=offline,
        created_at=created_at,
        total_amount=result.total_amount,
        points_redeemed=result.redeem,
        points_to_earn=result.earn_points,
        hold=hold,
        request_fingerprint=fingerprint_,
    )
    ids_taken = connection.vendor == "postgresql"
    claim = {"kind": OrderEvent.Kind.PLACE, "operation_key": operation_key, "fingerprint_": fingerprint_}
    if ids_taken:
        line_ids, event = _order_insert(order, len(lines), order_event(order=order, actor=actor, at=now, **claim))
    else:
        order.save(force_insert=True)  # Order.objects.create
        line_ids = [None] * len(lines)
        event, _replayed = event_claim(order=order, actor=actor, at=now, **claim)
    redemption = None
    points_payment = None
    if result.redeem > 0:
        key = ledger_key(event, "redeem")
        if hold is not None:
            operation = points_hold_commit(
                hold_id=hold.pk, amount=result.redeem, operation_key=key, actor=actor, now=now, savepoint=False
            )
        else:
            operation = points_redeem(
                customer=customer,
                amount=result.redeem,
                first_order=result.first_order,
                operation_key=key,
                actor=actor,
                now=now,
                savepoint=False,  # the order's event key: no other call races it; no error is caught here
            )
        redemption = operation.entries[0]
        points_payment = Payment(
            order=order,
            external_id=f"points:{event.pk}",
            method=Payment.Method.POINTS,
            amount=result.redeem,
            paid_at=now,
        )
        if not ids_taken:
            insert(points_payment)  # on PostgreSQL: with the lines
    order_lines = [
        OrderLine(
            pk=line_id,
            order=order,
            line_number=line.line_number,
            sku=calculated.sku,
            name=calculated.name,
            category=calculated.category or "",
            attributes=line.attributes,
            operation_type=calculated.operation_type,
            price=calculated.price,
            discount_percent=calculated.discount_percent,
            quantity=calculated.quantity,
            amount=calculated.amount,
            points_redeemed=calculated.redeem,
            points_to_earn=calculated.earn_points,
            redemption=redemption if calculated.redeem > 0 else None,
            status=OrderLine.Status.DELIVERED if delivered else OrderLine.Status.PLACED,
            delivered_at=created_at if delivered else None,
        )
        for line, calculated, line_id in zip(lines, result.lines, line_ids, strict=True)
    ]
    unlock_now = delivered and not on_payment
    if not ids_taken:
        OrderLine.objects.bulk_create(order_lines)
        lines_accrue(order, order_lines, event, actor, active=unlock_now)
    else:
        # The lines' ids were taken with the order: their lots first, then the lines with them (no update after).
        lines_accrue(order, order_lines, event, actor, active=unlock_now, update=False)
        _lines_insert(order_lines, points_payment)
    if unlock_now:
        purchase_count(order, order_lines, event, +1)
    if payments:
        from orders.services.payments import payments_record

        payments_record(order, payments, event, actor, now)
        order_status_refresh(order)
        return Placed(order)  # payments may have unlocked points: the answer reads the order again
    order_status_refresh(order, order_lines)
    # The answer from the rows just written (each line's lot is the one the ledger created for it).
    order_loaded(order, order_lines, [points_payment] if points_payment is not None else [])
    return Placed(order)


def lines_accrue(
    order: Order,
    lines: list[OrderLine],
    event: OrderEvent,
    actor: Actor,
    *,
    active: bool,
    key: str = "accrue",
    update: bool = True,
) -> None:
    """Each earning line's points as a lot of its own, tied to it: pending, or ``active`` at once. The lines are
    updated with their lots, unless not ``update`` (lines not inserted yet: their insert carries the lots)."""
    earning = [line for line in lines if line.points_to_earn > 0]
    if order.customer_id is None or not earning:
        return
    operation = points_accrue_lots(
        customer=order.customer,
        lots=[(line.points_to_earn, str(line.pk)) for line in earning],
        kind=_lot_kind(earning),
        source_type=LOT_SOURCE,
        pending=not active,
        operation_key=ledger_key(event, key),
        actor=actor,
        now=event.created_at,
        # Every caller is in the order's transaction, catches nothing the ledger raises and claimed the event
        # the key comes from: no savepoint needed (two round trips).
        savepoint=False,
    )
    for line, lot in zip(earning, operation.lots, strict=True):
        line.lot = lot
        line.points_unlocked = active
    if update:
        lines_update(earning, ["lot", "points_unlocked"])


# The order's insert, as the ORM's (``pre_save`` fills the auto dates), also taking its lines' ids, in their order:
# so their lots (which name them) can be accrued before the lines are inserted with them, not updated after. And the
# order's event claimed under its id (``event_claim``'s insert) by the same statement.
_ORDER_FIELDS = [field for field in Order._meta.concrete_fields if not field.primary_key]
_EVENT_FIELDS = [field for field in OrderEvent._meta.concrete_fields if not field.primary_key]
ORDER_INSERT_SQL = (
    "WITH o AS (INSERT INTO orders_order ({columns}) VALUES ({values}) RETURNING id, ARRAY("
    "SELECT nextval(pg_get_serial_sequence('orders_orderline', 'id')) FROM generate_series(1, %s::integer) ORDER BY 1"
    ") AS line_ids), "
    "event AS (INSERT INTO orders_orderevent ({event_columns}) SELECT {event_values} FROM o "
    "ON CONFLICT DO NOTHING RETURNING id) "
    "SELECT o.id, o.line_ids, (SELECT id FROM event) FROM o"
).format(
    columns=", ".join(f'"{field.column}"' for field in _ORDER_FIELDS),
    values=", ".join(["%s"] * len(_ORDER_FIELDS)),
    event_columns=", ".join(f'"{field.column}"' for field in _EVENT_FIELDS),
    event_values=", ".join("o.id" if field.name == "order" else "%s" for field in _EVENT_FIELDS),
)


def _order_insert(order: Order, line_count: int, event: OrderEvent) -> tuple[list[int], OrderEvent]:
    """Insert ``order`` (PostgreSQL) and claim its ``event``: ids for its ``line_count`` lines, and the event (a
    key taken by another order's event is ``order_operation_conflict``)."""
    database = default_database()
    values = [field.get_db_prep_save(field.pre_save(order, True), database) for field in _ORDER_FIELDS]
    event_values = [
        field.get_db_prep_save(field.pre_save(event, True), database)
        for field in _EVENT_FIELDS
        if field.name != "order"
    ]
    with connection.cursor() as cursor:
        cursor.execute(ORDER_INSERT_SQL, [*values, line_count, *event_values])
        order.pk, line_ids, event_id = cursor.fetchone()
    order._state.adding = False
    order._state.db = connection.alias
    event.order = order  # now with its id
    if not inserted_as(event, event_id, connection.alias):
        event = event_claimed_before(event)
    return line_ids, event


def _lines_insert(lines: list[OrderLine], payment: Payment | None = None) -> None:
    """``OrderLine.objects.bulk_create(lines)`` for lines with their ids (PostgreSQL), as one plain statement:
    same rows, values prepared as the ORM's insert prepares them; building the ORM's insert cost more. ``payment``
    (the points' payment of the order) is inserted by the same statement: a round trip less per placement."""
    if not lines:
        if payment is not None:
            insert(payment)
        return
    fields = OrderLine._meta.concrete_fields
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = "INSERT INTO orders_orderline ({columns}) VALUES {rows}".format(
        columns=", ".join(f'"{field.column}"' for field in fields), rows=", ".join([row] * len(lines))
    )
    database = default_database()
    parameters = [field.get_db_prep_save(field.pre_save(line, True), database) for line in lines for field in fields]
    if payment is not None:
        payment_sql, payment_values = insert_unless_taken_statement(payment, connection.alias)
        sql = f"WITH payment AS ({payment_sql}) {sql} RETURNING (SELECT id FROM payment)"
        parameters = [*payment_values, *parameters]
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        payment_id = cursor.fetchone()[0] if payment is not None else None
    if payment is not None and not inserted_as(payment, payment_id, connection.alias):
        raise IntegrityError(f"the payment {payment.external_id} of order {payment.order_id} is taken")
    for line in lines:
        line._state.adding = False
        line._state.db = connection.alias


def _lot_kind(lines: list[OrderLine]) -> str:
    if all(line.operation_type == OperationType.LOAN_INTEREST for line in lines):
        return LotKind.INTEREST_PAYMENT
    return LotKind.PURCHASE


def _replay(order: Order, fingerprint_: str) -> Placed:
    if order.request_fingerprint != fingerprint_:
        raise OrderExists(extra={"number": order.number})
    return Placed(order, replayed=True)


def _lines_validate(lines: list[NewLine]) -> None:
    numbers = [line.line_number for line in lines]
    fields = {}
    for index, number in enumerate(numbers):
        if number < 1:
            fields[f"lines.{index}.line_number"] = [{"code": "invalid", "message": _("Line numbers start at 1.")}]
        elif numbers.index(number) != index:
            fields[f"lines.{index}.line_number"] = [{"code": "duplicate", "message": _("Two lines with this number.")}]
    if fields:
        raise OrderInvalid(fields=fields)


def _price_guard(calculation: str, customer: Customer | None, lines: list[NewLine]) -> None:
    """``price_changed`` naming each line whose SKU, quantity, price or shelf discount differ from the calculation."""
    read = calculation_read(calculation)
    if read is None:
        raise CalculationInvalid()
    customer_id, calculated = read
    if customer_id != (customer.pk if customer else None):
        raise CalculationInvalid(_("The cart calculation was made for another customer."))
    fields = {}
    if len(calculated) != len(lines):
        fields["lines"] = [{"code": "price_changed", "message": _("The calculation had another number of lines.")}]
    for index, (line, (sku, quantity, price, discount)) in enumerate(zip(lines, calculated, strict=False)):
        if (line.sku, line.quantity, line.price, line.discount_percent) != (sku, quantity, price, discount):
            fields[f"lines.{index}"] = [
                {
                    "code": "price_changed",
                    "message": _("Calculated as %(sku)s x %(quantity)s at %(price)s, -%(discount)s%%.")
                    % {"sku": sku, "quantity": quantity, "price": price, "discount": discount},
                }
            ]
    if fields:
        raise PriceChanged(fields=fields)


def _hold_for(hold_id: int | None, customer: Customer | None) -> Hold | None:
    if hold_id is None:
        return None
    hold = Hold.objects.select_related("account").filter(pk=hold_id).first()
    if hold is None:
        from points.exceptions import HoldNotFound

        raise HoldNotFound()
    if customer is None or hold.account.customer_id != customer.pk:
        raise HoldNotForCustomer()
    return hold
