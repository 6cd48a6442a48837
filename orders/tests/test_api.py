"""The orders channel API (SPEC F-ORD-1 … F-ORD-10, F-EARN-4, F-LED-6, F-LED-10): placing, replays, the price
guard, deliveries, cancellations, returns, payments and matching, through HTTP against PostgreSQL.

The helpers at the top (requests with fresh idempotency keys, the furniture order, the "nothing changed" snapshot)
are shared by ``test_api_errors`` and ``test_history_api``.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import connection

from core.actors import Actor
from customers.services import customer_merge
from customers.tests.factories import CustomerFactory, StoreFactory
from integrations.scopes import Scope
from integrations.tests.factories import ChannelFactory
from orders.api.serializers import OrderOutput, order_answer
from orders.models import Order, OrderEvent, OrderLine, Payment
from orders.selectors import order_get
from points.models import Account, Entry, Hold, Lot
from points.services import points_accrue, points_reconcile
from programmes.demo import programmes_ensure_demo
from programmes.models import Programme

_keys = itertools.count(1)
_numbers = itertools.count(1)

ORDERS = "/api/v1/orders"


def post(client, url: str, body: dict | None = None, *, key: str | None = None, **extra):
    """POST ``body`` as JSON with an ``Idempotency-Key`` (a fresh one unless given)."""
    return client.post(
        url, {} if body is None else body, format="json", HTTP_IDEMPOTENCY_KEY=key or f"test-{next(_keys)}", **extra
    )


def number() -> str:
    return f"SO-{next(_numbers)}"


def furniture(**fields) -> dict:
    """The case study's order: a sofa, four kitchen chairs and a nightstand (122,000 in all)."""
    return {
        "number": fields.pop("number", None) or number(),
        "lines": [
            {"line_number": 1, "sku": "SOFA-1", "quantity": "1", "price": "90000.00", "name": "Sofa"},
            {"line_number": 2, "sku": "CHAIR-1", "quantity": "4", "price": "5000.00", "name": "Kitchen chair"},
            {"line_number": 3, "sku": "NIGHTSTAND-1", "quantity": "1", "price": "12000.00", "name": "Nightstand"},
        ],
        **fields,
    }


def place(client, **fields) -> dict:
    """Place the furniture order (with ``fields``) and return its representation."""
    response = post(client, ORDERS, furniture(**fields))
    assert response.status_code == 201, response.json()
    return response.json()


def order_url(order_number: str, action: str = "") -> str:
    return f"{ORDERS}/{order_number}" + (f"/{action}" if action else "")


def seed(customer, amount) -> None:
    """Spendable points the customer already has."""
    points_accrue(customer=customer, amount=amount, kind="manual", operation_key=f"test:seed:{next(_keys)}")


def D(value) -> Decimal:
    return Decimal(str(value))


def balance(customer) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(available, pending, held, debt) of the customer's retail points; zeros without an account."""
    account = Account.objects.filter(customer=customer, balance_type__code="retail").first()
    if account is None:
        return D(0), D(0), D(0), D(0)
    return account.available, account.pending, account.held, account.debt


def line(order: dict, line_number: int, part: int = 0) -> dict:
    return next(row for row in order["lines"] if (row["line_number"], row["part"]) == (line_number, part))


def snapshot() -> dict:
    """What a refused request must leave alone: the rows of orders and of the ledger, and their states."""
    return {
        "counts": {
            model.__name__: model.objects.count() for model in (Order, OrderLine, Payment, OrderEvent, Entry, Lot, Hold)
        },
        "accounts": list(Account.objects.order_by("pk").values_list("pk", "available", "pending", "held", "debt")),
        "orders": list(Order.objects.order_by("pk").values_list("pk", "status", "customer_id")),
        "lines": list(
            OrderLine.objects.order_by("pk").values_list("pk", "status", "quantity", "lot_id", "points_unlocked")
        ),
        "lots": list(Lot.objects.order_by("pk").values_list("pk", "state", "remaining", "held")),
        "holds": list(Hold.objects.order_by("pk").values_list("pk", "state")),
    }


def assert_reconciled() -> None:
    problems = points_reconcile()
    assert problems == [], problems


@pytest.fixture(autouse=True)
def _programmes(db) -> None:
    """The migrations' balance types and demo programmes, which transactional tests elsewhere flush."""
    programmes_ensure_demo()


pytestmark = pytest.mark.django_db

CUSTOMER_PHONE = "+79161112233"


# --- placing ---------------------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_place_spends_points_from_the_balance_and_accrues_each_line_pending(api, customer):
    seed(customer, 1000)

    response = post(api, ORDERS, furniture(customer_id=customer.pk, redeem="500", seller="S-17"))

    assert response.status_code == 201
    order = response.json()
    assert (order["kind"], order["status"], order["customer_id"], order["seller"]) == (
        "order",
        "placed",
        customer.pk,
        "S-17",
    )
    assert (order["total_amount"], order["points_redeemed"], order["points_to_earn"]) == (
        "122000.00",
        "500.00",
        "6075.00",
    )
    # Basic tier: 5 % earned, the 500 points spent on the sofa first (it earns on 89,500).
    assert [
        (row["sku"], row["points_redeemed"], row["points_to_earn"], row["points_status"]) for row in order["lines"]
    ] == [
        ("SOFA-1", "500.00", "4475.00", "pending"),
        ("CHAIR-1", "0.00", "1000.00", "pending"),
        ("NIGHTSTAND-1", "0.00", "600.00", "pending"),
    ]
    assert [(p["method"], p["amount"], p["status"]) for p in order["payments"]] == [("points", "500.00", "paid")]
    assert order["deliveries"] == []
    assert balance(customer) == (D("500"), D("6075"), D("0"), D("0"))
    assert_reconciled()


def test_place_commits_the_hold_made_at_checkout(api, customer):
    seed(customer, 1000)
    hold = post(api, f"/api/v1/customers/{customer.pk}/points/holds", {"amount": "300"})
    assert hold.status_code == 201
    assert balance(customer) == (D("700"), D("0"), D("300"), D("0"))

    response = post(api, ORDERS, furniture(customer_id=customer.pk, hold_id=hold.json()["id"]))

    assert response.status_code == 201
    assert response.json()["points_redeemed"] == "300.00"
    assert Hold.objects.get(pk=hold.json()["id"]).state == Hold.State.COMMITTED
    assert balance(customer) == (D("700"), D(response.json()["points_to_earn"]), D("0"), D("0"))
    assert_reconciled()


def test_place_commits_a_hold_larger_than_what_is_left_available(api, customer):
    seed(customer, 1000)
    hold = post(api, f"/api/v1/customers/{customer.pk}/points/holds", {"amount": "800"}).json()

    response = post(api, ORDERS, furniture(customer_id=customer.pk, hold_id=hold["id"]))

    assert response.status_code == 201, response.json()
    assert response.json()["points_redeemed"] == "800.00"


def test_same_number_and_content_again_answers_the_order_as_placed_and_changes_nothing(api, customer):
    seed(customer, 1000)
    body = furniture(customer_id=customer.pk, redeem="500", created_at="2026-03-01T10:00:00+03:00")
    first = post(api, ORDERS, body)
    before = snapshot()

    again = post(api, ORDERS, body)  # another Idempotency-Key: the till sent the order twice

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert snapshot() == before
    assert_reconciled()


def test_same_order_without_created_at_again_replays(api, customer):
    body = furniture(customer_id=customer.pk)
    first = post(api, ORDERS, body)
    before = snapshot()

    again = post(api, ORDERS, body)

    assert (again.status_code, again.json()) == (200, first.json())
    assert snapshot() == before
    assert_reconciled()


def test_same_idempotency_key_replays_the_first_answer(api, customer):
    body = furniture(customer_id=customer.pk)
    first = post(api, ORDERS, body, key="checkout-1")
    before = snapshot()

    again = post(api, ORDERS, body, key="checkout-1")

    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (201, first.json(), "true")
    assert snapshot() == before
    assert_reconciled()


def test_price_guard_accepts_the_calculated_prices(api, customer):
    body = furniture(customer_id=customer.pk)
    calculated = post(api, "/api/v1/carts/calculate", {"customer_id": customer.pk, "lines": body["lines"]})
    assert calculated.status_code == 200

    response = post(api, ORDERS, {**body, "calculation": calculated.json()["calculation"]})

    assert response.status_code == 201
    assert response.json()["points_to_earn"] == calculated.json()["totals"]["earn_points"]
    assert_reconciled()


def test_price_guard_refuses_a_changed_price_naming_the_line(api, customer):
    body = furniture(customer_id=customer.pk)
    calculation = post(api, "/api/v1/carts/calculate", {"customer_id": customer.pk, "lines": body["lines"]}).json()[
        "calculation"
    ]
    body["lines"][1]["price"] = "4500.00"
    before = snapshot()

    response = post(api, ORDERS, {**body, "calculation": calculation})

    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], list(error["fields"]), error["fields"]["lines.1"][0]["code"]) == (
        "price_changed",
        ["lines.1"],
        "price_changed",
    )
    assert snapshot() == before
    assert_reconciled()


def test_till_sale_is_delivered_at_once_and_its_points_spendable(api, customer):
    store = StoreFactory(code="msk-khimki")

    order = place(api, customer_id=customer.pk, delivered=True, store="msk-khimki")

    assert (order["status"], order["store"], order["deliveries"]) == ("delivered", store.code, [])
    assert {(row["status"], row["points_status"]) for row in order["lines"]} == {("delivered", "available")}
    assert balance(customer) == (D("6100"), D("0"), D("0"), D("0"))
    assert_reconciled()


def test_offline_order_keeps_its_time_and_a_second_sending_is_harmless(api, customer):
    body = furniture(customer_id=customer.pk, offline=True, created_at="2026-01-15T12:30:00+03:00")

    first = post(api, ORDERS, body)
    second = post(api, ORDERS, body)

    assert (first.status_code, second.status_code) == (201, 200)
    assert (first.json()["offline"], first.json()["created_at"]) == (True, "2026-01-15T12:30:00+03:00")
    assert Order.objects.filter(number=body["number"]).count() == 1
    assert balance(customer) == (D("0"), D("6100"), D("0"), D("0"))
    assert_reconciled()


def test_order_with_the_phone_of_a_customer_is_theirs(api):
    holder = CustomerFactory(phone=CUSTOMER_PHONE)

    order = place(api, phone="8 (916) 111-22-33")

    assert (order["customer_id"], order["phone"]) == (holder.pk, None)
    assert balance(holder) == (D("0"), D("6100"), D("0"), D("0"))
    assert_reconciled()


def test_order_with_an_unknown_phone_keeps_it_and_is_matched_later(api):
    order = place(api, phone=CUSTOMER_PHONE, delivered=True)
    assert (order["customer_id"], order["phone"]) == (None, CUSTOMER_PHONE)
    assert Lot.objects.count() == 0  # nobody to earn them yet
    customer = CustomerFactory(phone=CUSTOMER_PHONE)

    response = post(api, order_url(order["number"], "customer"), {"phone": CUSTOMER_PHONE})

    assert response.status_code == 200
    assert response.json()["customer_id"] == customer.pk
    assert {row["points_status"] for row in response.json()["lines"]} == {"available"}  # delivered: spendable
    assert balance(customer) == (D("6100"), D("0"), D("0"), D("0"))
    assert_reconciled()


def test_order_matched_by_card(api):
    order = place(api, card="CARD-0042")
    assert (order["customer_id"], order["card"]) == (None, "CARD-0042")
    customer = CustomerFactory(card_number="CARD-0042")

    response = post(api, order_url(order["number"], "customer"), {"card": "CARD-0042"})

    assert response.json()["customer_id"] == customer.pk
    assert {row["points_status"] for row in response.json()["lines"]} == {"pending"}
    assert balance(customer) == (D("0"), D("6100"), D("0"), D("0"))
    assert_reconciled()


# --- deliveries, cancellations, returns, payments ---------------------------------------------------------------


def test_partial_then_full_delivery_unlocks_exactly_the_delivered_points(api, customer):
    order = place(api, customer_id=customer.pk)

    partial = post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 2, "quantity": "2"}]})

    assert partial.status_code == 201
    delivery = partial.json()
    assert (delivery["kind"], delivery["parent"], delivery["number"], delivery["points_to_earn"]) == (
        "delivery",
        order["number"],
        f"{order['number']}/1",
        "500.00",
    )
    assert [(row["line_number"], row["part"], row["quantity"]) for row in delivery["lines"]] == [(2, 1, "2.000")]
    assert balance(customer) == (D("500"), D("5600"), D("0"), D("0"))
    after = api.get(order_url(order["number"])).json()
    assert after["status"] == "partially_delivered"
    assert [(r["line_number"], r["part"], r["quantity"], r["status"], r["points_status"]) for r in after["lines"]] == [
        (1, 0, "1.000", "placed", "pending"),
        (2, 0, "2.000", "placed", "pending"),
        (2, 1, "2.000", "delivered", "available"),
        (3, 0, "1.000", "placed", "pending"),
    ]

    full = post(
        api,
        order_url(order["number"], "deliveries"),
        {"number": "DLV-2", "lines": [{"line_number": 1}, {"line_number": 2}, {"line_number": 3}]},
    )

    assert full.status_code == 201
    assert (full.json()["number"], full.json()["points_to_earn"]) == ("DLV-2", "5600.00")
    after = api.get(order_url(order["number"])).json()
    assert after["status"] == "delivered"
    assert [d["number"] for d in after["deliveries"]] == [f"{order['number']}/1", "DLV-2"]
    assert balance(customer) == (D("6100"), D("0"), D("0"), D("0"))
    assert_reconciled()


def test_a_delivery_is_read_by_its_number(api, customer):
    order = place(api, customer_id=customer.pk)
    post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 3}]})

    delivery = api.get(order_url(f"{order['number']}/1"))

    assert delivery.status_code == 200
    assert (delivery.json()["kind"], delivery.json()["parent"]) == ("delivery", order["number"])
    assert [row["sku"] for row in delivery.json()["lines"]] == ["NIGHTSTAND-1"]
    assert_reconciled()


def test_a_delivery_takes_the_next_number_no_order_of_the_channel_carries(api, customer):
    order = place(api, customer_id=customer.pk)
    for n in range(1, 18):  # more than two batches of candidates: DELIVERY_NUMBERS_PER_QUERY
        place(api, number=f"{order['number']}/{n}")
    place(api, number=f"{order['number']}x/19")  # a number that only starts the same way takes nothing

    first = post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 1}]})
    second = post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 3}]})

    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["number"], second.json()["number"]) == (f"{order['number']}/18", f"{order['number']}/19")


def test_cancelling_a_line_refunds_its_points_and_cancels_its_accrual(api, customer):
    seed(customer, 1000)
    order = place(api, customer_id=customer.pk, redeem="500")  # spent on the sofa

    response = post(
        api, order_url(order["number"], "cancellations"), {"lines": [{"line_number": 1}], "reason": "Out of stock"}
    )

    assert response.status_code == 200
    sofa = line(response.json(), 1)
    assert (sofa["status"], sofa["points_status"], sofa["closed_at"] is not None) == ("cancelled", "cancelled", True)
    assert balance(customer) == (D("1000"), D("1600"), D("0"), D("0"))

    rest = post(api, order_url(order["number"], "cancellations"), {})

    assert rest.status_code == 200
    assert rest.json()["status"] == "cancelled"
    assert {row["points_status"] for row in rest.json()["lines"]} == {"cancelled"}
    assert balance(customer) == (D("1000"), D("0"), D("0"), D("0"))
    assert_reconciled()


def test_returning_part_of_a_delivered_line_claws_back_its_share(api, customer):
    order = place(api, customer_id=customer.pk)
    post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 2}]})

    response = post(api, order_url(order["number"], "returns"), {"lines": [{"line_number": 2, "quantity": "1"}]})

    assert response.status_code == 200
    assert response.json()["status"] == "partially_returned"
    chairs = [
        (r["part"], r["quantity"], r["status"], r["points_status"])
        for r in response.json()["lines"]
        if r["line_number"] == 2
    ]
    assert chairs == [(0, "3.000", "delivered", "available"), (1, "1.000", "returned", "clawed_back")]
    assert balance(customer) == (D("750"), D("5100"), D("0"), D("0"))
    assert_reconciled()


def test_payments_in_parts_are_listed_and_a_repeated_payment_changes_nothing(api, customer):
    order = place(api, customer_id=customer.pk)

    first = post(
        api, order_url(order["number"], "payments"), {"payment_id": "p-1", "method": "card", "amount": "50000"}
    )
    again = post(
        api, order_url(order["number"], "payments"), {"payment_id": "p-1", "method": "card", "amount": "50000"}
    )
    post(api, order_url(order["number"], "payments"), {"payment_id": "p-2", "method": "cash", "amount": "72000.00"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == {
        "payment_id": "p-1",
        "method": "card",
        "amount": "50000.00",
        "status": "paid",
        "paid_at": first.json()["paid_at"],
    }
    payments = api.get(order_url(order["number"])).json()["payments"]
    assert [(p["payment_id"], p["method"], p["amount"]) for p in payments] == [
        ("p-1", "card", "50000.00"),
        ("p-2", "cash", "72000.00"),
    ]
    assert_reconciled()


def test_interest_points_unlock_as_payments_cover_the_lines(api, customer):
    Programme.objects.filter(code="retail").update(unlock_on_payment=["loan_interest"])
    interest = [
        {"line_number": n, "sku": f"INTEREST-{n}", "quantity": "1", "price": price, "operation_type": "loan_interest"}
        for n, price in ((1, "1000.00"), (2, "2000.00"))
    ]
    order = post(api, ORDERS, {"number": number(), "customer_id": customer.pk, "lines": interest}).json()
    assert (order["unlocks_on"], [row["points_status"] for row in order["lines"]]) == ("payment", ["pending"] * 2)

    post(api, order_url(order["number"], "payments"), {"payment_id": "p-1", "method": "cash", "amount": "1500"})

    paid = api.get(order_url(order["number"])).json()
    assert [row["points_status"] for row in paid["lines"]] == ["available", "pending"]
    assert balance(customer) == (D("50"), D("100"), D("0"), D("0"))

    cancelled = post(api, order_url(order["number"], "cancellations"), {}).json()

    # Paid, so unlocked, before it was cancelled: taken back; the unpaid line's points simply cancelled.
    assert [row["points_status"] for row in cancelled["lines"]] == ["clawed_back", "cancelled"]
    assert balance(customer) == (D("0"), D("0"), D("0"), D("0"))
    assert_reconciled()


def test_points_of_a_merged_customers_order_follow_the_survivor(api, channel, customer):
    duplicate = CustomerFactory()
    order = place(api, customer_id=duplicate.pk)
    customer_merge(survivor=customer, duplicate=duplicate, actor=Actor(channel=channel), reason="Same person")

    delivered = post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 2}]})

    assert delivered.status_code == 201
    after = api.get(order_url(order["number"])).json()
    assert (after["customer_id"], [row["points_status"] for row in after["lines"]]) == (
        customer.pk,
        ["pending", "available", "pending"],
    )
    assert balance(customer) == (D("1000"), D("5100"), D("0"), D("0"))
    assert_reconciled()


def test_a_payment_on_a_delivery_is_the_orders(api, customer):
    order = place(api, customer_id=customer.pk)
    delivery = post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 2}]}).json()

    response = post(
        api, order_url(delivery["number"], "payments"), {"payment_id": "cod-1", "method": "cash", "amount": "20000"}
    )

    assert response.status_code == 201
    assert [p["payment_id"] for p in api.get(order_url(order["number"])).json()["payments"]] == ["cod-1"]
    assert Payment.objects.get().order.number == order["number"]


def test_cancel_and_reorder_referencing_the_parent_is_a_delivery(api, customer):
    order = place(api, customer_id=customer.pk)
    post(api, order_url(order["number"], "cancellations"), {"lines": [{"line_number": 2}]})

    response = post(
        api,
        ORDERS,
        {
            "number": "SO-CHAIRS",
            "parent_number": order["number"],
            "lines": [{"line_number": 1, "sku": "CHAIR-1", "quantity": "4", "price": "5000.00"}],
        },
    )

    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["parent"], response.json()["number"]) == (
        "delivery",
        order["number"],
        "SO-CHAIRS",
    )
    assert line(api.get(order_url(order["number"])).json(), 2)["status"] == "delivered"
    assert balance(customer) == (D("1000"), D("5100"), D("0"), D("0"))
    assert_reconciled()


def test_another_channels_order_is_read_with_its_source(api, channel_client, customer):
    erp = ChannelFactory(code="erp", scopes=[Scope.ORDERS_WRITE, Scope.ORDERS_READ])
    order = place(channel_client(erp), customer_id=customer.pk)

    mine = api.get(order_url(order["number"]))
    theirs = api.get(order_url(order["number"]), {"source": "erp"})

    assert mine.status_code == 404
    assert (theirs.status_code, theirs.json()["source"]) == (200, "erp")


def test_writing_needs_the_orders_write_scope(channel_client):
    reader = ChannelFactory(scopes=[Scope.ORDERS_READ])

    response = post(channel_client(reader), ORDERS, furniture())

    assert (response.status_code, response.json()["error"]["code"]) == (403, "missing_scope")


def test_hand_built_answer_is_what_the_documented_serializer_renders(api, customer):
    seed(customer, 1000)
    order = place(api, customer_id=customer.pk, redeem="300", store=StoreFactory().code)
    post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 2, "quantity": "3"}]})
    post(api, order_url(order["number"], "returns"), {"lines": [{"line_number": 2, "quantity": "1"}]})
    post(api, order_url(order["number"], "cancellations"), {"lines": [{"line_number": 3}]})
    post(api, order_url(order["number"], "payments"), {"payment_id": "p-1", "method": "card", "amount": "1000"})
    anonymous = place(api, phone=CUSTOMER_PHONE)

    for number_ in (order["number"], f"{order['number']}/1", anonymous["number"]):
        loaded = order_get(channel=Order.objects.get(number=number_).channel, number=number_)
        assert order_answer(loaded) == OrderOutput(loaded).data
    assert_reconciled()


# --- queries per request ----------------------------------------------------------------------------------------
# Counted as Django logs them: in a test every transaction.atomic() is a SAVEPOINT / RELEASE pair (in production
# BEGIN / COMMIT, not logged), so the statements really sent are a few fewer. What matters is that the counts do
# not grow with the number of lines, deliveries or orders.


def many_lines(count: int) -> list[dict]:
    return [
        {"line_number": index + 1, "sku": f"SKU-{index}", "quantity": "1", "price": "1000.00"} for index in range(count)
    ]


POSTGRESQL_COUNTS = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statement counts")


@POSTGRESQL_COUNTS
@pytest.mark.parametrize("lines", [3, 30])
def test_place_with_redemption_takes_a_fixed_number_of_queries(api, customer, django_assert_max_num_queries, lines):
    seed(customer, 1000)
    store = StoreFactory()  # read with the customer: nothing of it is read again
    body = {
        "number": number(),
        "customer_id": customer.pk,
        "store": store.code,
        "redeem": "100",
        "lines": many_lines(lines),
    }
    post(api, "/api/v1/carts/calculate", {"lines": body["lines"]})  # the programme's rules cached, as in production

    with django_assert_max_num_queries(PLACE_QUERIES):
        response = post(api, ORDERS, body)

    assert response.status_code == 201


@POSTGRESQL_COUNTS
@pytest.mark.parametrize("lines", [3, 30])
def test_deliver_takes_a_fixed_number_of_queries(api, customer, django_assert_max_num_queries, lines):
    order = post(api, ORDERS, {"number": number(), "customer_id": customer.pk, "lines": many_lines(lines)}).json()
    wanted = [{"line_number": row["line_number"]} for row in order["lines"]]
    wanted[0]["quantity"] = "0.5"  # one line split

    with django_assert_max_num_queries(DELIVER_QUERIES):
        response = post(api, order_url(order["number"], "deliveries"), {"lines": wanted})

    assert response.status_code == 201


@pytest.mark.parametrize("deliveries", [1, 6])
def test_get_order_takes_a_fixed_number_of_queries(api, customer, django_assert_max_num_queries, deliveries):
    order = post(api, ORDERS, {"number": number(), "customer_id": customer.pk, "lines": many_lines(6)}).json()
    for line_number in range(1, deliveries + 1):
        post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": line_number}]})
    post(api, order_url(order["number"], "payments"), {"payment_id": "p-1", "method": "card", "amount": "100"})

    with django_assert_max_num_queries(GET_QUERIES):
        response = api.get(order_url(order["number"]))

    assert len(response.json()["deliveries"]) == deliveries


# The measured counts on PostgreSQL, savepoints included (on SQLite the services take the ORM's statements).
# Place (13): the idempotency claim and answer, the customer with its store and state for the calculator (one
# statement), the number's check, the catalogue, BEGIN, the order with its event, the redemption, the accrual's
# account lock and merge check, the lots with the journal, the lines with the points' payment, COMMIT. Deliver (30,
# a line split and a first purchase, so the tier row is created): mostly the ledger (the split lot, the unlock) and
# the tier's purchase record. Get: the API key, the order with its channel, parent and store, its lines with their
# lots and deliveries, its payments.
PLACE_QUERIES = 13
DELIVER_QUERIES = 30
GET_QUERIES = 4
