"""The permission matrix (SPEC F-STAFF-1): each role against each sensitive admin page or action, through the admin
with the test client, and the store scoping of showroom staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.roles import ANALYST, COMPLAINTS, CRM_MANAGER, SHOWROOM_STAFF
from customers.models import Customer
from customers.tests.factories import CustomerFactory, StoreFactory
from integrations.tests.factories import ChannelFactory
from orders.models import Order, Reservation
from orders.tests.factories import new_line, place
from points.models import Entry, Lot
from points.services import points_accrue
from programmes.models import CustomerTier, EarningRule
from programmes.tests.factories import EarningRuleFactory
from staff.admin_scoping import store_scoped
from staff.tests.factories import StaffUserFactory, roles_ready

pytestmark = pytest.mark.django_db

ROLES = {"manager": CRM_MANAGER, "showroom": SHOWROOM_STAFF, "complaints": COMPLAINTS, "analyst": ANALYST}
OK, DENIED, MISSING = "200", "403", "doesn't exist"


@pytest.fixture(autouse=True)
def _roles(db):
    roles_ready()


@pytest.fixture
def world(db):
    """Two showrooms, each with a registered customer and an order; a customer registered in B who bought in A;
    a rule; a showroom seller of store A and one user in each other role."""
    store_a, store_b = StoreFactory(code="a", name="Showroom A"), StoreFactory(code="b", name="Showroom B")
    channel = ChannelFactory()
    customer_a = CustomerFactory(registration_store=store_a)
    customer_b = CustomerFactory(registration_store=store_b)
    visitor = CustomerFactory(registration_store=store_b)  # registered in B, bought in A: store A's customer too
    lines = [new_line(1, "SOFA-1", "1000.00"), new_line(2, "CHAIR-1", "100.00")]
    order_a = place(channel, customer_a, lines=lines, store=store_a)
    order_b = place(channel, customer_b, lines=lines, store=store_b)
    place(channel, visitor, lines=lines, store=store_a)
    users = {
        "manager": StaffUserFactory(role=CRM_MANAGER),
        "showroom": StaffUserFactory(role=SHOWROOM_STAFF, stores=[store_a]),
        "complaints": StaffUserFactory(role=COMPLAINTS),
        "analyst": StaffUserFactory(role=ANALYST),
    }
    return {
        "stores": (store_a, store_b),
        "channel": channel,
        "customers": (customer_a, customer_b, visitor),
        "orders": (order_a, order_b),
        "rule": EarningRuleFactory(valid_from=timezone.now() + timedelta(days=1)),
        "users": users,
    }


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def outcome(response) -> str:
    """The page, a refusal, or the admin's "doesn't exist" redirect to its index."""
    if response.status_code == 302 and response.url == reverse("admin:index"):
        return MISSING
    return str(response.status_code)


def change(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


PAGES = {
    "customer list": lambda w: reverse("admin:customers_customer_changelist"),
    "customer of own store": lambda w: change(w["customers"][0]),
    "customer of another store": lambda w: change(w["customers"][1]),
    "customer who bought in own store": lambda w: change(w["customers"][2]),
    "customer add": lambda w: reverse("admin:customers_customer_add"),
    "adjust points": lambda w: reverse("admin:customers_customer_adjust_points", args=[w["customers"][0].pk]),
    "order list": lambda w: reverse("admin:orders_order_changelist"),
    "order of own store": lambda w: change(w["orders"][0]),
    "order of another store": lambda w: change(w["orders"][1]),
    "deliver lines, own store": lambda w: reverse("admin:orders_order_deliver", args=[w["orders"][0].pk]),
    "deliver lines, another store": lambda w: reverse("admin:orders_order_deliver", args=[w["orders"][1].pk]),
    "reservation list": lambda w: reverse("admin:orders_reservation_changelist"),
    "earning rule": lambda w: change(w["rule"]),
    "earning rule add": lambda w: reverse("admin:programmes_earningrule_add"),
    "tier assignment": lambda w: reverse("admin:programmes_customertier_assign"),
    "audit trail": lambda w: reverse("admin:staff_auditrecord_changelist"),
    "users and their stores": lambda w: reverse("admin:auth_user_changelist"),
}

# page: (manager, showroom, complaints, analyst)
MATRIX = {
    "customer list": (OK, OK, OK, OK),
    "customer of own store": (OK, OK, OK, OK),
    "customer of another store": (OK, MISSING, OK, OK),
    "customer who bought in own store": (OK, OK, OK, OK),
    "customer add": (OK, OK, DENIED, DENIED),
    "adjust points": (OK, DENIED, DENIED, DENIED),
    "order list": (OK, OK, OK, OK),
    "order of own store": (OK, OK, OK, OK),
    "order of another store": (OK, MISSING, OK, OK),
    "deliver lines, own store": (OK, OK, DENIED, DENIED),
    "deliver lines, another store": (OK, MISSING, DENIED, DENIED),
    "reservation list": (OK, OK, DENIED, OK),
    "earning rule": (OK, DENIED, DENIED, OK),  # the analyst's page is read-only (below)
    "earning rule add": (OK, DENIED, DENIED, DENIED),
    "tier assignment": (OK, DENIED, DENIED, DENIED),
    "audit trail": (OK, DENIED, DENIED, OK),
    "users and their stores": (DENIED, DENIED, DENIED, DENIED),  # superusers manage staff accounts
}

COMPLAINTS_PAGES = {
    "complaint cases": ("complaints.complaintcase", "changelist", (OK, DENIED, OK, OK)),
    "complaint case add": ("complaints.complaintcase", "add", (OK, DENIED, OK, DENIED)),
    "apology grants": ("complaints.apologygrant", "changelist", (OK, DENIED, OK, OK)),
    "apology budgets": ("complaints.apologybudget", "changelist", (OK, DENIED, DENIED, OK)),
}


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("page", list(MATRIX))
def test_permission_matrix(world, page, role):
    expected = MATRIX[page][list(ROLES).index(role)]

    response = login(world["users"][role]).get(PAGES[page](world))

    assert outcome(response) == expected


def _registered(label: str) -> bool:
    return any(model._meta.label_lower == label for model in admin.site._registry)


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("page", list(COMPLAINTS_PAGES))
def test_permission_matrix_of_the_complaints_desk(world, page, role):
    label, view, expectations = COMPLAINTS_PAGES[page]
    if not _registered(label):
        pytest.skip(f"{label} is not in the admin")
    app_label, model_name = label.split(".")

    response = login(world["users"][role]).get(reverse(f"admin:{app_label}_{model_name}_{view}"))

    assert outcome(response) == expectations[list(ROLES).index(role)]


def test_the_showroom_list_holds_only_the_own_stores_customers_and_orders(world):
    customer_a, customer_b, visitor = world["customers"]
    client = login(world["users"]["showroom"])

    customers = client.get(reverse("admin:customers_customer_changelist"))
    by_phone = client.get(reverse("admin:customers_customer_changelist"), {"q": str(customer_b.phone)})
    orders = client.get(reverse("admin:orders_order_changelist"))
    everyone = login(world["users"]["manager"]).get(reverse("admin:customers_customer_changelist"))

    assert {row.pk for row in customers.context["cl"].result_list} == {customer_a.pk, visitor.pk}
    assert list(by_phone.context["cl"].result_list) == []
    assert {row.store_id for row in orders.context["cl"].result_list} == {world["stores"][0].pk}
    assert {row.pk for row in everyone.context["cl"].result_list} >= {customer_a.pk, customer_b.pk, visitor.pk}


def test_the_showroom_sees_only_the_own_stores_reservations(world):
    store_a, store_b = world["stores"]
    now = timezone.now()
    mine, theirs = (
        Reservation.objects.create(
            channel=world["channel"],
            number=f"R-{store.code}",
            customer=world["customers"][0],
            store=store,
            items=[{"sku": "SOFA-1", "quantity": 1}],
            item_count=1,
            created_at=now,
            expires_at=now + timedelta(days=3),
        )
        for store in (store_a, store_b)
    )

    response = login(world["users"]["showroom"]).get(reverse("admin:orders_reservation_changelist"))
    refused = login(world["users"]["showroom"]).get(change(theirs))

    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]
    assert outcome(refused) == MISSING


def test_a_seller_without_a_store_sees_no_customer_or_order(world):
    client = login(StaffUserFactory(role=SHOWROOM_STAFF))

    customers = client.get(reverse("admin:customers_customer_changelist"))
    orders = client.get(reverse("admin:orders_order_changelist"))

    assert list(customers.context["cl"].result_list) == []
    assert list(orders.context["cl"].result_list) == []


def test_the_showroom_cannot_act_on_another_stores_order(world):
    order_b = world["orders"][1]
    client = login(world["users"]["showroom"])

    response = client.post(
        reverse("admin:orders_order_cancel", args=[order_b.pk]),
        {"token": "6f1c2d9e-6a55-4a4e-9d2b-0d6f7f0a8b11", "reason": "x", "line_1": "on", "quantity_1": ""},
    )

    assert outcome(response) == MISSING
    assert set(order_b.lines.values_list("status", flat=True)) == {"placed"}


def test_the_showroom_registers_customers_in_its_own_stores_only(world):
    store_a, store_b = world["stores"]
    client = login(world["users"]["showroom"])

    page = client.get(reverse("admin:customers_customer_add"))
    refused = client.post(
        reverse("admin:customers_customer_add"),
        {
            "phone": "+79165550101",
            "name": "Walk-in",
            "kind": "retail",
            "language": "ru",
            "registration_store": store_b.pk,
        },
    )

    assert list(page.context["adminform"].form.fields["registration_store"].queryset) == [store_a]
    assert "registration_store" in refused.context["adminform"].form.errors
    assert not Customer.objects.filter(phone="+79165550101").exists()


def test_the_showroom_edits_a_customer_registered_elsewhere_without_moving_them(world):
    visitor = world["customers"][2]
    client = login(world["users"]["showroom"])

    page = client.get(change(visitor))

    choices = set(page.context["adminform"].form.fields["registration_store"].queryset)
    assert choices == set(world["stores"])  # own store, and the one the customer is registered in


def test_the_analyst_cannot_change_anything(world):
    customer_a = world["customers"][0]
    order_a = world["orders"][0]
    rule = world["rule"]
    client = login(world["users"]["analyst"])

    posts = [
        client.post(change(customer_a), {"name": "Changed", "phone": str(customer_a.phone), "change_reason": "x"}),
        client.post(reverse("admin:customers_customer_add"), {"phone": "+79165550102", "name": "New"}),
        client.post(change(rule), {"name": "Changed"}),
        client.post(reverse("admin:orders_order_deliver", args=[order_a.pk]), {"reason": "x", "line_1": "on"}),
        client.post(reverse("admin:customers_customer_adjust_points", args=[customer_a.pk]), {"amount": "5"}),
        client.post(reverse("admin:programmes_customertier_assign"), {"customer": customer_a.pk}),
        client.post(reverse("admin:customers_customer_delete", args=[customer_a.pk]), {"post": "yes"}),
    ]
    rule_page = client.get(change(rule))

    assert [response.status_code for response in posts] == [403] * len(posts)
    assert 'name="_save"' not in rule_page.content.decode()
    customer_a.refresh_from_db()
    rule.refresh_from_db()
    assert customer_a.name != "Changed"
    assert rule.name != "Changed"
    assert set(order_a.lines.values_list("status", flat=True)) == {"placed"}
    assert not Customer.objects.filter(phone="+79165550102").exists()
    assert not CustomerTier.objects.filter(customer=customer_a, manual=True).exists()
    assert EarningRule.objects.count() == 1
    assert Order.objects.count() == 3


def test_the_analysts_customer_list_offers_no_action(world):
    response = login(world["users"]["analyst"]).get(reverse("admin:customers_customer_changelist"))

    assert response.context["action_form"] is None


def test_points_rows_are_scoped_by_their_customers_store(world):
    """For the points admins, should showroom staff ever see lots or the journal (they do not hold those views)."""
    customer_a, customer_b, visitor = world["customers"]
    for customer in (customer_a, customer_b, visitor):
        points_accrue(customer=customer, amount="10", kind="manual", operation_key=f"seed:{customer.pk}")
    store_a = world["stores"][0]

    lots = store_scoped(Lot.objects.all(), {store_a.pk})
    entries = store_scoped(Entry.objects.all(), {store_a.pk})
    everything = store_scoped(Lot.objects.all(), None)

    assert {lot.account.customer_id for lot in lots} == {customer_a.pk, visitor.pk}
    assert {entry.account.customer_id for entry in entries} == {customer_a.pk, visitor.pk}
    assert everything.count() == Lot.objects.count()
    assert not store_scoped(Entry.objects.all(), set()).exists()


def test_a_superuser_sets_a_staff_users_stores_on_the_user_page(admin_client, world):
    seller = StaffUserFactory(role=SHOWROOM_STAFF)
    store_b = world["stores"][1]
    url = reverse("admin:auth_user_change", args=[seller.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "groups": [group.pk for group in seller.groups.all()],
            "date_joined_0": f"{seller.date_joined:%Y-%m-%d}",
            "date_joined_1": f"{seller.date_joined:%H:%M:%S}",
            "store_memberships-TOTAL_FORMS": "1",
            "store_memberships-INITIAL_FORMS": "0",
            "store_memberships-0-store": store_b.pk,
        }
    )
    data.pop("date_joined", None)
    data.pop("user_permissions", None)

    response = admin_client.post(url, data)
    store_b_customer = login(seller).get(change(world["customers"][1]))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(seller.store_memberships.values_list("store", flat=True)) == [store_b.pk]
    assert outcome(store_b_customer) == OK
    assert outcome(login(seller).get(change(world["customers"][0]))) == MISSING
