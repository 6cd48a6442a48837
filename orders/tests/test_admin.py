"""Orders in the admin: the list (search, filters, bounded queries), the read-only order page with its lines,
deliveries, payments and ledger entries, and the staff actions — deliver, cancel, return, attach a customer — which
must change the order and the points exactly as the services do when called directly."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.tests.factories import CustomerFactory, StoreFactory
from integrations.tests.factories import ChannelFactory
from orders.models import Order, OrderEvent, OrderLine
from orders.services import LineRequest, order_cancel, order_deliver, order_pay, order_return
from orders.tests.factories import new_line, place
from points.models import Account, Entry
from points.services import points_accrue, points_reconcile

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/orders/order/"


def change_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def action_url(order, action: str) -> str:
    return reverse(f"admin:orders_order_{action}", args=[order.pk])


def balance(customer) -> tuple[Decimal, Decimal, Decimal]:
    account = Account.objects.filter(customer=customer).first()
    zero = Decimal("0")
    return (account.available, account.pending, account.debt) if account else (zero, zero, zero)


def line_states(order) -> list[tuple]:
    """What a line is, without ids: comparable between two orders that went through the same changes."""
    return [
        (
            line.line_number,
            line.part,
            line.quantity,
            line.amount,
            line.points_redeemed,
            line.points_to_earn,
            line.status,
            line.points_unlocked,
            line.lot.state if line.lot else None,
            line.delivery_id is not None,
        )
        for line in OrderLine.objects.filter(order=order).select_related("lot").order_by("line_number", "part")
    ]


def token_of(response) -> str:
    match = re.search(r'name="token" value="([0-9a-f-]{36})"', response.content.decode())
    assert match, "the form carries no token"
    return match[1]


def form_data(client, url: str, lines: dict[int, str | None], reason: str = "Customer called", **extra) -> dict:
    """Open the form (for its token and pre-filled values) and tick ``lines`` ({line number: quantity or None})."""
    response = client.get(url)
    assert response.status_code == 200
    data = {"token": token_of(response), "reason": reason, **extra}
    form = response.context["form"]
    if "delivered_at" in form.fields and "delivered_at_0" not in data:
        initial = form.initial["delivered_at"]
        data.update({"delivered_at_0": f"{initial:%Y-%m-%d}", "delivered_at_1": f"{initial:%H:%M:%S}"})
    for number, quantity in lines.items():
        data[f"line_{number}"] = "on"
        data[f"quantity_{number}"] = quantity or ""
    return data


def errors_of(response) -> dict:
    return response.context["form"].errors


def seeded(customer, amount="1000"):
    points_accrue(customer=customer, amount=amount, kind="manual", operation_key=f"seed:{customer.pk}")
    return customer


@pytest.fixture
def staff_client(client, django_user_model):
    """``staff_client(*codenames)`` → a client logged in as staff holding exactly those orders permissions, not
    confined to stores (``view_all_stores``: store scoping is tested in staff/tests/test_permissions.py)."""

    def make(*codenames):
        user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="orders", codename__in=codenames))
        user.user_permissions.add(Permission.objects.get(codename="view_all_stores"))
        client.force_login(user)
        return client

    return make


# --- the list --------------------------------------------------------------------------------------------------------


def test_the_list_shows_orders_by_default_and_their_deliveries_on_demand(admin_client, channel, customer):
    order = place(channel, customer, number="ORD-LIST-1")
    delivery = order_deliver(order=order, lines=[LineRequest(2)], operation_key="d-list")

    default = admin_client.get(LIST_URL)
    deliveries = admin_client.get(LIST_URL, {"kind": "delivery"})
    everything = admin_client.get(LIST_URL, {"kind": "all"})

    assert [row.pk for row in default.context["cl"].result_list] == [order.pk]
    assert [row.pk for row in deliveries.context["cl"].result_list] == [delivery.pk]
    assert {row.pk for row in everything.context["cl"].result_list} == {order.pk, delivery.pk}
    assert points_reconcile() == []


def test_search_finds_by_number_phone_customer_phone_and_card_exactly(admin_client, channel):
    member = CustomerFactory(phone="+79161112233", card_number="CARD-77")
    by_member = place(channel, member, number="ORD-1042")
    anonymous = place(channel, None, number="ORD-2042", phone="+79165556677")
    by_card = place(channel, None, number="ORD-3042", card_number="RECEIPT-CARD-9")
    place(channel, CustomerFactory(), number="ORD-4042")

    def found(term):
        return {row.pk for row in admin_client.get(LIST_URL, {"q": term}).context["cl"].result_list}

    assert found("ORD-1042") == {by_member.pk}
    assert found("ORD-10") == set()  # exact: no scans of the orders table
    assert found("8 (916) 555-66-77") == {anonymous.pk}  # any phone format
    assert found("+79161112233") == {by_member.pk}  # the customer's phone
    assert found("CARD-77") == {by_member.pk}  # the customer's card
    assert found("RECEIPT-CARD-9") == {by_card.pk}
    assert points_reconcile() == []


def test_filters_by_channel_store_status_date_and_offline(admin_client, channel, customer):
    other_channel = ChannelFactory()
    store = StoreFactory()
    old = timezone.now() - timedelta(days=40)
    at_store = place(channel, customer, store=store)
    elsewhere = place(other_channel, customer, created_at=old, offline=True)
    delivered = place(channel, customer, delivered=True)

    def found(**params):
        return {row.pk for row in admin_client.get(LIST_URL, params).context["cl"].result_list}

    assert found(channel__id__exact=other_channel.pk) == {elsewhere.pk}
    assert found(store__id__exact=store.pk) == {at_store.pk}
    assert found(status__exact="delivered") == {delivered.pk}
    assert found(status__exact="placed") == {at_store.pk, elsewhere.pk}
    assert found(offline__exact="1") == {elsewhere.pk}
    changelist = admin_client.get(LIST_URL).context["cl"]
    (dates,) = [spec for spec in changelist.filter_specs if isinstance(spec, admin.DateFieldListFilter)]
    (past_week,) = [choice for choice in dates.choices(changelist) if choice["display"] == "Past 7 days"]
    assert {row.pk for row in admin_client.get(LIST_URL + past_week["query_string"]).context["cl"].result_list} == {
        at_store.pk,
        delivered.pk,
    }
    assert found(has_customer="no") == set()
    assert points_reconcile() == []


def test_the_list_of_30_orders_takes_as_many_queries_as_a_list_of_3(
    admin_client, channel, django_assert_max_num_queries
):
    stores = [StoreFactory(), StoreFactory()]
    for index in range(3):
        place(channel, CustomerFactory(), store=stores[index % 2], lines=[new_line(1, "SKU-1", "1000")])
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(LIST_URL).status_code == 200
    for index in range(27):
        customer = CustomerFactory() if index % 3 else None
        place(channel, customer, store=stores[index % 2], phone="+79160000001", lines=[new_line(1, "SKU-1", "1000")])

    with django_assert_max_num_queries(8), CaptureQueriesContext(connection) as many:
        response = admin_client.get(LIST_URL)

    assert len(response.context["cl"].result_list) == 30
    assert len(many) == len(few)


def test_the_default_list_of_a_big_table_shows_the_estimate_and_a_filtered_list_counts(
    admin_client, channel, customer, monkeypatch
):
    place(channel, customer)
    monkeypatch.setattr("orders.admin._table_estimate", lambda table: 2_000_000)

    with CaptureQueriesContext(connection) as queries:
        default = admin_client.get(LIST_URL)
    filtered = admin_client.get(LIST_URL, {"status__exact": "placed"})

    assert default.context["cl"].result_count == 2_000_000
    assert not [query for query in queries if "COUNT(" in query["sql"]]
    assert filtered.context["cl"].result_count == 1


# --- the order's page ------------------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_the_order_page_shows_lines_deliveries_payments_events_and_each_lines_ledger_entries(
    admin_client, channel, customer, django_assert_max_num_queries
):
    seeded(customer)
    order = place(channel, customer, number="ORD-PAGE-1", redeem=Decimal("500"))
    delivery = order_deliver(order=order, lines=[LineRequest(2, Decimal("1"))], operation_key="page-d1")
    order_pay(order=order, external_id="pay-1", method="card", amount=Decimal("1000"), operation_key="page-p1")
    order_cancel(order=order, lines=[LineRequest(1)], operation_key="page-c1", reason="Out of stock")

    with django_assert_max_num_queries(15):
        response = admin_client.get(change_url(order))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="_save"' not in page  # read-only
    for text in ("SOFA-1", "CHAIR-1", "NIGHTSTAND-1", delivery.number, "pay-1", "Out of stock"):
        assert text in page
    groups = response.context["ledger_groups"]
    chairs = OrderLine.objects.filter(order=order, line_number=2).order_by("part")
    sofa = OrderLine.objects.get(order=order, line_number=1)
    kinds_by_lot = {group.lines[0].lot_id: [entry.kind for entry, _change in group.rows] for group in groups[:-1]}
    assert kinds_by_lot[chairs[1].lot_id] == ["split", "unlock"]  # the delivered chair: split off, then unlocked
    assert kinds_by_lot[chairs[0].lot_id] == ["accrue", "split"]  # the three chairs still pending
    assert kinds_by_lot[sofa.lot_id] == ["accrue", "cancel"]
    redemption = groups[-1]
    assert [entry.kind for entry, _change in redemption.rows] == ["redeem", "refund"]
    assert sofa.points_redeemed > 0
    assert redemption.rows[1][0].amount == sofa.points_redeemed
    assert f'href="{reverse("admin:points_entry_change", args=[redemption.rows[0][0].pk])}"' in page
    for url in (action_url(order, "deliver"), action_url(order, "cancel"), action_url(order, "return")):
        assert f'href="{url}"' in page
    assert f'href="{action_url(order, "attach_customer")}"' not in page  # it has a customer
    assert points_reconcile() == []


def test_the_page_of_many_lines_takes_as_many_queries_as_the_page_of_three(admin_client, channel, customer):
    small = place(channel, customer)
    big = place(channel, customer, lines=[new_line(number, f"SKU-{number}", "1000") for number in range(1, 16)])
    for order in (small, big):
        order_deliver(order=order, lines=[LineRequest(1), LineRequest(2)], operation_key=f"pages-{order.pk}")

    for url in (change_url, lambda order: action_url(order, "deliver"), lambda order: action_url(order, "return")):
        with CaptureQueriesContext(connection) as few:
            assert admin_client.get(url(small)).status_code == 200
        with CaptureQueriesContext(connection) as many:
            assert admin_client.get(url(big)).status_code == 200
        assert len(many) == len(few), url(big)


def test_a_delivery_page_shows_the_lines_it_delivered_and_offers_no_actions(admin_client, channel, customer):
    order = place(channel, customer)
    delivery = order_deliver(order=order, lines=[LineRequest(2)], operation_key="dp-1")

    response = admin_client.get(change_url(delivery))
    action = admin_client.get(action_url(delivery, "cancel"))

    assert response.status_code == 200
    assert "CHAIR-1" in response.content.decode()
    assert "SOFA-1" not in response.content.decode()
    assert response.context["order_actions"] == []
    assert action.status_code == 302
    assert action["Location"] == change_url(order)


# --- staff actions: the same result as the services ------------------------------------------------------------------


@pytest.mark.smoke
def test_deliver_cancel_and_return_in_the_admin_do_exactly_what_the_services_do(admin_client, channel):
    by_admin, by_service = seeded(CustomerFactory()), seeded(CustomerFactory())
    ordered = place(channel, by_admin, redeem=Decimal("500"))
    twin = place(channel, by_service, redeem=Decimal("500"))

    response = admin_client.post(
        action_url(ordered, "deliver"), form_data(admin_client, action_url(ordered, "deliver"), {2: "1", 1: None})
    )
    order_deliver(order=twin, lines=[LineRequest(2, Decimal("1")), LineRequest(1)], operation_key="twin-d")
    assert response.status_code == 302
    assert response["Location"] == change_url(ordered)
    assert line_states(ordered) == line_states(twin)
    assert balance(by_admin) == balance(by_service)

    response = admin_client.post(
        action_url(ordered, "cancel"), form_data(admin_client, action_url(ordered, "cancel"), {2: "2"})
    )
    order_cancel(order=twin, lines=[LineRequest(2, Decimal("2"))], operation_key="twin-c", reason="Customer called")
    assert response.status_code == 302
    assert line_states(ordered) == line_states(twin)
    assert balance(by_admin) == balance(by_service)

    response = admin_client.post(
        action_url(ordered, "return"), form_data(admin_client, action_url(ordered, "return"), {1: None})
    )
    order_return(order=twin, lines=[LineRequest(1)], operation_key="twin-r", reason="Customer called")
    assert response.status_code == 302
    assert line_states(ordered) == line_states(twin)
    assert balance(by_admin) == balance(by_service)

    ordered.refresh_from_db()
    twin.refresh_from_db()
    assert ordered.status == twin.status == Order.Status.PARTIALLY_RETURNED
    events = OrderEvent.objects.filter(order=ordered).exclude(kind=OrderEvent.Kind.PLACE).order_by("pk")
    assert [(event.kind, event.actor_user.username) for event in events] == [
        ("deliver", "admin"),
        ("cancel", "admin"),
        ("return", "admin"),
    ]
    assert [event.reason for event in events][1:] == ["Customer called", "Customer called"]
    return_entries = Entry.objects.filter(operation_key__startswith=f"order-event:{events[2].pk}:").select_related(
        "actor_user"
    )
    assert sorted(entry.kind for entry in return_entries) == ["clawback", "refund"]  # the sofa's points, both ways
    assert {(entry.actor_user.username, entry.reason) for entry in return_entries} == {("admin", "Customer called")}
    assert LogEntry.objects.filter(object_id=str(ordered.pk)).count() == 3
    assert points_reconcile() == []


def test_a_delivery_number_and_time_given_in_the_form_are_the_sub_orders(admin_client, channel, customer):
    order = place(channel, customer)
    at = timezone.localtime() - timedelta(days=1)
    data = form_data(
        admin_client,
        action_url(order, "deliver"),
        {3: None},
        number="DLV-77",
        delivered_at_0=f"{at:%Y-%m-%d}",
        delivered_at_1="10:30:00",
    )

    admin_client.post(action_url(order, "deliver"), data)

    delivery = Order.objects.get(parent=order)
    assert delivery.number == "DLV-77"
    assert timezone.localtime(delivery.created_at).strftime("%Y-%m-%d %H:%M") == f"{at:%Y-%m-%d} 10:30"
    assert points_reconcile() == []


def test_the_same_form_submitted_twice_changes_the_order_once(admin_client, channel, customer):
    order = place(channel, customer)
    deliver = form_data(admin_client, action_url(order, "deliver"), {2: "1"})
    cancel = form_data(admin_client, action_url(order, "cancel"), {3: None})

    for data, action in ((deliver, "deliver"), (deliver, "deliver"), (cancel, "cancel"), (cancel, "cancel")):
        assert admin_client.post(action_url(order, action), data).status_code == 302

    assert Order.objects.filter(parent=order).count() == 1
    assert OrderLine.objects.filter(order=order, status="delivered").count() == 1
    assert OrderLine.objects.filter(order=order, status="cancelled").count() == 1
    assert OrderEvent.objects.filter(order=order).count() == 3  # placed, delivered, cancelled
    assert points_reconcile() == []


# --- refusals: a form error, nothing changed -------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["deliver", "cancel"])
def test_without_a_reason_the_form_says_so_and_nothing_changes(admin_client, channel, customer, action):
    order = place(channel, customer)
    before, states = balance(customer), line_states(order)

    response = admin_client.post(
        action_url(order, action), form_data(admin_client, action_url(order, action), {1: None}, reason="  ")
    )

    assert response.status_code == 200
    assert "reason" in errors_of(response)
    assert line_states(order) == states
    assert balance(customer) == before
    assert OrderEvent.objects.filter(order=order).count() == 1
    assert points_reconcile() == []


def test_a_return_without_a_reason_changes_nothing(admin_client, channel, customer):
    order = place(channel, customer, delivered=True)
    before, states = balance(customer), line_states(order)

    response = admin_client.post(
        action_url(order, "return"), form_data(admin_client, action_url(order, "return"), {1: None}, reason="")
    )

    assert response.status_code == 200
    assert list(errors_of(response)) == ["reason"]
    assert (balance(customer), line_states(order)) == (before, states)
    assert points_reconcile() == []


def test_the_form_offers_each_line_with_what_it_has_left(admin_client, channel, customer):
    order = place(
        channel, customer, lines=[new_line(1, "TILE-1", "100", quantity="14"), new_line(2, "GLUE-1", "5", "2.5")]
    )
    order_deliver(order=order, lines=[LineRequest(1, Decimal("4"))], operation_key="offer-d")

    deliver = admin_client.get(action_url(order, "deliver")).context["form"]
    returns = admin_client.get(action_url(order, "return")).context["form"]

    assert [(name, field.help_text) for name, field in deliver.fields.items() if name.startswith("quantity_")] == [
        ("quantity_1", "Empty: all 10."),  # not 1E+1
        ("quantity_2", "Empty: all 2.5."),
    ]
    assert [(name, field.help_text) for name, field in returns.fields.items() if name.startswith("quantity_")] == [
        ("quantity_1", "Empty: all 4."),
    ]
    assert points_reconcile() == []


def test_no_line_chosen_or_too_much_quantity_is_a_form_error(admin_client, channel, customer):
    order = place(channel, customer)
    states = line_states(order)

    none_chosen = admin_client.post(
        action_url(order, "cancel"), form_data(admin_client, action_url(order, "cancel"), {})
    )
    too_many = admin_client.post(
        action_url(order, "cancel"), form_data(admin_client, action_url(order, "cancel"), {2: "5"})
    )

    assert none_chosen.status_code == too_many.status_code == 200
    assert errors_of(none_chosen)["__all__"] == ["Choose at least one line."]
    assert "quantity_2" in errors_of(too_many)
    assert line_states(order) == states
    assert points_reconcile() == []


def test_what_the_service_refuses_is_shown_on_the_form_not_a_server_error(admin_client, channel, customer):
    order = place(channel, customer, number="ORD-REF-1")
    place(channel, customer, number="TAKEN-1")
    cancel = form_data(admin_client, action_url(order, "cancel"), {1: None})
    deliver = form_data(admin_client, action_url(order, "deliver"), {2: None}, number="TAKEN-1")
    order_deliver(order=order, lines=[LineRequest(1)], operation_key="meanwhile")  # by the ERP, while the form is open
    states = line_states(order)

    stale = admin_client.post(action_url(order, "cancel"), cancel)
    taken = admin_client.post(action_url(order, "deliver"), deliver)

    assert stale.status_code == 200
    assert errors_of(stale)["__all__"] == ["Choose at least one line."]  # line 1 is no longer offered
    assert taken.status_code == 200
    assert "number" in errors_of(taken)
    assert line_states(order) == states
    assert Order.objects.filter(parent=order).count() == 1
    assert points_reconcile() == []


def test_a_service_error_naming_a_line_shows_on_its_quantity(admin_client, channel, customer):
    order = place(channel, customer)
    data = form_data(admin_client, action_url(order, "cancel"), {2: "3"})
    order_cancel(order=order, lines=[LineRequest(2, Decimal("2"))], operation_key="meanwhile-2")  # 2 chairs left
    states = line_states(order)

    response = admin_client.post(action_url(order, "cancel"), data)

    assert response.status_code == 200
    assert "quantity_2" in errors_of(response)  # the form now offers 2: the form's own check
    assert line_states(order) == states
    assert points_reconcile() == []


# --- permissions -----------------------------------------------------------------------------------------------------


def test_staff_who_may_only_view_orders_see_the_page_without_actions_and_get_403_on_them(
    staff_client, channel, customer
):
    order = place(channel, None, phone="+79167770000")
    client = staff_client("view_order")
    states = line_states(order)

    page = client.get(change_url(order))
    assert page.status_code == 200
    assert "SOFA-1" in page.content.decode()  # the lines inline, with the order's view permission alone
    assert page.context["order_actions"] == []
    for action in ("deliver", "cancel", "return", "attach_customer"):
        assert client.get(action_url(order, action)).status_code == 403
        assert client.post(action_url(order, action), {"reason": "x", "line_1": "on"}).status_code == 403
    assert line_states(order) == states
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_staff_with_the_change_permission_can_act(staff_client, channel, customer):
    order = place(channel, customer)
    client = staff_client("view_order", "change_order")

    response = client.post(action_url(order, "deliver"), form_data(client, action_url(order, "deliver"), {1: None}))

    assert response.status_code == 302
    assert OrderLine.objects.get(order=order, line_number=1).status == OrderLine.Status.DELIVERED
    assert points_reconcile() == []


# --- attaching a customer --------------------------------------------------------------------------------------------


def test_attach_customer_by_phone_gives_the_order_and_its_points(admin_client, channel):
    order = place(channel, None, phone="+79168880000")
    order_deliver(order=order, lines=[LineRequest(2)], operation_key="att-d")
    customer = CustomerFactory(phone="+79168889999")
    page = admin_client.get(change_url(order))
    assert f'href="{action_url(order, "attach_customer")}"' in page.content.decode()
    token = token_of(admin_client.get(action_url(order, "attach_customer")))

    response = admin_client.post(
        action_url(order, "attach_customer"), {"token": token, "phone": "8 916 888-99-99", "reason": "Receipt shown"}
    )

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.customer == customer
    chairs = OrderLine.objects.get(order=order, line_number=2)
    others = OrderLine.objects.filter(order=order).exclude(line_number=2)
    available, pending, _debt = balance(customer)
    assert available == chairs.points_to_earn > 0
    assert pending == sum(line.points_to_earn for line in others)
    assert OrderEvent.objects.get(order=order, kind="match").actor_user.username == "admin"
    assert points_reconcile() == []


def test_attach_customer_refusals_are_form_errors(admin_client, channel):
    order = place(channel, None, phone="+79168880001")
    CustomerFactory(phone="+79168880002", card_number="C-1")
    url = action_url(order, "attach_customer")
    token = token_of(admin_client.get(url))

    unknown = admin_client.post(url, {"token": token, "phone": "+79160000999", "reason": "r"})
    both = admin_client.post(url, {"token": token, "phone": "+79168880002", "card": "C-1", "reason": "r"})
    no_reason = admin_client.post(url, {"token": token, "card": "C-1", "reason": ""})
    place_holder = CustomerFactory()
    order_attach = admin_client.post(url, {"token": token, "card": "C-1", "reason": "r"})  # attaches
    order.refresh_from_db()
    again = admin_client.post(  # a fresh form after somebody attached the order: the service refuses
        url, {"token": token_of(admin_client.get(url)), "phone": str(place_holder.phone), "reason": "r"}
    )

    assert unknown.status_code == both.status_code == no_reason.status_code == again.status_code == 200
    assert "phone" in errors_of(unknown)
    assert "__all__" in errors_of(both)
    assert "reason" in errors_of(no_reason)
    assert order_attach.status_code == 302
    assert errors_of(again)["__all__"] == ["The order already belongs to a customer."]
    order.refresh_from_db()
    assert order.customer.card_number == "C-1"
    assert points_reconcile() == []
