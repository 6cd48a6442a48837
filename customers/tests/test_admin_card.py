"""The customer card (SPEC F-STAFF-2): tier and its history, orders with their deliveries, complaints and messages
next to the profile, balances and ledger — each row linking to its page, each table to its full list — at a cost
in queries that does not grow with the customer's history."""

import re
from datetime import timedelta
from html import unescape
from urllib.parse import unquote

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from complaints.services import complaint_open
from core.actors import Actor
from core.roles import SHOWROOM_STAFF
from customers.admin import sections
from customers.models import ConsentChannel, SmsCode
from customers.services import consent_set, customer_update
from customers.tests.factories import CustomerFactory, StoreFactory
from orders.services import LineRequest, order_deliver
from orders.tests.factories import place
from points.services import points_accrue
from points.tests.helpers import key
from programmes.models import Programme, TierChange
from programmes.services import tier_assign_manual
from staff.models import StoreMembership
from staff.tests.factories import StaffUserFactory, roles_ready

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
MANY = sections.RECENT_ROWS + 5  # more rows of each kind than the card shows


def change_url(customer) -> str:
    return f"/admin/customers/customer/{customer.pk}/change/"


def section(html: str, name: str) -> str:
    """The HTML of one table of the card."""
    start = html.index(f'id="{name}-group"')
    return html[start : html.index("</fieldset>", start)]


def links(html: str, pattern: str) -> list[str]:
    return re.findall(rf'href="({pattern})"', html)


def give_history(customer, rows: int, *, staff, channel) -> None:
    """``rows`` rows of every kind the card shows: tier changes, orders (each with a delivery), complaints, SMS
    codes, consent events, profile changes, lots and journal lines."""
    tiers = list(Programme.objects.get(code="retail").tiers.order_by("rank"))
    for number in range(rows):
        tier_assign_manual(customer=customer, tier=tiers[number % 2 + 1], actor=staff, reason=f"goodwill {number}")
        order = place(channel, customer, number=f"C{customer.pk}-{number}")
        order_deliver(order=order, lines=[LineRequest(1)], operation_key=key("deliver"))
        complaint_open(customer=customer, category="delivery", description=f"late {number}", actor=staff, order=order)
        consent_set(
            customer=customer, channel=ConsentChannel.EMAIL, granted=number % 2 == 0, source="admin", actor=staff
        )
        customer_update(customer=customer, actor=staff, name=f"Name {number}", reason=f"typo {number}")
        points_accrue(
            customer=customer,
            amount=10,
            kind="manual",
            operation_key=key("accrue"),
            expires_at=NOW + timedelta(days=20),
            now=NOW,
        )
    SmsCode.objects.bulk_create(
        SmsCode(
            phone=customer.phone,
            code_hash=f"{number:064d}",
            attempts=number % 3,
            created_at=NOW - timedelta(minutes=number),
            expires_at=NOW - timedelta(minutes=number) + timedelta(minutes=10),
        )
        for number in range(rows)
    )


# a history's placeholder on the page; its table comes from the section's own URL (what the page's script fetches)
PLACEHOLDER = re.compile(
    r'<div class="inline-group customer-section" id="[\w-]+-group" data-section-url="([^"]+)">.*?</div>', re.S
)
HISTORIES = [
    "tier-history",
    "orders",
    "complaints",
    "consent-history",
    "external-ids",
    "changes",
    "lots",
    "journal",
    "messages",
]


def page(client, customer) -> tuple[int, str]:
    """The customer page alone: its queries and HTML, the histories as placeholders."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(change_url(customer))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def with_sections(client, html: str) -> str:
    """The page as the browser shows it once its script has put every history in place."""

    def fetched(placeholder: re.Match) -> str:
        response = client.get(unescape(placeholder[1]))
        assert response.status_code == 200, placeholder[1]
        return response.content.decode()

    return PLACEHOLDER.sub(fetched, html)


def card(client, customer) -> tuple[int, str]:
    """The page's queries and the card with all its tables."""
    queries, html = page(client, customer)
    return queries, with_sections(client, html)


@pytest.fixture
def staff(admin_user) -> Actor:
    return Actor(user=admin_user)


def test_the_page_costs_at_most_ten_queries_for_a_long_history_as_for_a_short_one(
    admin_client, staff, channel, django_assert_max_num_queries
):
    small, big = CustomerFactory(), CustomerFactory()
    give_history(small, 1, staff=staff, channel=channel)
    give_history(big, MANY, staff=staff, channel=channel)
    assert TierChange.objects.filter(customer=big).count() >= MANY
    page(admin_client, small)  # caches the content types and the session's user on both

    # session, user, customer (+ channel, store, merge target), its accounts with the points expiring soon; tier:
    # the tiers, the tier row, the qualifying purchases; consents; store choices; merged duplicates
    with django_assert_max_num_queries(10):
        response = admin_client.get(change_url(big))
    with django_assert_max_num_queries(10):
        admin_client.get(change_url(small))
    small_queries = page(admin_client, small)[0]
    big_queries, html = page(admin_client, big)

    assert response.status_code == 200
    assert big_queries == small_queries
    for name in HISTORIES:  # placeholders, filled in from their own URLs
        assert re.search(rf'id="{name}-group" data-section-url="[^"]+/section/{name}/"', html), name
    assert "Showing the latest 20." not in html
    assert "<noscript>" in html
    html = with_sections(admin_client, html)
    for name in ("tier-history", "orders", "complaints", "consent-history", "changes", "lots", "journal", "messages"):
        assert "Showing the latest 20." in section(html, name), name


def test_each_history_costs_its_own_request_the_same_bounded_queries_for_a_long_history_as_for_a_short_one(
    admin_client, staff, channel, django_assert_max_num_queries
):
    small, big = CustomerFactory(), CustomerFactory()
    give_history(small, 1, staff=staff, channel=channel)
    give_history(big, MANY, staff=staff, channel=channel)
    card(admin_client, small)  # caches the content types and the session's user

    for name in HISTORIES:
        counts = []
        for customer in (small, big):
            with django_assert_max_num_queries(8), CaptureQueriesContext(connection) as queries:
                response = admin_client.get(f"{change_url(customer).removesuffix('change/')}section/{name}/")
            assert response.status_code == 200, name
            assert f'id="{name}-group"' in response.content.decode(), name
            counts.append(len(queries))
        assert counts[0] == counts[1], name


def test_an_unknown_table_is_not_found(admin_client):
    customer = CustomerFactory()

    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/section/passwords/")
    missing = admin_client.get("/admin/customers/customer/999999999/section/orders/")

    assert response.status_code == 404
    assert missing.status_code == 404


def test_a_showroom_seller_gets_no_table_of_another_stores_customer(channel):
    store_a, store_b = StoreFactory(), StoreFactory()
    theirs = CustomerFactory(registration_store=store_b)
    place(channel, theirs, number="THERE-1", store=store_b)
    roles_ready()
    seller = StaffUserFactory(role=SHOWROOM_STAFF, stores=[store_a])
    client = Client()
    client.force_login(seller)

    for name in HISTORIES:
        response = client.get(f"/admin/customers/customer/{theirs.pk}/section/{name}/")
        assert response.status_code == 404, name
        assert 'id="orders-group"' not in response.content.decode()
    assert client.get(change_url(theirs)).status_code == 302  # the page: the admin's "doesn't exist"


def test_a_table_needs_the_permission_to_view_customers(client, django_user_model):
    customer = CustomerFactory()
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=["view_order", "view_all_stores"]))
    client.force_login(clerk)

    response = client.get(f"/admin/customers/customer/{customer.pk}/section/orders/")

    assert response.status_code == 403


def test_every_row_links_to_its_page_and_every_table_to_the_customers_full_list(admin_client, staff, channel):
    customer = CustomerFactory()
    give_history(customer, MANY, staff=staff, channel=channel)

    html = card(admin_client, customer)[1]

    pk = customer.pk
    orders = section(html, "orders")
    # 20 orders and each one's delivery
    assert len(links(orders, r"/admin/orders/order/\d+/change/")) == 40
    assert f">C{pk}-{MANY - 1}<" in orders  # the newest …
    assert f">C{pk}-{MANY - 21}<" not in orders  # … 20
    assert f">C{pk}-{MANY - 1}/1<" in orders  # with its delivery
    assert links(orders, rf"/admin/orders/order/\?customer__id__exact={pk}")
    by_customer = f"?customer__id__exact={pk}"
    expected = {  # table: (its rows' pages, its full list)
        "tier-history": ("/admin/programmes/tierchange/", by_customer),
        "complaints": ("/admin/complaints/complaintcase/", by_customer),
        "consent-history": ("/admin/customers/consentevent/", by_customer),
        "changes": ("/admin/customers/customerchange/", by_customer),
        "lots": ("/admin/points/lot/", "?account__in="),
        "journal": ("/admin/points/entry/", "?account__in="),
        "messages": ("/admin/customers/smscode/", "?q=%2B"),
    }
    for name, (admin_list, filtered) in expected.items():
        table = section(html, name)
        rows = links(table, rf"{admin_list}\d+/change/")
        full_list = re.search(rf'href="({re.escape(admin_list + filtered)}[^"]*)"', table)[1].replace("&amp;", "&")
        assert len(rows) == 20, name
        for url in [*rows[:2], full_list]:
            assert admin_client.get(url).status_code == 200, url
    assert len(links(section(html, "consents"), r"/admin/customers/consentevent/\?[^\"]+channel__exact=\w+")) == 4


def test_the_full_lists_behind_the_card_hold_only_this_customers_rows_page_by_page(admin_client, staff, channel):
    customer, other = CustomerFactory(), CustomerFactory()
    give_history(customer, MANY, staff=staff, channel=channel)
    give_history(other, 2, staff=staff, channel=channel)
    html = card(admin_client, customer)[1]

    accounts = unquote(re.search(r'href="/admin/points/entry/\?account__in=([^"]+)"', section(html, "journal"))[1])
    orders_url = re.search(r'href="(/admin/orders/order/\?[^"]+)"', section(html, "orders"))[1]
    journal_url = "/admin/points/entry/"
    journal = admin_client.get(journal_url, {"account__in": accounts})
    pages = journal.context["cl"].paginator.num_pages
    entries = [
        entry
        for page in range(1, pages + 1)
        for entry in admin_client.get(journal_url, {"account__in": accounts, "p": page}).context["cl"].result_list
    ]
    orders = admin_client.get(orders_url)

    assert pages > 1
    assert journal.context["cl"].result_count == len(entries) == len({entry.pk for entry in entries})
    assert {entry.account.customer_id for entry in entries} == {customer.pk}
    assert {order.customer_id for order in orders.context["cl"].result_list} == {customer.pk}
    assert orders.context["cl"].result_count == MANY


def test_the_card_shows_the_tier_with_what_the_next_one_needs_and_its_history(admin_client, staff):
    customer = CustomerFactory()
    tiers = list(Programme.objects.get(code="retail").tiers.order_by("rank"))
    tier_assign_manual(customer=customer, tier=tiers[1], actor=staff, reason="loyal for years")

    html = card(admin_client, customer)[1]

    tier = section(html, "tier")
    assert re.search(rf'href="/admin/programmes/customertier/\d+/change/">{re.escape(str(tiers[1]))}</a>', tier)
    assert str(tiers[2]) in tier
    history = section(html, "tier-history")
    assert "loyal for years" in history
    assert "manual assignment" in history
    assert str(staff.user) in history


def test_a_customer_without_a_tier_row_is_shown_in_the_entry_tier(admin_client):
    customer = CustomerFactory()

    tier = section(card(admin_client, customer)[1], "tier")

    entry = Programme.objects.get(code="retail").tiers.order_by("rank").first()
    assert f"{entry} (entry tier, no tier record yet)" in tier
    assert "No tier changes yet." in section(card(admin_client, customer)[1], "tier-history")


def test_messages_show_sms_codes_without_the_code_and_say_campaign_messages_come_later(admin_client):
    customer = CustomerFactory(phone="+79161234567")
    SmsCode.objects.create(
        phone="+79161234567", code_hash="f" * 64, attempts=2, created_at=NOW, expires_at=NOW + timedelta(minutes=5)
    )
    SmsCode.objects.create(
        phone="+79160000000", code_hash="e" * 64, created_at=NOW, expires_at=NOW + timedelta(minutes=5)
    )

    messages = section(card(admin_client, customer)[1], "messages")

    assert len(links(messages, r"/admin/customers/smscode/\d+/change/")) == 1
    assert "<td>2</td>" in messages
    assert "f" * 64 not in messages
    assert "Campaign messages (SMS, email, push) will be listed here once campaigns send them." in messages


def test_the_card_has_no_complaints_table_without_the_complaints_desk(admin_client, monkeypatch):
    customer = CustomerFactory()
    monkeypatch.setattr(sections, "_complaints_reader", lambda: None)

    html = card(admin_client, customer)[1]

    assert 'id="complaints-group"' not in html
    assert 'id="orders-group"' in html


def test_showroom_staff_see_on_the_card_only_the_orders_of_their_stores(client, django_user_model, channel, staff):
    mine, theirs = StoreFactory(), StoreFactory()
    customer = CustomerFactory(registration_store=mine)
    here = place(channel, customer, number="HERE-1", store=mine)
    there = place(channel, customer, number="THERE-1", store=theirs)
    seller = django_user_model.objects.create_user("seller", password="x", is_staff=True)
    seller.user_permissions.set(Permission.objects.filter(codename__in=["view_customer", "view_order"]))
    StoreMembership.objects.create(user=seller, store=mine)
    client.force_login(seller)

    orders = section(card(client, customer)[1], "orders")

    assert f'href="/admin/orders/order/{here.pk}/change/"' in orders
    assert f'href="/admin/orders/order/{there.pk}/change/"' not in orders
    assert "Orders of your stores only." in orders


def test_a_customer_with_no_history_shows_every_table_empty(admin_client):
    customer = CustomerFactory()

    html = card(admin_client, customer)[1]

    for name, empty in {
        "orders": "No orders.",
        "complaints": "No complaints.",
        "messages": "No SMS codes were sent to this phone.",
        "tier-history": "No tier changes yet.",
    }.items():
        assert empty in section(html, name), name
    assert "Showing the latest" not in html
