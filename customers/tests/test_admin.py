"""The customer admin for CRM managers: search, filters, the customer page, saving through services, actions."""

import re
from datetime import date, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.actors import Actor
from core.roles import CRM_MANAGER, roles_sync
from customers.exceptions import CustomerExists
from customers.models import ConsentChannel, ConsentEvent, Customer, CustomerChange, ExternalId, SmsCode
from customers.services import consent_set, customer_anonymise, customer_merge, customer_update
from customers.tests.factories import (
    B2bCustomerFactory,
    ConsentFactory,
    CustomerFactory,
    ExternalIdFactory,
    NonMemberFactory,
    StoreFactory,
)
from customers.tests.test_admin_card import with_sections
from integrations.tests.factories import ChannelFactory
from points.models import Account, Entry, Lot
from points.services import points_accrue
from points.tests.helpers import D, assert_consistent, key

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/customers/customer/"
ADD_URL = "/admin/customers/customer/add/"
NOW = timezone.now().replace(microsecond=0)


def change_url(customer) -> str:
    return f"/admin/customers/customer/{customer.pk}/change/"


def found(response) -> list[int]:
    assert response.status_code == 200
    return sorted(customer.pk for customer in response.context["cl"].result_list)


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def accrue(customer, amount, **kwargs):
    return points_accrue(
        customer=customer,
        amount=amount,
        kind="purchase",
        operation_key=key("accrue"),
        expires_at=NOW + timedelta(days=365),
        now=NOW,
        **kwargs,
    )


def profile(customer, **changes) -> dict:
    """The change form's POST data: the customer as it is, with ``changes``."""
    data = {
        "phone": customer.phone.as_e164 if customer.phone else "",
        "email": customer.email,
        "name": customer.name,
        "birth_date": customer.birth_date.isoformat() if customer.birth_date else "",
        "gender": customer.gender,
        "language": customer.language,
        "card_number": customer.card_number or "",
        "kind": customer.kind,
        "company": customer.company,
        "b2b_role": customer.b2b_role,
        "registration_store": customer.registration_store_id or "",
        "change_reason": "",
    }
    return {**data, **changes}


def act(client, action, customers, **confirmation):
    """Run an admin action on ``customers``: without ``confirmation`` the first step (the confirmation page),
    with it the confirmed POST."""
    data = {"action": action, "_selected_action": [customer.pk for customer in customers]}
    if confirmation:
        data = {**data, "confirmed": "yes", **confirmation}
    return client.post(LIST_URL, data, follow=True)


def done(response) -> bool:
    """The action finished (or was refused) and the list is shown again, rather than a confirmation page."""
    return response.redirect_chain == [(LIST_URL, 302)]


@pytest.fixture
def staff_client(client, django_user_model):
    """``staff_client(*codenames)`` → a client logged in as staff holding exactly those permissions, not confined
    to stores (``view_all_stores``: store scoping is tested in staff/tests/test_permissions.py)."""

    def make(*codenames):
        user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=[*codenames, "view_all_stores"]))
        client.force_login(user)
        return client

    return make


# --- the list --------------------------------------------------------------------------------


@pytest.mark.smoke
@pytest.mark.parametrize("typed", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567"])
def test_list_finds_a_customer_by_phone_in_any_format(admin_client, typed):
    wanted = CustomerFactory(phone="+79161234567")
    CustomerFactory(phone="+79161234568")

    response = admin_client.get(LIST_URL, {"q": typed})

    assert found(response) == [wanted.pk]


def test_list_search_by_phone_also_shows_a_merged_duplicate_with_that_phone(admin_client, admin_user):
    duplicate = CustomerFactory(phone="+79161234567")
    survivor = CustomerFactory(phone="+79031112233")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=Actor(user=admin_user), reason="same person")

    response = admin_client.get(LIST_URL, {"q": "89161234567"})

    assert found(response) == [duplicate.pk]
    assert f"merged into #{survivor.pk}" in response.content.decode()


def test_list_search_by_email_card_and_name(admin_client):
    by_email = CustomerFactory(email="anna@example.com", name="Anna Petrova")
    by_card = CustomerFactory(card_number="CARD-0042", name="Boris")
    CustomerFactory(email="other@example.com", card_number="CARD-0043", name="Vera")

    assert found(admin_client.get(LIST_URL, {"q": " Anna@Example.COM "})) == [by_email.pk]
    assert found(admin_client.get(LIST_URL, {"q": "CARD-0042"})) == [by_card.pk]
    assert found(admin_client.get(LIST_URL, {"q": "petrov"})) == [by_email.pk]
    assert found(admin_client.get(LIST_URL, {"q": "CARD-004"})) == []  # cards match exactly
    assert found(admin_client.get(LIST_URL, {"q": f"#{by_card.pk}"})) == [by_card.pk]


def test_list_filters_render_and_filter(admin_client):
    store = StoreFactory(name="Showroom Tverskaya")
    site = ChannelFactory(name="Web site")
    b2b = B2bCustomerFactory(registration_store=store)
    non_member = NonMemberFactory(join_channel=site)
    validated = CustomerFactory(email="v@example.com", email_validated_at=NOW)

    page = admin_client.get(LIST_URL)
    html = page.content.decode()

    assert page.status_code == 200
    for title in ("customer kind", "membership", "registration channel", "registration store", "email validated"):
        assert f"By {title}" in html
    assert "Showroom Tverskaya" in html
    assert "Web site" in html
    assert found(admin_client.get(LIST_URL, {"kind__exact": "b2b"})) == [b2b.pk]
    assert found(admin_client.get(LIST_URL, {"membership__exact": "non_member"})) == [non_member.pk]
    assert found(admin_client.get(LIST_URL, {"join_channel__id__exact": site.pk})) == [non_member.pk]
    assert found(admin_client.get(LIST_URL, {"registration_store__id__exact": store.pk})) == [b2b.pk]
    assert found(admin_client.get(LIST_URL, {"email_validated": "yes"})) == [validated.pk]
    assert found(admin_client.get(LIST_URL, {"email_validated": "no"})) == sorted([b2b.pk, non_member.pk])


@pytest.mark.parametrize("customers", [3, 50])
def test_list_query_count_does_not_grow_with_customers(admin_client, django_assert_max_num_queries, customers):
    stores = StoreFactory.create_batch(3)
    for number in range(customers):
        CustomerFactory(registration_store=stores[number % 3], email=f"c{number}@example.com")

    # session, user, count (the estimate, then exactly: the table is small), the page of customers with their
    # stores, the choices of the channel and the store filters
    with django_assert_max_num_queries(7):
        response = admin_client.get(LIST_URL)

    assert len(response.context["cl"].result_list) == customers


# --- the customer page -----------------------------------------------------------------------


def seed_journal(customer, entries: int) -> None:
    """``entries`` journal lines (and lots) for ``customer``: the first through the ledger service, the rest
    written in one statement the way an accrual writes them (points/tests/seeding.py)."""
    from points.tests.seeding import seed_lots

    accrue(customer, 10)
    if entries > 1:
        account = Account.objects.get(customer=customer)
        seed_lots(
            accounts=[account], lots_per_account=entries - 1, amount=D(1), expires_at=NOW + timedelta(days=90), now=NOW
        )


def page_queries(client, customer) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(change_url(customer))
    assert response.status_code == 200
    return len(queries), with_sections(client, response.content.decode())  # the page's queries; its histories too


@pytest.mark.skipif(connection.vendor != "postgresql", reason="seeds the journal with PostgreSQL SQL")
def test_customer_page_with_1000_journal_entries_costs_a_bounded_number_of_queries(
    admin_client, admin_user, django_assert_max_num_queries
):
    small, big = CustomerFactory(), CustomerFactory()
    for customer in (small, big):
        ExternalIdFactory(customer=customer)
        ConsentFactory(customer=customer)
    seed_journal(small, 1)
    seed_journal(big, 1000)
    staff = Actor(user=admin_user)
    for number in range(25):
        customer_update(customer=big, actor=staff, name=f"Name {number}", reason=f"typo {number}")
        consent_set(customer=big, channel=ConsentChannel.EMAIL, granted=number % 2 == 0, source="admin", actor=staff)
    assert Entry.objects.filter(account__customer=big).count() == 1000

    # the page alone (its histories come from their own URLs, customers/tests/test_admin_card.py): session, user,
    # customer (+ its channel, store, merge target), its accounts, tier, consents, store choices, merged duplicates
    with django_assert_max_num_queries(22):  # 20 + 2 per balance type (customers/tests/test_admin_card.py)
        response = admin_client.get(change_url(big))
    small_queries, _ = page_queries(admin_client, small)
    big_queries, html = page_queries(admin_client, big)

    assert response.status_code == 200
    assert big_queries == small_queries
    journal = html.split('id="journal-group"')[1]
    assert len(re.findall(r'href="/admin/points/entry/\d+/change/"', journal)) == 20
    assert "Showing the latest 20." in journal
    account = Account.objects.get(customer=big)
    assert f'href="/admin/points/entry/?account__in={account.pk}"' in journal
    lots = html.split('id="lots-group"')[1].split('id="journal-group"')[0]
    assert len(re.findall(r'href="/admin/points/lot/\d+/change/"', lots)) == 20
    changes = html.split('id="changes-group"')[1].split('id="lots-group"')[0]
    assert "name: Name 23 → Name 24" in changes
    assert "typo 24" in changes
    assert f'href="/admin/customers/customerchange/?customer__id__exact={big.pk}"' in changes


def test_customer_page_shows_profile_consents_ids_history_lots_and_journal(admin_client, admin_user):
    channel = ChannelFactory(name="ERP")
    customer = CustomerFactory(phone="+79161234567", name="Anna")
    ExternalIdFactory(customer=customer, channel=channel, external_id="erp-77")
    consent_set(customer=customer, channel=ConsentChannel.SMS, granted=True, source="api", actor=Actor(channel=channel))
    customer_update(customer=customer, actor=Actor(user=admin_user), email="anna@example.com", reason="called in")
    accrue(customer, 100)

    response = admin_client.get(change_url(customer))
    html = with_sections(admin_client, response.content.decode())

    assert response.status_code == 200
    for heading in ("Profile", "Business", "Membership", "Points", "Consents", "Consent history", "External ids",
                    "Change history", "Lots", "Journal"):  # fmt: skip
        assert f">{heading}</h2>" in html, heading
    assert "erp-77" in html
    consents = html.split('id="consents-group"')[1].split('id="consent-history-group"')[0]
    assert consents.count("never asked") == 3
    assert "granted" in consents
    changes = html.split('id="changes-group"')[1]
    assert "email: — → anna@example.com" in changes
    assert "called in" in changes
    assert admin_user.username in changes
    assert "Showing the latest" not in html
    lot = Lot.objects.get()
    assert f'href="/admin/points/lot/{lot.pk}/change/"' in html


def test_lots_and_journal_links_list_only_this_customers_rows(admin_client):
    customer, other = CustomerFactory(), CustomerFactory()
    accrue(customer, 100)
    accrue(customer, 40, balance_type="b2b")
    accrue(other, 7)
    html = admin_client.get(change_url(customer)).content.decode()
    lots_link = re.search(r'href="(/admin/points/lot/\?account__in=[^"]+)"', html)[1].replace("&amp;", "&")
    journal_link = re.search(r'href="(/admin/points/entry/\?account__in=[^"]+)"', html)[1].replace("&amp;", "&")

    holds_link = re.search(r'href="(/admin/points/hold/\?account__in=[^"]+)"', html)[1].replace("&amp;", "&")

    lots = admin_client.get(lots_link)
    journal = admin_client.get(journal_link)
    holds = admin_client.get(holds_link)

    assert sorted(lot.amount for lot in lots.context["cl"].result_list) == [D(40), D(100)]
    assert sorted(entry.amount for entry in journal.context["cl"].result_list) == [D(40), D(100)]
    assert (holds.status_code, list(holds.context["cl"].result_list)) == (200, [])


def test_merged_and_anonymised_customers_are_shown_read_only(admin_client, admin_user):
    duplicate, survivor, gone = CustomerFactory(), CustomerFactory(), CustomerFactory()
    staff = Actor(user=admin_user)
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")
    customer_anonymise(customer=gone, actor=staff, reason="asked to be forgotten")

    merged_page = admin_client.get(change_url(duplicate)).content.decode()
    survivor_page = admin_client.get(change_url(survivor)).content.decode()
    anonymised_page = admin_client.get(change_url(gone)).content.decode()

    edit = admin_client.post(change_url(duplicate), profile(duplicate, name="Changed"))

    for html in (merged_page, anonymised_page):
        assert 'name="phone"' not in html
        assert 'name="_save"' not in html
    assert edit.status_code == 403
    assert f'href="/admin/customers/customer/{survivor.pk}/change/"' in merged_page
    assert f'href="/admin/customers/customer/{duplicate.pk}/change/"' in survivor_page  # merged duplicates
    assert 'name="phone"' in survivor_page


# --- saving through the services -------------------------------------------------------------


@pytest.mark.smoke
def test_adding_a_customer_creates_a_non_member_through_the_service(admin_client, admin_user):
    store = StoreFactory()

    response = admin_client.post(
        ADD_URL,
        {
            "phone": "8 (916) 123-45-67",
            "name": " Anna ",
            "email": "Anna@Example.com",
            "language": "ru",
            "kind": "retail",
            "registration_store": store.pk,
        },
    )

    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.phone.as_e164, customer.name, customer.email, customer.membership) == (
        "+79161234567",
        "Anna",
        "anna@example.com",
        "non_member",
    )
    assert customer.registration_store == store
    change = CustomerChange.objects.get(customer=customer)
    assert (change.action, change.actor_user, change.changes["phone"]) == ("create", admin_user, [None, "+79161234567"])


def test_saving_records_each_changed_field_before_and_after_with_the_staff_user(admin_client, admin_user):
    customer = CustomerFactory(phone="+79161234567", name="Anna", email="old@example.com", email_validated_at=NOW)
    store = StoreFactory()

    response = admin_client.post(
        change_url(customer),
        profile(
            customer,
            phone="+7 903 111-22-33",
            email="new@example.com",
            registration_store=store.pk,
            birth_date="1990-05-01",
            change_reason="customer called",
        ),
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.phone.as_e164, customer.email, customer.email_validated_at) == (
        "+79031112233",
        "new@example.com",
        None,
    )
    change = CustomerChange.objects.get(customer=customer)
    assert (change.action, change.actor_user, change.reason) == ("update", admin_user, "customer called")
    assert change.changes == {
        "phone": ["+79161234567", "+79031112233"],
        "email": ["old@example.com", "new@example.com"],
        "birth_date": [None, "1990-05-01"],
        "registration_store": [None, store.pk],
        "email_validated_at": [NOW.isoformat(), None],
    }


def test_saving_without_changes_records_nothing(admin_client):
    customer = CustomerFactory(phone="+79161234567")

    response = admin_client.post(change_url(customer), profile(customer, phone="8 916 123 45 67"))

    assert response.status_code == 302
    assert CustomerChange.objects.count() == 0


@pytest.mark.parametrize("url", ["change", "add"])
def test_a_phone_of_another_active_customer_is_a_form_error(admin_client, url):
    owner = CustomerFactory(phone="+79031112233")
    customer = CustomerFactory(phone="+79161234567")
    target = change_url(customer) if url == "change" else ADD_URL
    data = (
        profile(customer, phone="8 903 111 22 33") if url == "change" else {**profile(customer), "phone": "89031112233"}
    )

    response = admin_client.post(target, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["phone"]
    assert "A customer with this phone already exists" in errors["phone"][0]
    assert f"/admin/customers/customer/{owner.pk}/change/" in errors["phone"][0]
    assert (Customer.objects.count(), CustomerChange.objects.count()) == (2, 0)
    customer.refresh_from_db()
    assert customer.phone.as_e164 == "+79161234567"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"phone": "12345"}, "phone", "This is not a valid phone number."),
        ({"card_number": "CARD-1"}, "card_number", "This card number belongs to another customer"),
        ({"b2b_role": "designer"}, "b2b_role", "Only B2B customers have a B2B role."),
        ({"birth_date": (date.today() + timedelta(days=2)).isoformat()}, "birth_date", "in the future"),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
    ],
)
def test_what_the_service_would_refuse_is_a_form_error(admin_client, changes, field, message):
    CustomerFactory(card_number="CARD-1")
    customer = CustomerFactory(kind="retail")

    response = admin_client.post(change_url(customer), profile(customer, **changes))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert CustomerChange.objects.count() == 0


def test_a_refusal_of_the_service_after_the_form_passed_is_a_message_not_a_500(admin_client):
    customer = CustomerFactory(name="Anna")

    with mock.patch("customers.admin.customer_update", side_effect=CustomerExists()):
        response = admin_client.post(change_url(customer), profile(customer, name="Anna Petrova"), follow=True)

    assert response.status_code == 200
    assert "A customer with this phone already exists." in texts(response)
    customer.refresh_from_db()
    assert customer.name == "Anna"


def test_customers_cannot_be_deleted(admin_client, customer):
    response = admin_client.post(f"/admin/customers/customer/{customer.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()


# --- merge -----------------------------------------------------------------------------------


@pytest.fixture
def pair():
    duplicate = CustomerFactory(phone="+79161234567", name="Anna")
    survivor = CustomerFactory(phone="+79031112233", name="Anna Petrova")
    accrue(duplicate, 120)
    accrue(survivor, 30)
    return duplicate, survivor


def test_merge_asks_which_customer_stays_showing_both_with_their_balances(admin_client, pair):
    duplicate, survivor = pair

    response = act(admin_client, "merge_customers", [duplicate, survivor])

    html = response.content.decode()
    assert response.status_code == 200
    for shown in ("+79161234567", "+79031112233", "120.00 available", "30.00 available", 'name="reason"'):
        assert shown in html
    assert html.count('name="survivor"') == 2
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


def test_merge_moves_the_points_to_the_chosen_survivor(admin_client, admin_user, pair):
    duplicate, survivor = pair

    response = act(admin_client, "merge_customers", [duplicate, survivor], survivor=survivor.pk, reason="same person")

    assert done(response)
    duplicate.refresh_from_db()
    assert (duplicate.merged_into, duplicate.merged_at is not None) == (survivor, True)
    assert Account.objects.get(customer=survivor, balance_type__code="retail").available == D(150)
    assert Account.objects.get(customer=duplicate, balance_type__code="retail").available == D(0)
    assert Entry.objects.filter(kind="move_in", account__customer=survivor).exists()
    change = CustomerChange.objects.get(customer=survivor, action="merge")
    assert (change.actor_user, change.reason) == (admin_user, "same person")
    assert_consistent()
    assert any("was merged into" in text for text in texts(response))


def test_merge_without_a_reason_is_a_form_error_and_merges_nothing(admin_client, pair):
    duplicate, survivor = pair

    response = act(admin_client, "merge_customers", [duplicate, survivor], survivor=survivor.pk, reason="  ")

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["reason"]
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None
    assert Entry.objects.count() == 2


def test_merge_needs_exactly_two_customers(admin_client, pair):
    third = CustomerFactory()

    one = act(admin_client, "merge_customers", [pair[0]])
    three = act(admin_client, "merge_customers", [*pair, third], survivor=third.pk, reason="x")

    assert (done(one), done(three)) == (True, True)
    assert texts(one) == ["Select exactly two customers to merge."]
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


def test_merge_refused_by_the_service_is_an_error_message(admin_client, admin_user, pair):
    duplicate, survivor = pair
    customer_anonymise(customer=duplicate, actor=Actor(user=admin_user), reason="asked")

    response = act(admin_client, "merge_customers", [duplicate, survivor], survivor=survivor.pk, reason="same")

    assert done(response)
    assert texts(response) == ["This customer was anonymised."]
    assert Account.objects.get(customer=survivor).available == D(30)


# --- anonymise, block, unblock, join ---------------------------------------------------------


def test_anonymise_warns_then_wipes_personal_data(admin_client):
    customer = CustomerFactory(email="anna@example.com", card_number="CARD-9", birth_date=date(1990, 1, 2))
    ExternalIdFactory(customer=customer)
    accrue(customer, 50)

    page = act(admin_client, "anonymise_customers", [customer])
    response = act(admin_client, "anonymise_customers", [customer], reason="GDPR request 17")

    assert "This cannot be undone." in page.content.decode()
    assert done(response)
    customer.refresh_from_db()
    assert (customer.membership, customer.phone, customer.email, customer.name, customer.card_number) == (
        "anonymised",
        None,
        "",
        "",
        None,
    )
    assert customer.birth_date is None
    assert not ExternalId.objects.exists()
    assert Account.objects.get(customer=customer).available == D(50)  # the ledger stays
    assert texts(response) == [f"1 customer anonymised: #{customer.pk}."]  # no personal data in the message


def test_block_and_unblock_with_a_reason(admin_client):
    member, non_member = CustomerFactory(), NonMemberFactory()

    act(admin_client, "block_customers", [member, non_member], reason="fraud check")
    blocked = {c.pk: c.membership for c in Customer.objects.all()}
    again = act(admin_client, "block_customers", [member], reason="fraud check")
    act(admin_client, "unblock_customers", [member, non_member], reason="cleared")

    assert blocked == {member.pk: "blocked", non_member.pk: "blocked"}
    assert texts(again)[0].startswith("1 customer was blocked already")
    member.refresh_from_db()
    non_member.refresh_from_db()
    assert (member.membership, non_member.membership) == ("member", "non_member")
    assert list(CustomerChange.objects.filter(customer=member).values_list("action", "reason")) == [
        ("block", "fraud check"),
        ("unblock", "cleared"),
    ]


def test_unblocking_a_customer_who_is_not_blocked_is_an_error_message(admin_client, customer):
    response = act(admin_client, "unblock_customers", [customer], reason="cleared")

    assert texts(response) == [
        f"#{customer.pk} {customer}: This membership change is not possible from the customer's current state."
    ]
    assert CustomerChange.objects.count() == 0


def test_join_makes_a_member_with_the_welcome_bonus(admin_client, admin_user, settings):
    settings.LOYALTY_WELCOME_BONUS_POINTS = 500
    store = StoreFactory()
    non_member, member = NonMemberFactory(), CustomerFactory()

    response = act(admin_client, "join_customers", [non_member, member], reason="signed the form", store=store.pk)

    non_member.refresh_from_db()
    assert (non_member.membership, non_member.registration_store) == ("member", store)
    assert Lot.objects.get(account__customer=non_member).kind == "welcome"
    assert not Lot.objects.filter(account__customer=member).exists()
    assert [text.split(":")[0] for text in texts(response)] == [
        "1 customer joined the programme",
        "1 customer was a member already",
    ]
    assert CustomerChange.objects.get(customer=non_member).actor_user == admin_user


def test_an_action_without_a_reason_shows_the_confirmation_again(admin_client, customer):
    response = act(admin_client, "block_customers", [customer], reason="")

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["reason"]
    customer.refresh_from_db()
    assert customer.membership == "member"


# --- permissions -----------------------------------------------------------------------------


def test_staff_without_the_permissions_neither_see_nor_run_merge_anonymise_block(staff_client):
    first, second = CustomerFactory(), CustomerFactory()
    client = staff_client("view_customer", "change_customer")

    page = client.get(LIST_URL).content.decode()
    merge = act(client, "merge_customers", [first, second], survivor=second.pk, reason="same")
    anonymise = act(client, "anonymise_customers", [first], reason="asked")

    assert 'value="join_customers"' in page
    for action in ("merge_customers", "anonymise_customers", "block_customers", "unblock_customers"):
        assert f'value="{action}"' not in page
    assert (done(merge), done(anonymise)) == (True, True)
    assert texts(merge) == texts(anonymise) == ["No action selected."]
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0
    assert not Customer.objects.filter(membership="anonymised").exists()


def test_staff_who_may_only_view_see_the_customer_page_read_only(staff_client):
    customer = CustomerFactory(phone="+79161234567")
    accrue(customer, 100)
    client = staff_client("view_customer")

    page = client.get(change_url(customer))
    post = client.post(change_url(customer), profile(customer, name="Changed"))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="phone"' not in html
    assert 'id="journal-group"' in html
    assert "adjust-points" not in html
    assert post.status_code == 403
    assert CustomerChange.objects.count() == 0


def test_staff_with_the_merge_permission_may_merge(staff_client, pair):
    duplicate, survivor = pair
    client = staff_client("view_customer", "merge_customer")

    response = act(client, "merge_customers", [duplicate, survivor], survivor=survivor.pk, reason="same person")

    assert done(response)
    duplicate.refresh_from_db()
    assert duplicate.merged_into == survivor


def test_crm_managers_hold_the_customer_action_permissions():
    roles_sync()

    granted = set(Group.objects.get(name=CRM_MANAGER).permissions.values_list("codename", flat=True))

    assert {"merge_customer", "anonymise_customer", "block_customer", "change_customer"} <= granted


# --- histories and SMS codes -----------------------------------------------------------------


def test_history_lists_are_read_only_and_searchable_by_customer_id_or_phone(admin_client, admin_user):
    customer, other = CustomerFactory(phone="+79161234567"), CustomerFactory()
    staff = Actor(user=admin_user)
    for someone in (customer, other):
        consent_set(customer=someone, channel=ConsentChannel.SMS, granted=True, source="admin", actor=staff)
        customer_update(customer=someone, actor=staff, name="Changed")

    pages = {
        model: (
            admin_client.get(f"/admin/customers/{model}/", {"q": str(customer.pk)}),
            admin_client.get(f"/admin/customers/{model}/", {"q": "8 916 123 45 67"}),
        )
        for model in ("consentevent", "customerchange")
    }
    event = ConsentEvent.objects.filter(customer=customer).get()
    detail = admin_client.get(f"/admin/customers/consentevent/{event.pk}/change/")
    added = admin_client.post("/admin/customers/customerchange/add/", {})

    for by_id, by_phone in pages.values():
        assert {row.customer_id for row in by_id.context["cl"].result_list} == {customer.pk}
        assert {row.customer_id for row in by_phone.context["cl"].result_list} == {customer.pk}
        assert "/add/" not in by_id.content.decode().split('id="content"')[1]
    assert 'name="_save"' not in detail.content.decode()
    assert added.status_code == 403
    assert "Changed" in pages["customerchange"][0].content.decode()


def test_sms_codes_are_listed_without_their_hash(admin_client):
    code = SmsCode.objects.create(
        phone="+79161234567", code_hash="f" * 64, created_at=NOW, expires_at=NOW + timedelta(minutes=5)
    )

    listing = admin_client.get("/admin/customers/smscode/", {"q": "8 916 123-45-67"})
    detail = admin_client.get(f"/admin/customers/smscode/{code.pk}/change/")

    assert [row.pk for row in listing.context["cl"].result_list] == [code.pk]
    for response in (listing, detail):
        assert response.status_code == 200
        assert "f" * 64 not in response.content.decode()
