"""The showroom till in Chromium: a seller finds a customer by a phone typed as people say it, builds a two-line cart
with the keyboard, sees why each line may be paid in points only so far, spends points and places the order."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from catalog.tests.factories import CategoryFactory, ProductFactory
from customers.tests.factories import CustomerFactory, StoreFactory
from orders.models import Order
from orders.tests.factories import seed_points
from points.tests.helpers import D, assert_consistent, buckets
from programmes.tests.conftest import _demo_programmes  # noqa: F401  (autouse: restores the flushed demo programmes)
from programmes.tests.factories import RedemptionRuleFactory
from staff.models import StoreMembership
from tests.browser.conftest import admin_login, screenshot

CAP_RULE = "Sofas: up to 10% in points"


@pytest.fixture
def scene(transactional_db):
    store = StoreFactory(code="msk-khimki", name="Moscow Khimki")
    seller = get_user_model().objects.create_user("anna", password="s3cret-pass", is_staff=True)
    seller.user_permissions.add(Permission.objects.get(content_type__app_label="staff", codename="use_till"))
    StoreMembership.objects.create(user=seller, store=store)
    sofas = CategoryFactory(code="sofas", name="Sofas")
    chairs = CategoryFactory(code="chairs", name="Chairs")
    ProductFactory(sku="SOFA-OSLO-3", name="Sofa Oslo, 3 seats", category=sofas)
    ProductFactory(sku="CHAIR-MALMO", name="Chair Malmo", category=chairs)
    RedemptionRuleFactory(name=CAP_RULE, categories=[sofas], percent=Decimal("10"))
    customer = CustomerFactory(phone="+79161234567", name="Irina Petrova")
    seed_points(customer, D(5000))
    return customer


def add_line(page, sku: str, quantity: str, price: str, row: int) -> None:
    """Scan (type) the SKU in the focused box, Tab to the quantity and the price, Enter."""
    page.wait_for_selector("#id_sku:focus")
    page.keyboard.type(sku)
    page.keyboard.press("Tab")
    page.keyboard.type(quantity)
    page.keyboard.press("Tab")
    page.keyboard.type(price)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#till-line-{row}")


@pytest.mark.django_db(transaction=True)
def test_a_seller_finds_a_customer_builds_a_cart_spends_points_and_places_the_order(page, scene) -> None:
    customer = scene
    admin_login(page, "anna", "s3cret-pass")
    page.click("#till-link")

    page.wait_for_selector("#id_q:focus")  # the search box has the focus: type straight away
    page.keyboard.type("8 916 123 45 67")
    page.keyboard.press("Enter")
    page.wait_for_selector("#till-customer-card")
    assert page.inner_text("#till-customer-name") == "Irina Petrova"
    assert page.inner_text("#till-tier") == "Basic"
    assert page.inner_text("#till-available") == "5000"
    screenshot(page, "till-search")

    add_line(page, "SOFA-OSLO-3", "1", "30000", row=1)
    add_line(page, "CHAIR-MALMO", "2", "4000", row=2)
    sofa, chairs = page.locator("#till-line-1"), page.locator("#till-line-2")
    assert sofa.locator(".till-line-max").inner_text() == "3000"
    assert sofa.locator(".till-line-limit").inner_text() == f"Up to 10% of the price by the rule “{CAP_RULE}”"
    assert chairs.locator(".till-line-max").inner_text() == "1600"
    assert chairs.locator(".till-line-limit").inner_text() == "Up to 20% of the price for the Basic tier"
    assert page.inner_text("#till-max") == "4600"

    page.keyboard.press("Alt+p")  # the points box's access key
    page.wait_for_selector("#id_redeem:focus")
    page.keyboard.type("4000")
    page.keyboard.press("Enter")  # applies the points, never places the order
    page.wait_for_selector("#till-redeem:text-is('4000')")
    assert page.inner_text("#till-to-pay") == "34000.00"
    assert Order.objects.count() == 0
    screenshot(page, "till-cart")

    page.keyboard.press("Alt+o")  # place the order
    page.wait_for_selector("#till-receipt")
    order = Order.objects.get()
    assert page.inner_text("#till-receipt-redeemed") == "4000"
    assert page.inner_text("#till-receipt-earned").startswith("1700")
    assert page.inner_text("#till-receipt-balance") == "2700 available, 0 pending"
    assert page.get_attribute("#till-order-link", "href") == f"/admin/orders/order/{order.pk}/change/"
    screenshot(page, "till-receipt")

    assert (order.customer, order.store.code, order.seller) == (customer, "msk-khimki", "anna")
    assert (order.points_redeemed, order.points_to_earn) == (D(4000), D(1700))
    assert buckets(customer) == (D(2700), D(0), D(0), D(0))
    assert_consistent()
    assert page.evaluate("document.activeElement.id") == "id_q"  # ready for the next customer
