"""Every refused request of the orders API answers a 4xx with a machine code and leaves the database as it was
(SPEC F-ORD-6: nothing half-applied): the orders, their lines, payments and events, the ledger's entries, lots,
holds and balances are compared before and after."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.tests.factories import CategoryFactory, ProductFactory
from core.actors import Actor
from customers.services import customer_merge
from customers.tests.factories import CustomerFactory
from orders.tests.test_api import (  # _programmes: an autouse fixture
    CUSTOMER_PHONE,
    ORDERS,
    _programmes,  # noqa: F401
    assert_reconciled,
    furniture,
    order_url,
    place,
    post,
    seed,
    snapshot,
)
from points.services import points_hold

pytestmark = pytest.mark.django_db


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code, response.json()
    return response.json()["error"]


@pytest.fixture
def order(api, customer) -> dict:
    """The furniture order, 500 points spent on it, the chairs delivered."""
    seed(customer, 1000)
    placed = place(api, customer_id=customer.pk, redeem="500")
    post(api, order_url(placed["number"], "deliveries"), {"lines": [{"line_number": 2}]})
    return placed


def assert_unchanged(before: dict) -> None:
    assert snapshot() == before
    assert_reconciled()


# --- unknown orders and lines -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("deliveries", {"lines": [{"line_number": 1}]}),
        ("cancellations", {}),
        ("returns", {"lines": [{"line_number": 1}]}),
        ("payments", {"payment_id": "p-1", "method": "card", "amount": "100"}),
        ("customer", {"phone": CUSTOMER_PHONE}),
    ],
)
def test_an_unknown_order_is_not_found(api, order, action, body):
    before = snapshot()

    error = refused(post(api, order_url("NO-SUCH", action), body), 404, "order_not_found")

    assert error["number"] == "NO-SUCH"
    assert_unchanged(before)


def test_reading_an_unknown_order_is_not_found(api, order):
    before = snapshot()

    refused(api.get(order_url("NO-SUCH")), 404, "order_not_found")
    refused(api.get(order_url(order["number"]), {"source": "no-such-channel"}), 404, "order_not_found")
    assert_unchanged(before)


def test_a_line_the_order_lacks_is_refused_and_nothing_of_the_request_applied(api, order):
    before = snapshot()

    response = post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 1}, {"line_number": 9}]})

    error = refused(response, 409, "order_line_unknown")
    assert (error["field"], error["line_number"]) == ("lines.1", 9)
    assert_unchanged(before)


def test_returning_an_undelivered_line_is_refused(api, order):
    before = snapshot()

    error = refused(
        post(api, order_url(order["number"], "returns"), {"lines": [{"line_number": 3}]}),
        409,
        "order_line_not_delivered",
    )

    assert (error["field"], error["line_number"], error["status"]) == ("lines.0", 3, "placed")
    assert_unchanged(before)


def test_cancelling_a_delivered_line_is_refused(api, order):
    before = snapshot()

    refused(
        post(api, order_url(order["number"], "cancellations"), {"lines": [{"line_number": 3}, {"line_number": 2}]}),
        409,
        "order_line_not_placed",
    )
    assert_unchanged(before)


def test_delivering_a_line_twice_is_refused(api, order):
    before = snapshot()

    refused(
        post(api, order_url(order["number"], "deliveries"), {"lines": [{"line_number": 2}]}),
        409,
        "order_line_not_placed",
    )
    assert_unchanged(before)


@pytest.mark.parametrize("action", ["deliveries", "cancellations"])
def test_more_than_the_line_has_is_refused(api, customer, action):
    placed = place(api, customer_id=customer.pk)
    before = snapshot()

    error = refused(
        post(api, order_url(placed["number"], action), {"lines": [{"line_number": 2, "quantity": "5"}]}),
        409,
        "order_line_quantity_exceeded",
    )

    assert (error["field"], error["available"]) == ("lines.0", "4.000")
    assert_unchanged(before)


def test_returning_more_than_was_delivered_is_refused(api, order):
    before = snapshot()

    refused(
        post(api, order_url(order["number"], "returns"), {"lines": [{"line_number": 2, "quantity": "4.5"}]}),
        409,
        "order_line_quantity_exceeded",
    )
    assert_unchanged(before)


def test_cancelling_an_order_with_nothing_left_to_cancel_is_refused(api, customer):
    placed = place(api, customer_id=customer.pk, delivered=True)
    before = snapshot()

    refused(post(api, order_url(placed["number"], "cancellations"), {}), 409, "order_nothing_to_cancel")
    assert_unchanged(before)


def test_a_delivery_number_already_taken_is_refused_after_the_line_was_split(api, order):
    # The split of line 1 happens before the delivery's number is found taken: it must be rolled back with it.
    before = snapshot()

    response = post(
        api,
        order_url(order["number"], "deliveries"),
        {"number": order["number"], "lines": [{"line_number": 1, "quantity": "0.5"}]},
    )

    refused(response, 409, "order_exists")
    assert_unchanged(before)


def test_redelivering_a_line_the_parent_never_cancelled_is_refused(api, order):
    before = snapshot()

    response = post(
        api,
        ORDERS,
        {
            "number": "SO-REORDER",
            "parent_number": order["number"],
            "lines": [{"line_number": 1, "sku": "NIGHTSTAND-1", "quantity": "1", "price": "12000.00"}],
        },
    )

    refused(response, 409, "order_line_unknown")
    assert_unchanged(before)


def test_redelivering_for_an_unknown_parent_is_refused(api, order):
    before = snapshot()

    refused(post(api, ORDERS, furniture(parent_number="NO-SUCH")), 404, "order_not_found")
    assert_unchanged(before)


# --- bad bodies ---------------------------------------------------------------------------------------------------


def _line(**fields) -> dict:
    return {"line_number": 1, "sku": "SOFA-1", "quantity": "1", "price": "90000.00", **fields}


BAD_ORDERS = {
    "nothing": ({}, {"number", "lines"}),
    "blank number": ({"number": "", "lines": [_line()]}, {"number"}),
    "no lines": ({"number": "X", "lines": []}, {"lines"}),
    "lines not a list": ({"number": "X", "lines": "sofa"}, {"lines"}),
    "zero quantity": ({"number": "X", "lines": [_line(quantity="0")]}, {"lines.0.quantity"}),
    "quantity not a number": ({"number": "X", "lines": [_line(quantity="NaN")]}, {"lines.0.quantity"}),
    "negative price": ({"number": "X", "lines": [_line(price="-1")]}, {"lines.0.price"}),
    "full discount": ({"number": "X", "lines": [_line(discount_percent="100")]}, {"lines.0.discount_percent"}),
    "blank sku": ({"number": "X", "lines": [_line(sku="")]}, {"lines.0.sku"}),
    "null character": ({"number": "X", "lines": [_line(sku="SO\x00FA")]}, {"lines.0.sku"}),
    "unknown operation": ({"number": "X", "lines": [_line(operation_type="gift")]}, {"lines.0.operation_type"}),
    "line number 0": ({"number": "X", "lines": [_line(line_number=0)]}, {"lines.0.line_number"}),
    "line number too big": ({"number": "X", "lines": [_line(line_number=2**31)]}, {"lines.0.line_number"}),
    "same line number twice": ({"number": "X", "lines": [_line(), _line(sku="CHAIR-1")]}, {"lines.1.line_number"}),
    "attributes not an object": ({"number": "X", "lines": [_line(attributes=[1])]}, {"lines.0.attributes"}),
    "null in attributes": ({"number": "X", "lines": [_line(attributes={"colour": "re\x00d"})]}, {"lines.0.attributes"}),
    "too large": ({"number": "X", "lines": [_line(price="999999999999.99", quantity="1000")]}, {"lines.0.quantity"}),
    "too large in all": (
        {"number": "X", "lines": [_line(price="6000000000"), _line(line_number=2, price="6000000000")]},
        {"lines"},
    ),
    "bad phone": ({"number": "X", "phone": "12", "lines": [_line()]}, {"phone"}),
    "bad customer id": ({"number": "X", "customer_id": "me", "lines": [_line()]}, {"customer_id"}),
    "bad time": ({"number": "X", "created_at": "yesterday", "lines": [_line()]}, {"created_at"}),
    "negative redeem": ({"number": "X", "redeem": "-5", "lines": [_line()]}, {"redeem"}),
    "redeem of a fraction of a cent": ({"number": "X", "redeem": "1.001", "lines": [_line()]}, {"redeem"}),
    "unknown store": ({"number": "X", "store": "no-such-store", "lines": [_line()]}, {"store"}),
    "points as a payment": (
        {"number": "X", "lines": [_line()], "payments": [{"payment_id": "p", "method": "points", "amount": "5"}]},
        {"payments.0.method"},
    ),
    "zero payment": (
        {"number": "X", "lines": [_line()], "payments": [{"payment_id": "p", "method": "card", "amount": "0"}]},
        {"payments.0.amount"},
    ),
    "too many lines": ({"number": "X", "lines": [_line(line_number=n) for n in range(1, 202)]}, {"lines"}),
    "not an object": ([1, 2], {"non_field_errors"}),
}


@pytest.mark.parametrize(("body", "fields"), BAD_ORDERS.values(), ids=BAD_ORDERS.keys())
def test_a_bad_order_is_order_invalid_naming_each_field(api, customer, body, fields):
    seed(customer, 1000)  # refused on its shape: no order needed around it
    before = snapshot()

    error = refused(post(api, ORDERS, body), 400, "order_invalid")

    assert set(error["fields"]) == fields
    assert all(problem["code"] for problems in error["fields"].values() for problem in problems)
    assert_unchanged(before)


@pytest.mark.parametrize(
    "fields",
    [{}, {"customer_id": 987654}, {"phone": CUSTOMER_PHONE}, {"parent_number": "NO-SUCH"}],
    ids=["anonymous", "with-an-unknown-customer", "by-phone", "delivering-by-the-case-study-scheme"],
)
def test_an_unknown_store_says_so_before_anything_else(api, order, fields):
    before = snapshot()

    error = refused(post(api, ORDERS, furniture(store="no-such-store", **fields)), 400, "order_invalid")

    assert error["fields"]["store"][0]["code"] == "unknown_store"
    assert_unchanged(before)


BAD_LINE_REQUESTS = {
    "nothing": ({}, {"lines"}),
    "no lines": ({"lines": []}, {"lines"}),
    "line number not a number": ({"lines": [{"line_number": "two"}]}, {"lines.0.line_number"}),
    "zero quantity": ({"lines": [{"line_number": 1, "quantity": "0"}]}, {"lines.0.quantity"}),
    "same line twice": ({"lines": [{"line_number": 1}, {"line_number": 1}]}, {"lines.1.line_number"}),
    "bad time": ({"lines": [{"line_number": 1}], "delivered_at": "soon"}, {"delivered_at"}),
}


@pytest.mark.parametrize(("body", "fields"), BAD_LINE_REQUESTS.values(), ids=BAD_LINE_REQUESTS.keys())
def test_a_bad_delivery_is_order_invalid_naming_each_field(api, order, body, fields):
    before = snapshot()

    error = refused(post(api, order_url(order["number"], "deliveries"), body), 400, "order_invalid")

    assert set(error["fields"]) == fields
    assert_unchanged(before)


def test_a_return_without_lines_is_order_invalid(api, order):
    before = snapshot()

    refused(post(api, order_url(order["number"], "returns"), {"reason": "Broken"}), 400, "order_invalid")
    assert_unchanged(before)


def test_malformed_json_is_a_parse_error(api, order):
    before = snapshot()

    response = api.post(ORDERS, b"{", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-parse")

    refused(response, 400, "parse_error")
    assert_unchanged(before)


# --- placing: customers, points, holds, replays -----------------------------------------------------------------


def test_an_order_with_an_existing_number_and_other_content_is_refused(api, order):
    before = snapshot()

    changed = furniture(number=order["number"], customer_id=order["customer_id"], redeem="400")

    error = refused(post(api, ORDERS, changed), 409, "order_exists")
    assert error["number"] == order["number"]
    assert_unchanged(before)


def test_an_unknown_customer_is_not_found(api, order):
    before = snapshot()

    refused(post(api, ORDERS, furniture(customer_id=987654)), 404, "customer_not_found")
    assert_unchanged(before)


def test_a_merged_customer_points_to_the_survivor(api, channel, order, customer):
    duplicate = CustomerFactory()
    customer_merge(survivor=customer, duplicate=duplicate, actor=Actor(channel=channel), reason="Same person")
    before = snapshot()

    error = refused(post(api, ORDERS, furniture(customer_id=duplicate.pk)), 409, "customer_merged")

    assert error["merged_into"] == customer.pk
    assert_unchanged(before)


def test_spending_more_than_the_balance_is_refused(api, order, customer):
    before = snapshot()  # 500 left of the 1000 seeded, and the chairs' 1000

    response = post(api, ORDERS, furniture(customer_id=customer.pk, redeem="1600"))

    assert refused(response, 422, "redemption_above_maximum")["maximum"] == "1500"
    assert_unchanged(before)


def test_spending_points_without_a_customer_is_refused(api, order):
    before = snapshot()

    refused(post(api, ORDERS, furniture(redeem="100")), 422, "redemption_needs_customer")
    assert_unchanged(before)


def test_an_offline_order_cannot_spend_points_it_did_not_hold(api, order, customer):
    before = snapshot()

    body = furniture(customer_id=customer.pk, offline=True, created_at="2026-01-15T12:30:00+03:00", redeem="100")

    refused(post(api, ORDERS, body), 422, "offline_redemption_not_held")
    assert_unchanged(before)


def test_a_timed_out_hold_cannot_be_committed(api, order, customer):
    long_ago = timezone.now() - timedelta(hours=2)
    hold = points_hold(customer=customer, amount="300", operation_key="test:hold:old", now=long_ago).hold
    before = snapshot()  # still open: the release job has not run yet

    error = refused(post(api, ORDERS, furniture(customer_id=customer.pk, hold_id=hold.pk)), 409, "hold_not_open")

    assert error["state"] == "timed_out"
    assert_unchanged(before)


def test_another_customers_hold_is_refused(api, order):
    other = CustomerFactory()
    seed(other, 300)
    hold = post(api, f"/api/v1/customers/{other.pk}/points/holds", {"amount": "300"}).json()
    before = snapshot()

    refused(
        post(api, ORDERS, furniture(customer_id=order["customer_id"], hold_id=hold["id"])),
        409,
        "hold_not_for_customer",
    )
    assert_unchanged(before)


def test_an_unknown_hold_is_not_found(api, order):
    before = snapshot()

    refused(post(api, ORDERS, furniture(customer_id=order["customer_id"], hold_id=987654)), 404, "hold_not_found")
    assert_unchanged(before)


def test_a_garbled_calculation_is_refused(api, order):
    before = snapshot()

    refused(post(api, ORDERS, furniture(calculation="not-a-calculation")), 400, "calculation_invalid")
    assert_unchanged(before)


def test_a_calculation_made_for_another_customer_is_refused(api, order, customer):
    body = furniture(customer_id=customer.pk)
    calculation = post(api, "/api/v1/carts/calculate", {"lines": body["lines"]}).json()["calculation"]  # anonymous
    before = snapshot()

    refused(post(api, ORDERS, {**body, "calculation": calculation}), 400, "calculation_invalid")
    assert_unchanged(before)


def test_a_payment_id_twice_with_other_amounts_refuses_the_whole_order(api, order, customer):
    # The conflict is found after the points were spent and accrued: all of it is rolled back.
    payments = [
        {"payment_id": "p-1", "method": "card", "amount": "1000"},
        {"payment_id": "p-1", "method": "card", "amount": "2000"},
    ]
    before = snapshot()

    refused(
        post(api, ORDERS, furniture(customer_id=customer.pk, redeem="100", payments=payments)), 409, "payment_exists"
    )
    assert_unchanged(before)


def test_the_same_idempotency_key_for_another_order_is_refused(api, order):
    post(api, ORDERS, furniture(), key="k-used")
    before = snapshot()

    refused(post(api, ORDERS, furniture(), key="k-used"), 422, "idempotency_key_reused")
    assert_unchanged(before)


def test_an_order_without_idempotency_key_is_refused(api, order):
    before = snapshot()

    response = api.post(ORDERS, furniture(), format="json")

    refused(response, 400, "idempotency_key_required")
    assert_unchanged(before)


# --- payments and matching ----------------------------------------------------------------------------------------


def test_a_payment_id_again_with_another_amount_is_refused(api, order):
    url = order_url(order["number"], "payments")
    post(api, url, {"payment_id": "p-1", "method": "card", "amount": "1000"})
    before = snapshot()

    error = refused(post(api, url, {"payment_id": "p-1", "method": "card", "amount": "900"}), 409, "payment_exists")

    assert error["external_id"] == "p-1"
    assert_unchanged(before)


BAD_PAYMENTS_OK = {"payment_id": "p", "method": "cash", "amount": "10"}
BAD_PAYMENTS = {
    "nothing": ({}, {"payment_id", "method", "amount"}),
    "points": ({"payment_id": "p", "method": "points", "amount": "10"}, {"method"}),
    "negative": ({"payment_id": "p", "method": "cash", "amount": "-10"}, {"amount"}),
    "too large": ({"payment_id": "p", "method": "cash", "amount": "99999999999.00"}, {"amount"}),
}


@pytest.mark.parametrize(("body", "fields"), BAD_PAYMENTS.values(), ids=BAD_PAYMENTS.keys())
def test_a_bad_payment_is_order_invalid(api, order, body, fields):
    before = snapshot()

    error = refused(post(api, order_url(order["number"], "payments"), body), 400, "order_invalid")

    assert set(error["fields"]) == fields
    assert_unchanged(before)


@pytest.mark.parametrize(
    "body", [{}, {"phone": CUSTOMER_PHONE, "card": "CARD-1"}, {"customer_id": None, "phone": "", "card": ""}]
)
def test_matching_needs_exactly_one_identifier(api, body):
    anonymous = place(api, phone=CUSTOMER_PHONE)
    before = snapshot()

    error = refused(post(api, order_url(anonymous["number"], "customer"), body), 400, "order_invalid")

    assert list(error["fields"]) == ["non_field_errors"]
    assert_unchanged(before)


def test_matching_to_nobody_is_not_found(api):
    anonymous = place(api, phone=CUSTOMER_PHONE)
    before = snapshot()

    refused(post(api, order_url(anonymous["number"], "customer"), {"phone": CUSTOMER_PHONE}), 404, "customer_not_found")
    assert_unchanged(before)


def test_matching_an_order_of_another_customer_is_refused(api, order):
    other = CustomerFactory()
    before = snapshot()

    refused(
        post(api, order_url(order["number"], "customer"), {"customer_id": other.pk}), 409, "order_customer_attached"
    )
    assert_unchanged(before)


def test_an_order_number_with_a_null_character_is_not_found(api, order):
    before = snapshot()

    refused(api.get(order_url("SO%00X")), 404, "order_not_found")
    refused(post(api, order_url("SO%00X", "payments"), BAD_PAYMENTS_OK), 404, "order_not_found")
    assert_unchanged(before)


@pytest.mark.parametrize("field", ["customer_id", "hold_id"])
def test_an_id_beyond_the_database_is_order_invalid(api, order, field):
    before = snapshot()

    error = refused(post(api, ORDERS, furniture(**{field: 2**63})), 400, "order_invalid")

    assert list(error["fields"]) == [field]
    assert_unchanged(before)


def test_history_of_a_customer_id_beyond_the_database_is_not_found(api):
    response = api.get(f"/api/v1/customers/{2**64}/orders")

    assert response.status_code == 404


@pytest.mark.parametrize("long", ["name", "category"])
def test_a_product_the_catalogue_names_at_length_can_be_ordered(api, customer, long):
    category = CategoryFactory(code="c" * 64 if long == "category" else "sofas")
    ProductFactory(sku="LONG-1", name="N" * 255 if long == "name" else "Sofa", category=category)
    body = {"number": "L-1", "customer_id": customer.pk, "lines": [_line(sku="LONG-1")]}

    response = post(api, ORDERS, body)

    assert response.status_code == 201
