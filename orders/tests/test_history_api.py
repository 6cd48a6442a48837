"""The personal account's order history (SPEC F-ORD-3): one entry per order, its deliveries inside it with the
points each unlocked, newest first, in a fixed number of queries."""

from __future__ import annotations

import pytest

from core.actors import Actor
from customers.services import customer_merge
from customers.tests.factories import CustomerFactory
from orders.tests.test_api import (  # _programmes: an autouse fixture
    ORDERS,
    D,
    _programmes,  # noqa: F401
    assert_reconciled,
    balance,
    order_url,
    place,
    post,
)

pytestmark = pytest.mark.django_db

# The API key, the customer, the page's count, the page, its orders' lines (with lots and deliveries), their payments.
HISTORY_QUERIES = 6


def history_url(customer) -> str:
    return f"/api/v1/customers/{customer.pk}/orders"


def deliver(client, order: dict, *line_numbers: int, number: str = "") -> dict:
    body = {"number": number, "lines": [{"line_number": n} for n in line_numbers]}
    response = post(client, order_url(order["number"], "deliveries"), body)
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.smoke
def test_sofa_chairs_and_nightstand_delivered_twice_are_one_order_with_two_deliveries(api, customer):
    order = place(api, customer_id=customer.pk, created_at="2026-03-01T10:00:00+03:00")
    deliver(api, order, 2, number="CHAIRS")  # tomorrow
    deliver(api, order, 3, number="NIGHTSTAND")  # in two weeks

    response = api.get(history_url(customer))

    assert response.status_code == 200
    assert response.json()["count"] == 1
    [entry] = response.json()["results"]
    assert (entry["number"], entry["kind"], entry["status"]) == (order["number"], "order", "partially_delivered")
    assert [
        (
            d["number"],
            d["points_to_earn"],
            [(r["line_number"], r["part"], r["sku"], r["points_to_earn"]) for r in d["lines"]],
        )
        for d in entry["deliveries"]
    ] == [
        ("CHAIRS", "1000.00", [(2, 0, "CHAIR-1", "1000.00")]),
        ("NIGHTSTAND", "600.00", [(3, 0, "NIGHTSTAND-1", "600.00")]),
    ]
    assert [(r["sku"], r["status"], r["points_status"], r["delivery"]) for r in entry["lines"]] == [
        ("SOFA-1", "placed", "pending", None),  # in three months
        ("CHAIR-1", "delivered", "available", "CHAIRS"),
        ("NIGHTSTAND-1", "delivered", "available", "NIGHTSTAND"),
    ]
    # The chairs' and the nightstand's points are spendable, the sofa's still pending.
    assert balance(customer) == (D("1600"), D("4500"), D("0"), D("0"))
    assert_reconciled()


def test_history_is_the_customers_parent_orders_newest_first(api, customer):
    older = place(api, customer_id=customer.pk, created_at="2026-01-10T10:00:00+03:00")
    newer = place(api, customer_id=customer.pk, created_at="2026-02-10T10:00:00+03:00")
    deliver(api, older, 1, 2, 3)
    place(api, customer_id=CustomerFactory().pk)  # someone else's
    place(api)  # anonymous

    results = api.get(history_url(customer)).json()["results"]

    assert [entry["number"] for entry in results] == [newer["number"], older["number"]]
    assert [len(entry["deliveries"]) for entry in results] == [0, 1]


def test_history_pages(api, customer):
    numbers = [
        place(api, customer_id=customer.pk, created_at=f"2026-01-{day:02d}T10:00:00Z")["number"] for day in (1, 2, 3)
    ]

    first = api.get(history_url(customer), {"page_size": 2}).json()
    second = api.get(first["next"]).json()

    assert first["count"] == 3
    assert [entry["number"] for entry in first["results"] + second["results"]] == numbers[::-1]


def test_history_of_a_merged_customer_points_to_the_survivor(api, channel, customer):
    duplicate = CustomerFactory()
    customer_merge(survivor=customer, duplicate=duplicate, actor=Actor(channel=channel), reason="Same person")

    response = api.get(history_url(duplicate))

    assert response.status_code == 409
    assert (response.json()["error"]["code"], response.json()["error"]["merged_into"]) == (
        "customer_merged",
        customer.pk,
    )


def test_history_of_an_unknown_customer_is_not_found(api):
    response = api.get("/api/v1/customers/987654/orders")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "customer_not_found")


def test_history_needs_the_orders_read_scope(channel_client, customer):
    from integrations.scopes import Scope
    from integrations.tests.factories import ChannelFactory

    client = channel_client(ChannelFactory(scopes=[Scope.CUSTOMERS_READ]))

    assert client.get(history_url(customer)).status_code == 403


@pytest.mark.parametrize("orders", [1, 6])
def test_history_takes_a_fixed_number_of_queries(api, customer, django_assert_max_num_queries, orders):
    for _ in range(orders):
        order = place(api, customer_id=customer.pk)
        deliver(api, order, 2)
        deliver(api, order, 3)
        post(api, order_url(order["number"], "payments"), {"payment_id": "p", "method": "card", "amount": "100"})

    with django_assert_max_num_queries(HISTORY_QUERIES):
        response = api.get(history_url(customer))

    assert [len(entry["deliveries"]) for entry in response.json()["results"]] == [2] * orders
    assert all(len(entry["payments"]) == 1 for entry in response.json()["results"])


def test_a_new_order_shows_at_once_with_its_points_pending(api, customer):
    post(
        api,
        ORDERS,
        {
            "number": "TILL-1",
            "customer_id": customer.pk,
            "lines": [{"line_number": 1, "sku": "LAMP-1", "quantity": "2", "price": "1500.00"}],
        },
    )

    [entry] = api.get(history_url(customer)).json()["results"]

    assert (entry["number"], entry["points_to_earn"], entry["lines"][0]["points_status"]) == (
        "TILL-1",
        "150.00",
        "pending",
    )
