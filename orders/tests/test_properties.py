"""Property-based proof of orders against the ledger: random orders (1-4 lines, random prices and quantities,
with or without points spent on them, unlocking on delivery or on payment, of a customer or anonymous) driven
through random sequences of deliveries, cancellations, returns, payments, the cancel-and-reorder scheme, matching
and spending of the points — partial quantities included. After every step:

- ``points_reconcile`` is clean; available, pending and debt are never negative;
- the earned points of the lines that count (delivered — or paid, for orders that unlock on payment — and not
  cancelled or returned) equal, to the cent, the order's lots that were unlocked: for each such lot, its amount
  less what was clawed back or cancelled of it (``Lot.amount`` - clawbacks - cancellations, from the journal's
  allocations); and the points of the lines still waiting equal the order's pending lots' remaining;
- no redemption is ever refunded more than it spent, and what the order's redemptions spent net of their refunds
  is exactly the points redeemed on its live (placed or delivered) lines;
- the customer's net position is exact: available - debt = points seeded - points spent elsewhere - points spent
  net on the order + points earned by the lines that count; pending = points of the lines still waiting;
- each line's parts add up to the line as placed (quantity, amount, points redeemed, points to earn);
- a refused step (a line in the wrong status, too large a quantity, nothing to cancel, not enough points)
  changes nothing.

Each example runs in a savepoint rolled back at its end. ``pytest --slow`` runs ten times as many examples.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Q, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.tests.factories import CustomerFactory
from orders.exceptions import (
    NothingToCancel,
    OrderLineNotDelivered,
    OrderLineNotPlaced,
    OrderLineUnknown,
    QuantityExceeded,
)
from orders.models import Order, OrderLine
from orders.services import (
    LineRequest,
    NewLine,
    order_attach_customer,
    order_cancel,
    order_deliver,
    order_pay,
    order_place,
    order_redeliver,
    order_return,
)
from orders.tests.factories import D, balances, key, seed_points
from points.exceptions import InsufficientPoints
from points.models import Account, Allocation, Entry, Lot
from points.services import points_reconcile, points_redeem
from programmes.calculator import cart_calculate
from programmes.models import Programme

ZERO = D(0)
REFUSED = (
    OrderLineNotPlaced,
    OrderLineNotDelivered,
    OrderLineUnknown,
    QuantityExceeded,
    NothingToCancel,
    InsufficientPoints,
)
LIVE = (OrderLine.Status.PLACED, OrderLine.Status.DELIVERED)
UNLOCKED_LOT_STATES = (Lot.State.ACTIVE, Lot.State.SPENT, Lot.State.EXPIRED)

_numbers = itertools.count(1)

lines_strategy = st.lists(
    st.tuples(st.integers(1, 3_000_000), st.integers(1, 5)),  # (price in cents, quantity)
    min_size=1,
    max_size=4,
)
quantity = st.one_of(st.none(), st.integers(1, 3))
# Weighted towards the steps that move points; a cancel of the whole order ends most histories, so it is rare.
actions = st.tuples(
    st.sampled_from(
        ["deliver"] * 4
        + ["cancel"] * 2
        + ["return"] * 3
        + ["redeliver"] * 2
        + ["pay"] * 2
        + ["spend", "attach", "cancel_all"]
    ),
    st.integers(0, 3),  # the line (modulo the order's lines); for pay and spend, a percent of the total or balance
    quantity,
)
orders_strategy = st.fixed_dictionaries(
    {
        "lines": lines_strategy,
        "on_payment": st.booleans(),
        "anonymous": st.booleans(),
        "delivered": st.sampled_from([False, False, False, True]),  # a sale at the till, delivered at once
        "redeem_percent": st.sampled_from([0, 0, 1, 37, 100]),  # of the cart's maximum
        "steps": st.lists(actions, min_size=3, max_size=12),
    }
)


class Run:
    """One example: an order and what the test knows independently of the services."""

    def __init__(self, channel, spec: dict) -> None:
        self.channel = channel
        self.customer = CustomerFactory()
        self.seeded = ZERO
        self.spent_elsewhere = ZERO
        operation_type = "loan_interest" if spec["on_payment"] else "purchase"
        self.lines = [
            NewLine(
                line_number=index + 1,
                sku=f"SKU-{index + 1}",
                quantity=Decimal(count),
                price=Decimal(cents) / 100,
                operation_type=operation_type,
            )
            for index, (cents, count) in enumerate(spec["lines"])
        ]
        redeem = None
        if spec["redeem_percent"] and not spec["anonymous"]:
            self.seeded = D(1_000_000)
            seed_points(self.customer, self.seeded)
            maximum = cart_calculate(customer=self.customer, lines=[line.cart_line() for line in self.lines])
            redeem = (maximum.max_redeemable * spec["redeem_percent"] / 100).quantize(Decimal(1))
        self.attached = not spec["anonymous"]
        self.order = order_place(
            channel=channel,
            number=f"PROP-{next(_numbers)}",
            customer=None if spec["anonymous"] else self.customer,
            phone="+79160000000" if spec["anonymous"] else "",
            lines=self.lines,
            redeem=redeem or None,
            delivered=spec["delivered"],
            operation_key=key("place"),
        ).order
        assert self.order.unlocks_on == ("payment" if spec["on_payment"] else "delivery")
        self.placed = {
            line.line_number: (line.quantity, line.amount, line.points_redeemed, line.points_to_earn)
            for line in self.order.lines.all()
        }
        self.redeliveries = itertools.count(1)

    # --- the steps ---------------------------------------------------------------------------------------

    def step(self, action: str, index: int, amount) -> None:
        line_number = self.line_for(action, index)
        request = [LineRequest(line_number, None if amount is None else Decimal(amount))]
        if action == "deliver":
            order_deliver(order=self.order, lines=request, operation_key=key())
        elif action == "cancel":
            order_cancel(order=self.order, lines=request, operation_key=key())
        elif action == "cancel_all":
            order_cancel(order=self.order, operation_key=key())
        elif action == "return":
            order_return(order=self.order, lines=request, operation_key=key())
        elif action == "redeliver":
            cancelled = self.order.lines.filter(line_number=line_number, status=OrderLine.Status.CANCELLED)
            available = cancelled.aggregate(total=Sum("quantity"))["total"]
            if available is None:  # nothing cancelled: an unknown line (refused)
                available = Decimal(1)
            wanted = available if amount is None else min(Decimal(amount), available)
            order_redeliver(
                parent=self.order,
                number=f"{self.order.number}-R{next(self.redeliveries)}",
                lines=[(f"SKU-{line_number}", wanted)],
                operation_key=key(),
            )
        elif action == "pay":
            paid = (self.order.total_amount * (index + 1) * 25 / 100).quantize(Decimal("0.01"))
            if paid > 0:
                order_pay(order=self.order, external_id=key("payment"), method="card", amount=paid, operation_key=key())
        elif action == "spend":
            available = balances(self.customer)[0]
            spent = (available * (index + 1) * 25 / 100).quantize(Decimal("0.01"))
            if spent > 0 and self.attached:
                points_redeem(customer=self.customer, amount=spent, operation_key=key())
                self.spent_elsewhere += spent
        elif action == "attach" and not self.attached:
            order_attach_customer(order=self.order, customer=self.customer, operation_key=key())
            self.attached = True

    def line_for(self, action: str, index: int) -> int:
        """Mostly a line the step can apply to (so histories go somewhere); when there is none, any line (refused)."""
        status = {
            "deliver": OrderLine.Status.PLACED,
            "cancel": OrderLine.Status.PLACED,
            "return": OrderLine.Status.DELIVERED,
            "redeliver": OrderLine.Status.CANCELLED,
        }.get(action)
        eligible = sorted(set(self.order.lines.filter(status=status).values_list("line_number", flat=True)))
        if not eligible:
            return index % len(self.lines) + 1
        return eligible[index % len(eligible)]

    # --- what must hold -------------------------------------------------------------------------------------

    def snapshot(self) -> tuple:
        return (
            balances(self.customer),
            list(self.order.lines.order_by("pk").values_list("pk", "status", "quantity", "lot_id", "points_unlocked")),
            list(Lot.objects.order_by("pk").values_list("pk", "state", "remaining", "amount")),
            Entry.objects.count(),
            self.order.payments.count(),
            Order.objects.count(),
        )

    def counts(self, line: OrderLine) -> bool:
        """Has the line earned its points for good: delivered (or paid), not cancelled or returned?"""
        if line.status not in LIVE or not self.attached:
            return False
        if self.order.unlocks_on == Order.UnlocksOn.DELIVERY:
            return line.status == OrderLine.Status.DELIVERED
        return line.points_unlocked

    def check(self) -> None:
        problems = points_reconcile(
            account_ids=list(Account.objects.filter(customer=self.customer).values_list("pk", flat=True))
        )
        assert problems == [], problems
        self.order.refresh_from_db()
        lines = list(self.order.lines.all())
        available, pending, debt = balances(self.customer)
        assert min(available, pending, debt) >= 0

        # Every line's parts add up to the line as placed.
        for number, placed in self.placed.items():
            parts = [line for line in lines if line.line_number == number]
            totals = tuple(
                sum((getattr(line, name) for line in parts), ZERO)
                for name in ("quantity", "amount", "points_redeemed", "points_to_earn")
            )
            assert totals == placed, number

        earned = sum((line.points_to_earn for line in lines if self.counts(line)), ZERO)
        waiting = sum(
            (line.points_to_earn for line in lines if self.attached and line.status in LIVE and not self.counts(line)),
            ZERO,
        )

        # The lots of the order's lines against its lines.
        lots = dict(
            Lot.objects.filter(
                account__customer=self.customer, source_type="order_line", state__in=UNLOCKED_LOT_STATES
            ).values_list("pk", "amount")
        )
        gone = Allocation.objects.filter(lot__in=lots, entry__kind__in=[Entry.Kind.CANCEL, Entry.Kind.CLAWBACK])
        unlocked = sum(lots.values(), ZERO)
        for kind, remaining_delta, entry_amount in gone.values_list("entry__kind", "remaining_delta", "entry__amount"):
            # A cancellation takes what its allocation says; a clawback its whole amount (the part already spent
            # becomes debt, not an allocation).
            unlocked -= -remaining_delta if kind == Entry.Kind.CANCEL else entry_amount
        assert unlocked == earned
        pending_lots = (
            Lot.objects.filter(
                account__customer=self.customer, source_type="order_line", state=Lot.State.PENDING
            ).aggregate(total=Sum("remaining"))["total"]
            or ZERO
        )
        assert pending_lots == waiting == pending

        # Redemptions: never refunded beyond what they spent; net, exactly what the live lines carry.
        spent_net = ZERO
        redemptions = Entry.objects.filter(
            kind=Entry.Kind.REDEEM, pk__in=OrderLine.objects.filter(order=self.order).values("redemption")
        )
        for redemption in redemptions:
            refunded = (
                Entry.objects.filter(kind=Entry.Kind.REFUND, reverses=redemption).aggregate(total=Sum("amount"))[
                    "total"
                ]
                or ZERO
            )
            assert refunded <= redemption.amount
            spent_net += redemption.amount - refunded
        # A redemption no line refers to any more (all its lines were cancelled and redelivered) is fully refunded.
        orphans = Entry.objects.filter(
            Q(kind=Entry.Kind.REDEEM, account__customer=self.customer, operation_key__startswith="order-event:"),
            ~Q(pk__in=OrderLine.objects.filter(order=self.order).values("redemption")),
        )
        for redemption in orphans:
            refunded = (
                Entry.objects.filter(kind=Entry.Kind.REFUND, reverses=redemption).aggregate(total=Sum("amount"))[
                    "total"
                ]
                or ZERO
            )
            assert refunded == redemption.amount
        live_redeemed = sum((line.points_redeemed for line in lines if line.status in LIVE), ZERO)
        assert spent_net == live_redeemed

        # The customer's position, to the cent.
        assert available - debt == self.seeded - self.spent_elsewhere - spent_net + earned


def _settings(request, examples: int):
    slow = request.config.getoption("--slow")
    return settings(
        max_examples=examples * 10 if slow else examples,
        derandomize=not slow,  # CI runs the same examples every time; --slow explores new ones
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@pytest.mark.django_db
def test_random_order_histories_keep_the_lines_and_the_ledger_in_step(request, channel):
    Programme.objects.filter(code="retail").update(unlock_on_payment=["loan_interest"])

    @_settings(request, 40)
    @given(spec=orders_strategy)
    def check(spec):
        with transaction.atomic():  # each example rolls back
            run = Run(channel, spec)
            run.check()
            for action, index, amount in spec["steps"]:
                before = run.snapshot()
                try:
                    with transaction.atomic():
                        run.step(action, index, amount)
                except REFUSED:
                    assert run.snapshot() == before, action  # refused: nothing changed, so all still holds
                else:
                    run.check()
            transaction.set_rollback(True)

    check()
