"""The order scenarios of issue 6, through ``orders.services``: each checks the customer's buckets (available,
pending, debt) to the cent after every step, and ends with a clean ``points_reconcile``.

The demo retail programme applies (no rules are loaded in tests): Basic earns 5 % of what is paid with money,
rounded down to whole points, and lets 20 % of a line's price be paid in points.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.actors import Actor
from customers.services import customer_merge
from customers.tests.factories import CustomerFactory, NonMemberFactory
from orders.exceptions import (
    OfflineRedemptionNotHeld,
    OperationConflict,
    OrderExists,
    OrderLineNotDelivered,
    OrderLineNotPlaced,
)
from orders.models import Order, OrderEvent, OrderLine, Payment
from orders.services import (
    LineRequest,
    order_attach_customer,
    order_cancel,
    order_deliver,
    order_pay,
    order_place,
    order_redeliver,
    order_return,
)
from orders.tests.factories import (
    D,
    balances,
    furniture_lines,
    key,
    ledger_counts,
    new_line,
    place,
    seed_points,
)
from points.exceptions import HoldNotOpen, InsufficientPoints
from points.models import Entry, Hold, Lot
from points.services import points_hold, points_holds_release_expired, points_reconcile, points_redeem
from programmes.calculator import cart_calculate
from programmes.models import Programme, PurchaseRecord, Tier
from programmes.tests.factories import PromotionFactory, RedemptionRuleFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
T0 = NOW - timedelta(days=120)  # the order; its deliveries follow, all in the past


def assert_reconciled() -> None:
    problems = points_reconcile()
    assert problems == [], problems


def line_states(order: Order) -> list[tuple]:
    return list(
        order.lines.order_by("line_number", "part").values_list(
            "line_number", "part", "sku", "quantity", "status", "points_to_earn", "points_redeemed", "points_unlocked"
        )
    )


def lot_of(order: Order, line_number: int, part: int = 0) -> Lot:
    return Lot.objects.get(pk=order.lines.get(line_number=line_number, part=part).lot_id)


def snapshot(*customers) -> tuple:
    """Everything a refused call must leave as it was."""
    return (
        ledger_counts(),
        [balances(customer) for customer in customers],
        list(OrderLine.objects.order_by("pk").values_list("pk", "status", "quantity", "lot_id", "points_unlocked")),
        list(Lot.objects.order_by("pk").values_list("pk", "state", "remaining", "held", "amount", "restriction")),
        list(Hold.objects.order_by("pk").values_list("pk", "state")),
    )


# --- 1. the sofa, the chairs and the nightstand ------------------------------------------------------------


def test_chairs_points_are_spendable_after_their_delivery_the_rest_stays_pending(channel, customer):
    seed_points(customer, "1000")
    order = order_place(
        channel=channel,
        number="FURN-1",
        customer=customer,
        lines=furniture_lines(),
        redeem=D(500),
        created_at=T0,
        operation_key=key(),
    ).order

    # The 500 points go on the sofa (the first line, up to 20 % of 90,000): it earns on 89,500.
    assert [(line.sku, line.points_redeemed, line.points_to_earn) for line in order.lines.all()] == [
        ("SOFA-1", D(500), D(4475)),
        ("CHAIR-1", D(0), D(1000)),
        ("NIGHTSTAND-1", D(0), D(600)),
    ]
    assert balances(customer) == (D(500), D(6075), D(0))  # every line's points visible as pending
    with pytest.raises(InsufficientPoints):
        points_redeem(customer=customer, amount="501", operation_key=key())

    chairs = order_deliver(
        order=order, lines=[LineRequest(2)], operation_key=key(), delivered_at=T0 + timedelta(days=1)
    )
    assert balances(customer) == (D(1500), D(5075), D(0))
    assert lot_of(order, 2).state == Lot.State.ACTIVE
    assert {lot_of(order, 1).state, lot_of(order, 3).state} == {Lot.State.PENDING}
    before = snapshot(customer)
    with pytest.raises(InsufficientPoints):  # the chairs' points and what was left: not a point more
        points_redeem(customer=customer, amount="1500.01", operation_key=key())
    assert snapshot(customer) == before
    points_redeem(customer=customer, amount="1500", operation_key=key())
    assert balances(customer) == (D(0), D(5075), D(0))

    nightstand = order_deliver(
        order=order, lines=[LineRequest(3)], operation_key=key(), delivered_at=T0 + timedelta(days=14)
    )
    assert balances(customer) == (D(600), D(4475), D(0))
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_DELIVERED

    sofa = order_deliver(order=order, lines=[LineRequest(1)], operation_key=key(), delivered_at=T0 + timedelta(days=90))
    assert balances(customer) == (D(5075), D(0), D(0))
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED

    # The history: one order, its three deliveries, each with its lines and points.
    deliveries = list(order.deliveries.order_by("created_at"))
    assert deliveries == [chairs, nightstand, sofa]
    assert [
        (d.number, d.kind, d.parent_id, d.customer_id, d.total_amount, d.points_redeemed, d.points_to_earn)
        for d in deliveries
    ] == [
        ("FURN-1/1", "delivery", order.pk, customer.pk, D(20000), D(0), D(1000)),
        ("FURN-1/2", "delivery", order.pk, customer.pk, D(12000), D(0), D(600)),
        ("FURN-1/3", "delivery", order.pk, customer.pk, D(90000), D(500), D(4475)),
    ]
    assert [list(d.delivered_lines.values_list("line_number", flat=True)) for d in deliveries] == [[2], [3], [1]]
    assert [line.delivered_at for line in order.lines.all()] == [
        T0 + timedelta(days=90),
        T0 + timedelta(days=1),
        T0 + timedelta(days=14),
    ]
    assert_reconciled()


# --- 2. the case study's cancel-and-reorder scheme is a delivery ---------------------------------------------


@pytest.mark.parametrize("redeem", [None, D(20000)], ids=["no-redemption", "with-redemption"])
def test_cancel_and_reorder_gives_the_same_balances_as_a_delivery(channel, redeem):
    # 20,000 points: 18,000 on the sofa (its cap) and 2,000 on the chairs, so the chairs carry a redemption.
    delivered, reordered = CustomerFactory(), CustomerFactory()
    orders = {}
    for customer in (delivered, reordered):
        seed_points(customer, "25000")
        orders[customer] = place(channel, customer, redeem=redeem, created_at=T0)
    first, second = orders[delivered], orders[reordered]
    assert line_states(first) == line_states(second)

    # Three chairs of four, and the nightstand.
    order_deliver(
        order=first,
        lines=[LineRequest(2, Decimal(3)), LineRequest(3)],
        operation_key=key(),
        number="DLV-A",
        delivered_at=T0 + timedelta(days=1),
    )
    order_cancel(order=second, lines=[LineRequest(2, Decimal(3)), LineRequest(3)], operation_key=key())
    order_redeliver(
        parent=second,
        number="DLV-B",
        lines=[("CHAIR-1", Decimal(3)), ("NIGHTSTAND-1", Decimal(1))],
        operation_key=key(),
        delivered_at=T0 + timedelta(days=1),
    )

    assert balances(delivered) == balances(reordered)
    chairs_redeemed = D(2000) if redeem else D(0)
    earned = D(750) + D(600) - (chairs_redeemed * 3 / 4) * D("0.05")  # the chairs' share, and the nightstand's
    seed_left = D(25000) - (redeem or 0)
    assert balances(delivered) == (seed_left + earned, D(6100) - (redeem or 0) * D("0.05") - earned, D(0))
    assert line_states(first) == line_states(second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == Order.Status.PARTIALLY_DELIVERED
    (a,) = first.deliveries.all()
    (b,) = second.deliveries.all()
    assert (a.total_amount, a.points_redeemed, a.points_to_earn) == (
        b.total_amount,
        b.points_redeemed,
        b.points_to_earn,
    )
    assert sorted(a.delivered_lines.values_list("line_number", "part")) == sorted(
        b.delivered_lines.values_list("line_number", "part")
    )

    # And what follows works the same on both: the rest delivered, a chair returned.
    for order in (first, second):
        order_deliver(order=order, lines=[LineRequest(1), LineRequest(2)], operation_key=key())
        order_return(order=order, lines=[LineRequest(2, Decimal(1))], operation_key=key())
    assert balances(delivered) == balances(reordered)
    assert line_states(first) == line_states(second)
    assert_reconciled()


# --- 3. partial payments ---------------------------------------------------------------------------------------


@pytest.fixture
def interest_unlocks_on_payment(db):
    Programme.objects.filter(code="retail").update(unlock_on_payment=["loan_interest"])


def test_interest_points_unlock_as_three_payments_cover_the_lines_in_order(
    channel, customer, interest_unlocks_on_payment
):
    interest = {"operation_type": "loan_interest"}
    order = place(
        channel,
        customer,
        lines=[
            new_line(1, "INTEREST-JAN", "1000", **interest),
            new_line(2, "INTEREST-FEB", "2000", **interest),
            new_line(3, "INTEREST-MAR", "3000", **interest),
        ],
        delivered=True,
    )
    assert order.unlocks_on == Order.UnlocksOn.PAYMENT
    assert [line.points_to_earn for line in order.lines.all()] == [D(50), D(100), D(150)]
    assert {lot.kind for lot in Lot.objects.filter(account__customer=customer)} == {"interest_payment"}
    assert balances(customer) == (D(0), D(300), D(0))  # delivered, but nothing paid yet

    order_pay(order=order, external_id="P1", method="cash", amount=D(1500), operation_key=key())
    assert balances(customer) == (D(50), D(250), D(0))  # 1,500 covers the first line (1,000), not the second
    order_pay(order=order, external_id="P2", method="card", amount=D(1500), operation_key=key())
    assert balances(customer) == (D(150), D(150), D(0))  # 3,000 covers 1,000 + 2,000
    order_pay(order=order, external_id="P3", method="card", amount=D(3000), operation_key=key())
    assert balances(customer) == (D(300), D(0), D(0))

    assert list(order.payments.values_list("external_id", "method", "amount", "status")) == [
        ("P1", "cash", D(1500), "paid"),
        ("P2", "card", D(1500), "paid"),
        ("P3", "card", D(3000), "paid"),
    ]
    assert list(order.lines.values_list("points_unlocked", flat=True)) == [True, True, True]
    assert_reconciled()


def test_payments_of_an_order_that_unlocks_on_delivery_leave_the_points_alone(channel, customer):
    order = place(channel, customer)
    assert order.unlocks_on == Order.UnlocksOn.DELIVERY
    assert balances(customer) == (D(0), D(6100), D(0))
    for number, amount in enumerate(["40000", "40000", "42000"], start=1):
        order_pay(order=order, external_id=f"P{number}", method="card", amount=D(amount), operation_key=key())
        assert balances(customer) == (D(0), D(6100), D(0))
    assert order.payments.count() == 3
    assert sum(order.payments.values_list("amount", flat=True)) == order.total_amount == D(122000)
    assert not order.lines.filter(points_unlocked=True).exists()

    order_deliver(order=order, lines=[LineRequest(2)], operation_key=key())
    assert balances(customer) == (D(1000), D(5100), D(0))
    assert_reconciled()


# --- 4. cancel after a partial redemption ---------------------------------------------------------------------


def test_a_cancel_refunds_the_points_redeemed_on_its_lines_to_the_very_lots(channel, customer):
    soon = seed_points(customer, "300", expires_at=NOW + timedelta(days=30))
    later = seed_points(customer, "1000", expires_at=NOW + timedelta(days=200))
    lines = [new_line(1, "LAMP", "1000"), new_line(2, "TABLE", "2000"), new_line(3, "RUG", "3000")]
    order = place(channel, customer, lines=lines, redeem=D(500))
    # 200 on the lamp (its cap), 300 on the table; taken from the soonest-expiring lot first.
    assert list(order.lines.values_list("points_redeemed", "points_to_earn")) == [
        (D(200), D(40)),
        (D(300), D(85)),
        (D(0), D(150)),
    ]
    soon.refresh_from_db(), later.refresh_from_db()
    assert (soon.remaining, soon.state, later.remaining) == (D(0), Lot.State.SPENT, D(800))
    assert balances(customer) == (D(800), D(275), D(0))

    order_cancel(order=order, lines=[LineRequest(2)], operation_key=key(), reason="out of stock")
    # The table's 300 go back in reverse order of consumption: 200 to the later lot, 100 to the sooner one.
    soon.refresh_from_db(), later.refresh_from_db()
    assert (soon.remaining, soon.state, later.remaining) == (D(100), Lot.State.ACTIVE, D(1000))
    assert balances(customer) == (D(1100), D(190), D(0))
    assert lot_of(order, 2).state == Lot.State.CANCELLED

    order_deliver(order=order, lines=[LineRequest(3)], operation_key=key())
    order_cancel(order=order, operation_key=key())  # the whole order: what is left of it (the lamp)
    soon.refresh_from_db(), later.refresh_from_db()
    assert (soon.remaining, later.remaining) == (D(300), D(1000))
    assert balances(customer) == (D(1450), D(0), D(0))
    order.refresh_from_db()
    assert [line.status for line in order.lines.all()] == ["cancelled", "cancelled", "delivered"]
    assert order.status == Order.Status.DELIVERED
    refunds = Entry.objects.filter(kind=Entry.Kind.REFUND, reverses=order.lines.get(line_number=1).redemption)
    assert sum(refunds.values_list("amount", flat=True)) == D(500)
    assert_reconciled()


# --- 5. a return after the points were spent ------------------------------------------------------------------


def test_a_return_after_the_points_were_spent_leaves_a_debt_the_next_purchase_pays(channel, customer):
    first = place(channel, customer, lines=[new_line(1, "TABLE", "10000")])
    order_deliver(order=first, lines=[LineRequest(1)], operation_key=key())
    assert balances(customer) == (D(500), D(0), D(0))

    second = place(channel, customer, lines=[new_line(1, "BED", "10000")], redeem=D(400))  # earns on 9,600
    assert balances(customer) == (D(100), D(480), D(0))

    order_return(order=first, lines=[LineRequest(1)], operation_key=key(), reason="damaged")
    assert balances(customer) == (D(0), D(480), D(400))  # 100 taken back, 400 owed
    assert lot_of(first, 1).remaining == D(0)

    order_deliver(order=second, lines=[LineRequest(1)], operation_key=key())
    assert balances(customer) == (D(80), D(0), D(0))  # the debt paid first from the next points
    settle = Entry.objects.get(kind=Entry.Kind.SETTLE)
    assert (settle.amount, settle.allocations.get().lot_id) == (D(400), second.lines.get().lot_id)
    assert_reconciled()


# --- 6. partial quantities -----------------------------------------------------------------------------------


def test_partial_delivery_cancel_and_return_of_chairs_share_the_points_exactly(channel, customer):
    seed_points(customer, "100")
    # 4 chairs at 4,999: 19,996, 7 points redeemed, earning 5 % of 19,989 = 999 (rounded down).
    order = place(channel, customer, lines=[new_line(1, "CHAIR", "4999", quantity="4")], redeem=D(7))
    (chairs,) = order.lines.all()
    assert (chairs.amount, chairs.points_redeemed, chairs.points_to_earn) == (D(19996), D(7), D(999))

    order_deliver(order=order, lines=[LineRequest(1, Decimal(3))], operation_key=key())
    assert line_states(order) == [
        (1, 0, "CHAIR", Decimal(1), "placed", D("249.75"), D("1.75"), False),
        (1, 1, "CHAIR", Decimal(3), "delivered", D("749.25"), D("5.25"), True),
    ]
    assert list(order.lines.values_list("amount", flat=True)) == [D(4999), D(14997)]
    assert balances(customer) == (D(93) + D("749.25"), D("249.75"), D(0))
    assert (lot_of(order, 1, 0).amount, lot_of(order, 1, 1).amount) == (D("249.75"), D("749.25"))

    order_cancel(order=order, lines=[LineRequest(1, Decimal(1))], operation_key=key())
    assert balances(customer) == (D(93) + D("749.25") + D("1.75"), D(0), D(0))

    order_return(order=order, lines=[LineRequest(1, Decimal(1))], operation_key=key())
    assert line_states(order) == [
        (1, 0, "CHAIR", Decimal(1), "cancelled", D("249.75"), D("1.75"), False),
        (1, 1, "CHAIR", Decimal(2), "delivered", D("499.50"), D("3.50"), True),
        (1, 2, "CHAIR", Decimal(1), "returned", D("249.75"), D("1.75"), True),
    ]
    # The returned chair's share of the delivered lot is clawed back; its redeemed share refunded.
    assert balances(customer) == (D(93) + D("499.50") + D("3.50"), D(0), D(0))
    lines = list(order.lines.all())
    assert sum(line.amount for line in lines) == D(19996)
    assert sum(line.points_redeemed for line in lines) == D(7)
    assert sum(line.points_to_earn for line in lines) == D(999)
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_RETURNED
    assert_reconciled()


def test_shares_that_do_not_divide_evenly_round_down_and_the_rest_stays_with_the_line(channel, customer):
    # 3 chairs earning 1,000: two delivered get 666.66, the third keeps 333.34.
    order = place(channel, customer, lines=[new_line(1, "CHAIR", "6666.67", quantity="3")])
    assert order.lines.get().points_to_earn == D(1000)
    order_deliver(order=order, lines=[LineRequest(1, Decimal(2))], operation_key=key())
    assert balances(customer) == (D("666.66"), D("333.34"), D(0))
    order_return(order=order, lines=[LineRequest(1, Decimal(1))], operation_key=key())
    assert balances(customer) == (D("333.33"), D("333.34"), D(0))
    order_deliver(order=order, lines=[LineRequest(1)], operation_key=key())
    assert balances(customer) == (D("666.67"), D(0), D(0))
    assert sorted(order.lines.values_list("points_to_earn", flat=True)) == [D("333.33"), D("333.33"), D("333.34")]
    assert sum(order.lines.values_list("amount", flat=True)) == D("20000.01")
    assert_reconciled()


def test_undelivered_and_unplaced_lines_are_refused_and_nothing_changes(channel, customer):
    order = place(channel, customer)
    order_deliver(order=order, lines=[LineRequest(2)], operation_key=key())
    before = snapshot(customer)
    with pytest.raises(OrderLineNotPlaced):
        order_deliver(order=order, lines=[LineRequest(1), LineRequest(2)], operation_key=key())
    with pytest.raises(OrderLineNotDelivered):
        order_return(order=order, lines=[LineRequest(2), LineRequest(3)], operation_key=key())
    with pytest.raises(OrderLineNotPlaced):
        order_cancel(order=order, lines=[LineRequest(3), LineRequest(2)], operation_key=key())
    assert snapshot(customer) == before
    assert_reconciled()


# --- 7. offline orders -----------------------------------------------------------------------------------------


def test_an_offline_order_sent_twice_is_one_order_and_other_content_is_refused(channel, customer):
    sold_at = NOW - timedelta(hours=5)
    kwargs = {"channel": channel, "number": "TILL-7", "customer": customer, "created_at": sold_at, "offline": True}
    first = order_place(lines=furniture_lines()[:2], delivered=True, operation_key=key(), **kwargs)
    assert not first.replayed
    assert balances(customer) == (D(5500), D(0), D(0))
    before = snapshot(customer)

    again = order_place(lines=furniture_lines()[:2], delivered=True, operation_key=key(), **kwargs)
    assert (again.replayed, again.order.pk) == (True, first.order.pk)
    assert snapshot(customer) == before

    with pytest.raises(OrderExists):
        order_place(lines=furniture_lines()[:1], delivered=True, operation_key=key(), **kwargs)
    assert snapshot(customer) == before
    assert_reconciled()


def test_an_offline_order_spends_points_only_through_a_hold_made_before(channel, customer):
    seed_points(customer, "1000")
    sold_at = NOW - timedelta(minutes=5)
    common = {"channel": channel, "customer": customer, "created_at": sold_at, "offline": True, "delivered": True}
    lines = [new_line(1, "CHAIR", "5000")]
    before = snapshot(customer)
    with pytest.raises(OfflineRedemptionNotHeld):
        order_place(number="TILL-1", lines=lines, redeem=D(300), operation_key=key(), **common)
    assert snapshot(customer) == before

    hold = points_hold(customer=customer, amount="300", operation_key=key(), now=sold_at - timedelta(minutes=1)).hold
    assert balances(customer) == (D(700), D(0), D(0))
    order = order_place(number="TILL-2", lines=lines, hold_id=hold.pk, operation_key=key(), **common).order
    hold.refresh_from_db()
    assert (hold.state, order.points_redeemed, order.hold_id) == (Hold.State.COMMITTED, D(300), hold.pk)
    assert order.lines.get().points_to_earn == D(235)  # 5 % of 4,700, active at once (sold at the till)
    assert balances(customer) == (D(935), D(0), D(0))
    assert order.payments.get(method=Payment.Method.POINTS).amount == D(300)
    assert_reconciled()


def test_an_offline_order_earns_by_the_rules_in_force_when_it_was_sold(channel, customer):
    sold_at = NOW - timedelta(days=10)
    PromotionFactory(valid_from=sold_at - timedelta(days=1), valid_until=sold_at + timedelta(days=1))
    lines = [new_line(1, "CHAIR", "5000")]

    offline = place(channel, customer, lines=lines, created_at=sold_at, offline=True, delivered=True)
    online = place(channel, customer, lines=lines, created_at=sold_at, delivered=True)

    assert offline.lines.get().points_to_earn == D(500)  # the double points of that week
    assert online.lines.get().points_to_earn == D(250)  # sent live: today's rules
    assert balances(customer) == (D(750), D(0), D(0))
    assert_reconciled()


def test_an_offline_order_earns_at_the_tier_rate_in_force_when_it_was_sold(channel, customer):
    sold_at = NOW - timedelta(days=3)
    basic = Tier.objects.get(programme__code="retail", code="basic")
    basic.earn_rate_percent = D(8)  # from now on; the 5 % it had is kept as past terms
    basic.save()
    lines = [new_line(1, "CHAIR", "5000")]

    offline = place(channel, customer, lines=lines, created_at=sold_at, offline=True, delivered=True)
    online = place(channel, customer, lines=lines, delivered=True)

    assert (offline.lines.get().points_to_earn, online.lines.get().points_to_earn) == (D(250), D(400))
    assert balances(customer) == (D(650), D(0), D(0))
    assert_reconciled()


# --- 8. a hold that times out ----------------------------------------------------------------------------------


def test_an_order_with_a_timed_out_hold_is_refused_and_the_job_releases_the_hold(channel, customer):
    seed_points(customer, "1000")
    hold = points_hold(
        customer=customer, amount="300", operation_key=key(), timeout=timedelta(minutes=15), now=NOW
    ).hold
    assert balances(customer) == (D(700), D(0), D(0))
    before = snapshot(customer)

    with pytest.raises(HoldNotOpen):
        order_place(
            channel=channel,
            number="LATE-1",
            customer=customer,
            lines=[new_line(1, "CHAIR", "5000")],
            hold_id=hold.pk,
            operation_key=key(),
            now=NOW + timedelta(minutes=15),
        )
    assert snapshot(customer) == before
    assert not Order.objects.filter(number="LATE-1").exists()

    assert points_holds_release_expired(now=NOW + timedelta(minutes=15)) == 1
    hold.refresh_from_db()
    assert hold.state == Hold.State.RELEASED
    assert balances(customer) == (D(1000), D(0), D(0))
    assert_reconciled()


# --- 9. matching an anonymous order, then a merge --------------------------------------------------------------


def test_an_anonymous_order_attached_later_and_merged_keeps_its_lines_points_on_the_right_lots(channel):
    order = place(channel, None, phone="+79161234567")
    assert (order.customer_id, str(order.phone)) == (None, "+79161234567")
    assert not Lot.objects.exists()
    order_deliver(order=order, lines=[LineRequest(2, Decimal(2))], operation_key=key())  # 2 of 4 chairs
    order_cancel(order=order, lines=[LineRequest(3)], operation_key=key())  # the nightstand

    walk_in = NonMemberFactory(phone="+79161234567")
    order_attach_customer(order=order, customer=walk_in, operation_key=key())
    order.refresh_from_db()
    assert order.customer == walk_in
    assert set(order.deliveries.values_list("customer_id", flat=True)) == {walk_in.pk}
    # The delivered chairs' points active, the sofa and the other chairs pending, the nightstand none: all of
    # them for members only.
    states = {
        (line.line_number, line.part): (line.lot.state, line.lot.amount, line.lot.restriction) if line.lot else None
        for line in order.lines.select_related("lot")
    }
    assert states == {
        (1, 0): ("pending", D(4500), "members_only"),
        (2, 0): ("pending", D(500), "members_only"),
        (2, 1): ("active", D(500), "members_only"),
        (3, 0): None,
    }
    assert balances(walk_in) == (D(500), D(5000), D(0))
    with pytest.raises(InsufficientPoints):  # not a member: nothing spendable
        points_redeem(customer=walk_in, amount="1", operation_key=key())

    member = CustomerFactory()
    seed_points(member, "100")
    customer_merge(duplicate=walk_in, survivor=member, actor=Actor(channel=channel), reason="same person")
    order.refresh_from_db()
    assert order.customer == member
    assert set(order.deliveries.values_list("customer_id", flat=True)) == {member.pk}
    assert balances(walk_in) == (D(0), D(0), D(0))
    assert balances(member) == (D(600), D(5000), D(0))

    order_deliver(order=order, lines=[LineRequest(2)], operation_key=key())  # the other two chairs
    assert balances(member) == (D(1100), D(4500), D(0))
    sofa_lot = lot_of(order, 1)
    assert (sofa_lot.state, sofa_lot.moved_to.state, sofa_lot.moved_to.account.customer) == (
        Lot.State.MOVED,
        Lot.State.PENDING,
        member,
    )
    order_deliver(order=order, lines=[LineRequest(1)], operation_key=key())
    assert balances(member) == (D(5600), D(0), D(0))
    points_redeem(customer=member, amount="5600", operation_key=key())  # all of it spendable now
    order_return(order=order, lines=[LineRequest(2, Decimal(1))], operation_key=key())
    assert balances(member) == (D(0), D(0), D(250))  # the returned chair's points, already spent: owed
    assert_reconciled()


# --- 10. every service, twice with one key ---------------------------------------------------------------------


def test_each_service_called_again_with_its_key_changes_nothing_and_other_content_conflicts(channel, customer):
    moment = NOW - timedelta(days=1)
    seed_points(customer, "1000")
    place_args = {
        "channel": channel,
        "number": "IDEM-1",
        "customer": customer,
        "lines": furniture_lines(),
        "redeem": D(100),
        "created_at": moment,
        "operation_key": "idem:place",
    }
    order = order_place(**place_args).order
    calls = [
        (
            lambda: order_deliver(
                order=order, lines=[LineRequest(2, Decimal(1))], operation_key="idem:d", delivered_at=moment
            ),
            lambda: order_deliver(
                order=order, lines=[LineRequest(2, Decimal(2))], operation_key="idem:d", delivered_at=moment
            ),
        ),
        (
            lambda: order_cancel(order=order, lines=[LineRequest(3)], operation_key="idem:c"),
            lambda: order_cancel(order=order, lines=[LineRequest(2)], operation_key="idem:c"),
        ),
        (
            lambda: order_return(order=order, lines=[LineRequest(2)], operation_key="idem:r"),
            lambda: order_return(order=order, lines=[LineRequest(2)], operation_key="idem:r", reason="other"),
        ),
        (
            lambda: order_pay(
                order=order, external_id="P1", method="card", amount=D(100), operation_key="idem:p", paid_at=moment
            ),
            lambda: order_pay(
                order=order, external_id="P1", method="card", amount=D(101), operation_key="idem:p", paid_at=moment
            ),
        ),
        (
            lambda: order_place(**place_args),
            lambda: order_place(**{**place_args, "number": "IDEM-2"}),
        ),
    ]
    for first, other in calls:
        result = first()
        before = snapshot(customer)
        again = first()
        assert snapshot(customer) == before
        assert type(again) is type(result)
        if isinstance(result, Order):
            assert again.pk == result.pk
        with pytest.raises(OperationConflict):
            other()
        assert snapshot(customer) == before
    assert OrderEvent.objects.filter(order=order).count() == 5  # place, deliver, cancel, return, pay
    assert_reconciled()


def test_attaching_twice_with_one_key_changes_nothing(channel):
    order = place(channel, None, phone="+79160000001")
    customer = CustomerFactory()
    order_attach_customer(order=order, customer=customer, operation_key="idem:m")
    before = snapshot(customer)
    assert order_attach_customer(order=order, customer=customer, operation_key="idem:m").customer_id == customer.pk
    assert snapshot(customer) == before
    assert balances(customer) == (D(0), D(6100), D(0))
    assert_reconciled()


def test_a_redelivery_sent_twice_is_one_delivery(channel, customer):
    order = place(channel, customer)
    order_cancel(order=order, lines=[LineRequest(2)], operation_key=key())
    args = {"parent": order, "number": "RE-1", "lines": [("CHAIR-1", Decimal(4))], "operation_key": "idem:re"}
    delivery = order_redeliver(**args)
    before = snapshot(customer)
    assert order_redeliver(**args).pk == delivery.pk
    assert snapshot(customer) == before
    with pytest.raises(OperationConflict):
        order_redeliver(**{**args, "lines": [("CHAIR-1", Decimal(3))]})
    assert snapshot(customer) == before
    assert balances(customer) == (D(1000), D(5100), D(0))
    assert_reconciled()


# --- bugs found while writing these tests, fixed: regression tests ---------------------------------------------


def test_a_delivery_retried_without_a_date_replays(channel, customer):
    order = place(channel, customer)
    delivery = order_deliver(order=order, lines=[LineRequest(2)], operation_key="retry:d")
    assert order_deliver(order=order, lines=[LineRequest(2)], operation_key="retry:d").pk == delivery.pk


def test_a_payment_retried_without_a_date_replays(channel, customer):
    order = place(channel, customer)
    payment = order_pay(order=order, external_id="P1", method="card", amount=D(10), operation_key="retry:p")
    again = order_pay(order=order, external_id="P1", method="card", amount=D(10), operation_key="retry:p")
    assert again.pk == payment.pk


def test_an_order_sent_again_without_a_date_replays(channel, customer):
    args = {"channel": channel, "number": "AGAIN-1", "customer": customer, "lines": furniture_lines()}
    first = order_place(operation_key=key(), **args).order
    assert order_place(operation_key=key(), **args).order.pk == first.pk


def test_an_order_commits_a_hold_of_the_whole_balance(channel, customer):
    seed_points(customer, "300")
    hold = points_hold(customer=customer, amount="300", operation_key=key()).hold
    order = place(channel, customer, lines=[new_line(1, "CHAIR", "5000")], hold_id=hold.pk)
    assert order.points_redeemed == D(300)
    assert balances(customer) == (D(0), D(235), D(0))


@pytest.mark.parametrize(
    "scheme",
    [
        "deliver",
        "cancel-and-reorder",
    ],
)
def test_a_paid_interest_line_delivered_either_way_keeps_its_points_and_tier_count(
    channel, customer, interest_unlocks_on_payment, scheme
):
    interest = {"operation_type": "loan_interest"}
    lines = [new_line(1, "I-1", "1000", **interest), new_line(2, "I-2", "2000", **interest)]
    order = place(channel, customer, lines=lines)
    order_pay(order=order, external_id="P1", method="cash", amount=D(1000), operation_key=key())
    assert balances(customer) == (D(50), D(100), D(0))

    if scheme == "deliver":
        order_deliver(order=order, lines=[LineRequest(1)], operation_key=key())
    else:
        order_cancel(order=order, lines=[LineRequest(1)], operation_key=key())
        order_redeliver(parent=order, number="RE-I", lines=[("I-1", Decimal(1))], operation_key=key())

    assert balances(customer) == (D(50), D(100), D(0))  # the paid line's points stay spendable
    assert sum(PurchaseRecord.objects.filter(customer=customer).values_list("amount", flat=True)) == D(1000)
    assert list(order.lines.values_list("status", "points_unlocked")) == [("delivered", True), ("placed", False)]
    assert_reconciled()


def test_a_delivery_without_a_number_never_collides_with_another_orders_number(channel, customer):
    place(channel, customer, number="100/1", lines=[new_line(1, "LAMP", "1000")])
    order = place(channel, customer, number="100")

    delivery = order_deliver(order=order, lines=[LineRequest(2)], operation_key=key())

    assert delivery.parent_id == order.pk
    assert delivery.number != "100/1"


def test_a_hold_made_under_a_balance_share_cap_is_committed_by_its_order(channel, customer):
    RedemptionRuleFactory(kind="balance_share", percent=D(45))  # up to 45 % of the balance on a line
    seed_points(customer, "1000")
    lines = [new_line(1, "SOFA", "10000")]
    assert cart_calculate(customer=customer, lines=[line.cart_line() for line in lines]).max_redeemable == D(450)
    hold = points_hold(customer=customer, amount="450", operation_key=key()).hold  # what checkout allowed

    order = place(channel, customer, lines=lines, hold_id=hold.pk)

    assert order.points_redeemed == D(450)
    assert balances(customer) == (D(550), D(477), D(0))  # 5 % of 9,550


def test_points_refunded_by_a_cancel_no_longer_pay_for_the_other_lines(channel, customer, interest_unlocks_on_payment):
    seed_points(customer, "1000")
    interest = {"operation_type": "loan_interest"}
    lines = [new_line(1, "I-1", "1000", **interest), new_line(2, "I-2", "2000", **interest)]
    order = place(channel, customer, lines=lines, redeem=D(200))  # all 200 on the first line
    order_cancel(order=order, lines=[LineRequest(1)], operation_key=key())  # its 200 points refunded
    assert balances(customer) == (D(1000), D(100), D(0))

    order_pay(order=order, external_id="P1", method="cash", amount=D(1800), operation_key=key())
    assert balances(customer) == (D(1000), D(100), D(0))  # 1,800 does not pay for a line of 2,000
    order_pay(order=order, external_id="P2", method="cash", amount=D(200), operation_key=key())
    assert balances(customer) == (D(1100), D(0), D(0))
    assert_reconciled()
