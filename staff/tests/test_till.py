"""The showroom till screen through the Django test client: permission and stores, identification by phone or card,
registration by SMS code in place, the cart with the calculator's per-line caps, points to spend, placing the order
(once), htmx partials, and bounded query counts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from catalog.tests.factories import CategoryFactory, ProductFactory
from core.actors import Actor
from customers.models import Customer
from customers.tests.factories import CustomerFactory, NonMemberFactory, StoreFactory
from integrations.models import Channel
from orders.models import Order, OrderLine
from orders.tests.factories import seed_points
from points.models import Entry, Lot
from points.tests.helpers import D, assert_consistent, buckets
from programmes.models import Tier
from programmes.services.tiers import tier_assign_manual
from programmes.tests.conftest import _demo_programmes  # noqa: F401  (autouse: the demo programmes and tiers)
from programmes.tests.factories import RedemptionRuleFactory
from staff.models import StoreMembership
from staff.till.services import till_order_place
from staff.till.state import Item

pytestmark = pytest.mark.django_db

URL = "/admin/till/"
HTMX = {"HTTP_HX_REQUEST": "true"}
PHONE = "+79161234567"
CAP_RULE = "Sofas: up to 10% in points"


def make_staff(username: str, *stores, use_till: bool = True):
    user = get_user_model().objects.create_user(username, password="s3cret-pass", is_staff=True)
    if use_till:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="staff", codename="use_till"))
    for store in stores:
        StoreMembership.objects.create(user=user, store=store)
    return user


def post(client, step: str, data: dict | None = None, *, htmx: bool = True):
    return client.post(f"{URL}{step}/", data or {}, **(HTMX if htmx else {}))


def sale(response):
    return response.context["sale"]


@pytest.fixture
def store(db):
    return StoreFactory(code="msk-1", name="Moscow Khimki")


@pytest.fixture
def seller(store):
    return make_staff("anna", store)


@pytest.fixture
def till(client, seller):
    client.force_login(seller)
    return client


@pytest.fixture
def catalogue(db):
    """Two products; sofas capped at 10 % by a redemption rule (the Basic tier's own cap is 20 %)."""
    sofas = CategoryFactory(code="sofas", name="Sofas")
    chairs = CategoryFactory(code="chairs", name="Chairs")
    ProductFactory(sku="SOFA-1", name="Sofa Oslo", category=sofas)
    ProductFactory(sku="CHAIR-1", name="Chair Malmo", category=chairs)
    ProductFactory(sku="OLD-1", name="Withdrawn lamp", is_active=False)
    return RedemptionRuleFactory(name=CAP_RULE, categories=[sofas], percent=Decimal("10"))


@pytest.fixture
def member(db):
    """A Basic member with 5,000 points, registered in another store."""
    customer = CustomerFactory(
        phone=PHONE, name="Irina Petrova", card_number="7700123", registration_store=StoreFactory(code="spb-1")
    )
    seed_points(customer, D(5000))
    return customer


def build_cart(till) -> None:
    assert post(till, "cart/add", {"sku": "SOFA-1", "quantity": "1", "price": "30000"}).status_code == 200
    assert post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "2", "price": "4000"}).status_code == 200


def checkout(response) -> dict:
    page = response.content.decode()
    return {
        "token": re.search(r'name="token" value="([^"]*)"', page).group(1),
        "calculation": re.search(r'name="calculation" value="([^"]*)"', page).group(1),
    }


# --- permission and stores -------------------------------------------------------------------------------------


def test_staff_without_the_till_permission_get_403_everywhere(client, store):
    client.force_login(make_staff("clerk", store, use_till=False))

    assert client.get(URL).status_code == 403
    assert post(client, "search", {"q": PHONE}).status_code == 403
    assert post(client, "place", {}).status_code == 403


def test_an_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_a_seller_of_one_store_sells_there_without_choosing(till, store):
    response = till.get(URL)

    assert response.status_code == 200
    assert response.context["store"] == store
    assert sale(response).number.startswith("T-msk-1-")


def test_a_showroom_seller_can_pick_only_their_own_stores(client, store):
    second = StoreFactory(code="msk-2", name="Moscow Centre")
    foreign = StoreFactory(code="kzn-1", name="Kazan")
    client.force_login(make_staff("boris", store, second))

    page = client.get(URL)
    refused = post(client, "store", {"store": foreign.pk})
    chosen = post(client, "store", {"store": second.pk})

    assert page.context["store"] is None  # two stores: the seller picks
    assert list(page.context["store_form"].fields["store"].queryset) == [second, store]
    assert refused.context["store"] is None
    assert refused.context["store_form"].errors == {"store": ["You do not work in this store."]}
    assert chosen.context["store"] == second
    assert client.get(URL).context["store"] == second  # remembered in the session


def test_a_crm_manager_may_sell_in_every_store(admin_client, store):
    other = StoreFactory(code="kzn-1", name="Kazan")

    response = post(admin_client, "store", {"store": other.pk})

    assert response.context["store"] == other


def test_a_seller_without_a_store_is_told_so_and_cannot_search(client, member):
    client.force_login(make_staff("vera"))

    page = client.get(URL)
    search = post(client, "search", {"q": PHONE})

    assert "You do not work in any store" in page.content.decode()
    assert search.status_code == 200
    assert "Choose the store you work in first." in search.content.decode()
    assert sale(search).customer_id is None


# --- identification ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["8 916 123 45 67", "+7 (916) 123-45-67", "9161234567", "8-916-123-45-67"])
def test_a_customer_is_found_by_the_phone_typed_in_any_format(till, store, member, typed):
    assert member.registration_store != store  # identifying a customer is not seeing another store's data

    response = post(till, "search", {"q": typed})

    page = response.content.decode()
    assert response.context["customer"] == member
    assert sale(response).customer_id == member.pk
    summary = response.context["summary"]
    assert (summary.tier.tier.code, summary.balance.available, summary.balance.pending) == ("basic", D(5000), D(0))
    assert "Irina Petrova" in page
    assert 'id="till-tier">Basic<' in page
    assert "may pay up to 20% of a price in points" in page
    assert 'id="till-available">5000<' in page


def test_a_customer_is_found_by_card_number(till, member):
    response = post(till, "search", {"q": " 7700123 "})

    assert response.context["customer"] == member
    assert response.context["found"].by == "card"


def test_perks_of_a_higher_tier_are_shown(till, seller, member, tiers):
    tier_assign_manual(customer=member, tier=tiers["gold"], actor=Actor(user=seller), reason="VIP")

    page = post(till, "search", {"q": PHONE}).content.decode()

    assert 'id="till-tier">Gold<' in page
    for perk in ("earns 10% of purchases", "up to 25% of a price", "1 day longer", "up to 7 reserved", "48 h early"):
        assert perk in page


@pytest.fixture
def tiers(db):
    return {tier.code: tier for tier in Tier.objects.filter(programme__code="retail")}


def test_an_unknown_phone_offers_registration_with_the_phone_filled_in(till):
    response = post(till, "search", {"q": "8 916 765 43 21"})

    page = response.content.decode()
    assert response.context["customer"] is None
    assert "No customer with the phone 8 916 765 43 21." in page
    assert response.context["register_request_form"].initial == {"phone": "+79167654321"}
    assert 'id="till-register-request"' in page
    assert "autofocus" in str(response.context["register_request_form"]["phone"])


def test_a_walk_in_registers_by_sms_code_at_the_store(till, store, sms_outbox):
    post(till, "search", {"q": "8 916 765 43 21"})

    requested = post(till, "register/request", {"phone": "+79167654321"})
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)
    confirmed = post(till, "register/confirm", {"code": code, "name": "Oleg", "accept_marketing": "on"})

    assert [message.phone for message in sms_outbox] == ["+79167654321"]
    assert "A code was sent by SMS to +7 916 765-43-21" in requested.content.decode()
    assert sale(requested).registration_phone == "+79167654321"
    customer = Customer.objects.get(phone="+79167654321")
    assert (customer.name, customer.membership, customer.registration_store) == (
        "Oleg",
        Customer.Membership.MEMBER,
        store,
    )
    assert (customer.join_channel.code, customer.join_channel.kind) == ("till-msk-1", Channel.Kind.SHOWROOM_POS)
    assert customer.consents.filter(channel="sms", granted=True).exists()
    assert sale(confirmed).customer_id == customer.pk
    assert sale(confirmed).registration_phone == ""
    assert "Registered: Oleg (+79167654321) is a member now." in confirmed.content.decode()
    assert confirmed.context["summary"].balance.available == D(500)  # the Basic welcome bonus


def test_a_wrong_code_is_refused_with_the_attempts_left(till, sms_outbox):
    post(till, "register/request", {"phone": "8 916 765 43 21"})
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)

    response = post(till, "register/confirm", {"code": f"{(int(code) + 1) % 10**6:06d}"})

    assert response.status_code == 200
    assert response.context["register_confirm_form"].errors["code"] == ["The code is wrong. Attempts left: 4."]
    assert sale(response).registration_phone == "+79167654321"  # the seller may type it again
    assert not Customer.objects.filter(phone="+79167654321").exists()


def test_a_second_code_within_the_resend_wait_is_refused_inline(till, sms_outbox):
    post(till, "register/request", {"phone": "8 916 765 43 21"})

    response = post(till, "register/request", {"phone": "8 916 765 43 21"})

    assert len(sms_outbox) == 1
    assert response.context["register_request_form"].non_field_errors() == [
        "A code was sent moments ago. Wait before asking for another one. Try again in 60 s."
    ]


def test_a_non_member_found_by_phone_is_offered_to_join(till):
    NonMemberFactory(phone=PHONE, name="Seen on a receipt")

    response = post(till, "search", {"q": "8 916 123 45 67"})

    assert "Join the programme: send an SMS code" in response.content.decode()


# --- the cart ------------------------------------------------------------------------------------------------------


def test_the_cart_shows_per_line_how_much_may_be_paid_in_points_and_why(till, member, catalogue):
    post(till, "search", {"q": PHONE})
    build_cart(till)

    response = till.get(URL)

    result = response.context["result"]
    sofa, chairs = result.lines
    assert (sofa.amount, sofa.max_redeemable, sofa.redemption_limit.code) == (D(30000), 3000, "rule_price_share")
    assert (chairs.amount, chairs.max_redeemable, chairs.redemption_limit.code) == (D(8000), 1600, "tier_cap")
    assert (result.max_redeemable, result.earn_points, result.spendable_balance) == (4600, 1900, D(5000))
    page = response.content.decode()
    assert f"Up to 10% of the price by the rule “{CAP_RULE}”" in page
    assert "Up to 20% of the price for the Basic tier" in page
    assert 'id="till-max">4600<' in page
    assert "5% — the earning rate of the Basic tier" in page


def test_the_same_product_at_the_same_price_adds_up_on_one_line(till, catalogue):
    post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "1", "price": "4000"})

    response = post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "2", "price": "4000"})

    assert [(item.sku, item.quantity) for item in sale(response).items] == [("CHAIR-1", Decimal("3"))]


def test_a_line_is_removed(till, catalogue):
    build_cart(till)

    response = post(till, "cart/remove", {"index": "0"})

    assert [item.sku for item in sale(response).items] == ["CHAIR-1"]


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ({"sku": "NOPE-1", "quantity": "1", "price": "100"}, "sku", "No product with the SKU NOPE-1 in the catalogue."),
        ({"sku": "OLD-1", "quantity": "1", "price": "100"}, "sku", "The product OLD-1 is not on sale."),
        ({"sku": "SOFA-1", "quantity": "1", "price": ""}, "price", "Type the shelf price."),
        ({"sku": "SOFA-1", "quantity": "0", "price": "100"}, "quantity", None),
    ],
)
def test_a_bad_line_is_refused_inline_and_the_cart_is_unchanged(till, catalogue, line, field, message):
    post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "1", "price": "4000"})

    response = post(till, "cart/add", line)

    assert response.status_code == 200
    errors = response.context["line_form"].errors
    assert list(errors) == [field]
    if message:
        assert errors[field] == [message]
        assert message in response.content.decode()
    assert [item.sku for item in sale(response).items] == ["CHAIR-1"]
    assert "autofocus" in str(response.context["line_form"][field])


def test_points_above_the_maximum_are_refused_with_the_maximum(till, member, catalogue):
    post(till, "search", {"q": PHONE})
    build_cart(till)

    response = post(till, "cart/redeem", {"redeem": "4601"})

    assert response.context["checkout_form"].errors["redeem"] == [
        "More points than may be spent on this cart. At most 4600 points."
    ]
    assert sale(response).redeem == 0
    assert response.context["result"].redeem == 0


def test_points_within_the_maximum_are_spread_over_the_lines_and_shrink_the_earning(till, member, catalogue):
    post(till, "search", {"q": PHONE})
    build_cart(till)

    response = post(till, "cart/redeem", {"redeem": "4000"})

    result = response.context["result"]
    assert sale(response).redeem == 4000
    assert [(line.redeem, line.earn_points) for line in result.lines] == [(3000, 1350), (1000, 350)]
    assert response.context["to_pay"] == D(34000)


def test_an_anonymous_cart_cannot_spend_points(till, catalogue):
    build_cart(till)

    response = post(till, "cart/redeem", {"redeem": "1"})

    assert "At most 0 points." in response.context["checkout_form"].errors["redeem"][0]
    assert response.context["result"].lines[0].redemption_limit.code == "anonymous"


# --- placing -------------------------------------------------------------------------------------------------------


def test_placing_the_order_redeems_and_accrues_and_shows_the_receipt(till, seller, store, member, catalogue):
    post(till, "search", {"q": PHONE})
    build_cart(till)
    cart = post(till, "cart/redeem", {"redeem": "4000"})

    response = post(till, "place", {"redeem": "4000", **checkout(cart)})

    order = Order.objects.get()
    assert (order.channel.code, order.channel.kind, order.store, order.seller, order.customer) == (
        "till-msk-1",
        Channel.Kind.SHOWROOM_POS,
        store,
        "anna",
        member,
    )
    assert order.number == cart.context["sale"].number
    assert (order.total_amount, order.points_redeemed, order.points_to_earn) == (D(38000), D(4000), D(1700))
    assert list(order.lines.values_list("sku", "status", "points_redeemed", "points_to_earn", "points_unlocked")) == [
        ("SOFA-1", OrderLine.Status.DELIVERED, D(3000), D(1350), True),
        ("CHAIR-1", OrderLine.Status.DELIVERED, D(1000), D(350), True),
    ]
    assert buckets(member) == (D(2700), D(0), D(0), D(0))  # 5,000 - 4,000 spent + 1,700 earned, active at once
    assert_consistent()
    page = response.content.decode()
    receipt = response.context["receipt"]
    assert (receipt.order, receipt.points_earned, receipt.points_active, receipt.to_pay) == (
        order,
        D(1700),
        True,
        D(34000),
    )
    assert f'href="/admin/orders/order/{order.pk}/change/"' in page
    assert 'id="till-receipt-redeemed">4000<' in page
    assert "2700 available, 0 pending" in page
    new_sale = sale(response)
    assert (new_sale.customer_id, new_sale.items, new_sale.redeem) == (None, [], 0)
    assert new_sale.token != checkout(cart)["token"]


def test_a_double_submit_places_the_order_once(till, member, catalogue):
    post(till, "search", {"q": PHONE})
    build_cart(till)
    cart = post(till, "cart/redeem", {"redeem": "1000"})
    form = {"redeem": "1000", **checkout(cart)}

    first = post(till, "place", form)
    entries = Entry.objects.count()
    second = post(till, "place", form)

    assert Order.objects.count() == 1
    assert Entry.objects.count() == entries
    assert second.context["receipt"].order == first.context["receipt"].order
    assert "This sale was already placed." in second.content.decode()
    assert buckets(member)[0] == D(5000 - 1000 + 1450 + 400)  # the points spent on the sofa earn nothing


def test_two_submits_racing_past_the_screen_replay_the_first_order(store, seller, member, catalogue):
    items = [Item(sku="SOFA-1", name="Sofa Oslo", quantity=Decimal("1"), price=Decimal("30000"))]
    arguments = {
        "store": store,
        "customer": member,
        "items": items,
        "redeem": D(3000),
        "number": "T-msk-1-20260101-ABCDEF12",
        "token": "abcdef1234567890",
        "calculation": "",
        "user": seller,
    }

    first = till_order_place(**arguments)
    lots = Lot.objects.count()
    second = till_order_place(**arguments)

    assert (first.replayed, second.replayed, second.order) == (False, True, first.order)
    assert Lot.objects.count() == lots
    assert buckets(member)[0] == D(5000 - 3000 + 1350)


def test_a_cart_changed_in_another_window_is_not_placed(till, member, catalogue):
    post(till, "search", {"q": PHONE})
    build_cart(till)
    stale = checkout(till.get(URL))
    post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "1", "price": "4500"})  # another tab

    response = post(till, "place", {"redeem": "0", **stale})

    assert Order.objects.count() == 0
    errors = response.context["checkout_form"].non_field_errors()
    assert errors[0].startswith("The order's prices differ from the cart calculation")
    assert buckets(member) == (D(5000), D(0), D(0), D(0))


def test_points_above_the_maximum_are_refused_when_placing(till, member, catalogue):
    post(till, "search", {"q": PHONE})
    build_cart(till)

    response = post(till, "place", {"redeem": "4601", **checkout(till.get(URL))})

    assert Order.objects.count() == 0
    assert response.context["checkout_form"].errors["redeem"] == [
        "More points than may be spent on this cart. At most 4600 points."
    ]


def test_an_empty_cart_is_not_placed(till):
    response = post(till, "place", {"redeem": "", **checkout(till.get(URL))})

    assert Order.objects.count() == 0
    assert response.context["checkout_form"].non_field_errors() == ["The cart is empty: add a product first."]


def test_an_anonymous_sale_is_placed_without_points_also_without_javascript(till, catalogue):
    build_cart(till)

    response = post(till, "place", {"redeem": "", **checkout(till.get(URL))}, htmx=False)

    order = Order.objects.get()
    assert (order.customer, order.points_redeemed, Lot.objects.count()) == (None, D(0), 0)
    assert response.templates[0].name == "staff/till/page.html"
    assert response.context["receipt"].order == order


# --- htmx and the admin --------------------------------------------------------------------------------------------


def test_htmx_requests_get_the_workspace_partial_and_others_the_whole_page(till, catalogue):
    partial = post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "1", "price": "4000"})
    whole = post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "1", "price": "4000"}, htmx=False)

    assert partial.templates[0].name == "staff/till/_workspace.html"
    assert partial.content.decode().lstrip().startswith('<div id="till-workspace"')
    assert "<html" not in partial.content.decode()
    page = whole.content.decode()
    assert whole.templates[0].name == "staff/till/page.html"
    assert "<html" in page
    assert '<script src="/static/staff/htmx.min.js" defer>' in page
    assert 'id="till-keys"' in page
    assert [item.quantity for item in sale(whole).items] == [Decimal("2")]


def test_the_focus_follows_the_step(till, member, catalogue):
    start = till.get(URL)
    found = post(till, "search", {"q": PHONE})

    assert "autofocus" in str(start.context["search_form"]["q"])
    assert "autofocus" in str(found.context["line_form"]["sku"])
    assert found.content.decode().count("autofocus") == 1


def test_the_admin_index_links_to_the_till_for_its_users_only(client, till, store):
    other = make_staff("clerk", store, use_till=False)

    with_till = till.get("/admin/").content.decode()
    client.force_login(other)
    without = client.get("/admin/").content.decode()

    assert 'href="/admin/till/"' in with_till
    assert 'href="/admin/till/"' not in without


# --- query counts --------------------------------------------------------------------------------------------------


def test_a_search_takes_a_bounded_number_of_queries(till, member, catalogue, django_assert_max_num_queries):
    build_cart(till)  # the search answer recalculates the cart too; the rulebook is cached by now

    with django_assert_max_num_queries(20):
        response = post(till, "search", {"q": "8 916 123 45 67"})

    assert response.context["customer"] == member


def test_a_cart_step_takes_a_bounded_number_of_queries_whatever_the_cart(
    till, member, catalogue, django_assert_max_num_queries
):
    post(till, "search", {"q": PHONE})
    post(till, "cart/add", {"sku": "SOFA-1", "quantity": "1", "price": "30000"})
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as short:
        post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "1", "price": "4000"})
    for index in range(8):
        ProductFactory(sku=f"LAMP-{index}")
        post(till, "cart/add", {"sku": f"LAMP-{index}", "quantity": "1", "price": "900"})

    with django_assert_max_num_queries(20), CaptureQueriesContext(connection) as long:
        response = post(till, "cart/add", {"sku": "CHAIR-1", "quantity": "1", "price": "4100"})

    assert len(response.context["result"].lines) == 11
    assert len(long) == len(short)
