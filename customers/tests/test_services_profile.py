"""Creating customers and changing their profile: normalised identifiers, uniqueness errors, full history."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from customers.exceptions import (
    CardNumberTaken,
    CustomerAnonymised,
    CustomerExists,
    CustomerMerged,
    ExternalIdTaken,
    InvalidCustomerData,
    InvalidPhone,
)
from customers.models import Customer, CustomerChange, ExternalId
from customers.selectors import customer_history
from customers.services import (
    customer_anonymise,
    customer_create,
    customer_external_id_set,
    customer_merge,
    customer_update,
)
from customers.tests.factories import B2bCustomerFactory, CustomerFactory, StoreFactory
from integrations.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def changes_of(customer, action=None):
    rows = CustomerChange.objects.filter(customer=customer).order_by("pk")
    if action:
        rows = rows.filter(action=action)
    return [row.changes for row in rows]


# --- customer_create ------------------------------------------------------------------------------------


@pytest.mark.smoke
@pytest.mark.parametrize("typed", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567"])
def test_create_with_a_phone_in_any_format_finds_the_same_customer(typed):
    existing = customer_create(phone="+79161234567", name="Anna")

    with pytest.raises(CustomerExists) as refused:
        customer_create(phone=typed, name="Anna again")

    assert (refused.value.code, refused.value.extra) == ("customer_exists", {"customer_id": existing.pk})
    assert list(Customer.objects.values_list("pk", "phone", "name")) == [(existing.pk, existing.phone, "Anna")]


def test_create_records_a_non_member_with_its_channel_store_and_a_history_row(site_actor):
    store = StoreFactory(code="msk-1")

    customer = customer_create(
        phone="8 916 123 45 67",
        name="  Anna Petrova ",
        email=" Anna@Example.COM ",
        birth_date=date(1990, 5, 17),
        gender="female",
        card_number="CARD-1",
        store=store,
        external_id="site-42",
        actor=site_actor,
        now=NOW,
    )

    customer.refresh_from_db()
    assert (customer.phone.as_e164, customer.name, customer.email, customer.card_number) == (
        "+79161234567",
        "Anna Petrova",
        "anna@example.com",
        "CARD-1",
    )
    assert (customer.membership, customer.joined_at) == (Customer.Membership.NON_MEMBER, None)
    assert (customer.join_channel, customer.registration_store) == (site_actor.channel, store)
    assert list(ExternalId.objects.values_list("customer", "channel", "external_id")) == [
        (customer.pk, site_actor.channel.pk, "site-42")
    ]
    change = CustomerChange.objects.get(customer=customer)
    assert (change.action, change.actor_channel, change.actor_user, change.created_at) == (
        "create",
        site_actor.channel,
        None,
        NOW,
    )
    assert change.changes == {
        "phone": [None, "+79161234567"],
        "email": [None, "anna@example.com"],
        "name": [None, "Anna Petrova"],
        "birth_date": [None, "1990-05-17"],
        "gender": [None, "female"],
        "card_number": [None, "CARD-1"],
        "kind": [None, "retail"],
        "language": [None, "ru"],
        "registration_store": [None, store.pk],
    }


def test_create_with_a_taken_card_is_card_number_taken_and_creates_nothing():
    owner = CustomerFactory(card_number="CARD-7")

    with pytest.raises(CardNumberTaken) as refused:
        customer_create(phone="+79031112233", card_number="CARD-7")

    assert refused.value.extra == {"card_number": "CARD-7"}
    assert list(Customer.objects.values_list("pk", flat=True)) == [owner.pk]
    assert not CustomerChange.objects.exists()


def test_create_with_an_external_id_the_channel_already_uses_is_external_id_taken(site_actor):
    owner = customer_create(phone="+79031112233", external_id="site-1", actor=site_actor)

    with pytest.raises(ExternalIdTaken):
        customer_create(phone="+79031112244", external_id="site-1", actor=site_actor)

    assert list(Customer.objects.values_list("pk", flat=True)) == [owner.pk]
    assert ExternalId.objects.get().customer == owner


def test_the_same_external_id_in_another_channel_is_fine(site_actor):
    erp = Actor(channel=ChannelFactory(code="erp"))
    first = customer_create(phone="+79031112233", external_id="42", actor=site_actor)

    second = customer_create(phone="+79031112244", external_id="42", actor=erp)

    assert sorted(ExternalId.objects.values_list("customer", "external_id")) == [(first.pk, "42"), (second.pk, "42")]


def test_create_with_an_external_id_but_no_channel_is_invalid_and_creates_nothing():
    with pytest.raises(InvalidCustomerData):
        customer_create(phone="+79031112233", external_id="42")

    assert not Customer.objects.exists()


def test_create_with_an_invalid_phone_is_invalid_phone():
    with pytest.raises(InvalidPhone):
        customer_create(phone="not a phone")

    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"b2b_role": "designer"}, "b2b_role", "retail_has_no_role"),
        ({"kind": "b2b", "b2b_role": "astronaut"}, "b2b_role", "invalid_choice"),
        ({"kind": "wholesale"}, "kind", "invalid_choice"),
        ({"gender": "x"}, "gender", "invalid_choice"),
        ({"language": "xx"}, "language", "invalid_choice"),
        ({"email": "not-an-email"}, "email", "invalid"),
        ({"birth_date": date.today() + timedelta(days=2)}, "birth_date", "in_future"),
    ],
)
def test_invalid_profile_data_names_the_field_and_creates_nothing(data, field, code):
    with pytest.raises(InvalidCustomerData) as refused:
        customer_create(phone="+79031112233", **data)

    assert refused.value.code == "invalid_customer_data"
    assert [error["code"] for error in refused.value.fields[field]] == [code]
    assert not Customer.objects.exists()


def test_a_b2b_customer_has_a_company_and_a_role():
    customer = customer_create(phone="+79031112233", kind="b2b", company=" Studio A ", b2b_role="designer")

    customer.refresh_from_db()
    assert (customer.kind, customer.company, customer.b2b_role) == ("b2b", "Studio A", "designer")


def test_a_merged_duplicates_phone_can_belong_to_a_new_customer(staff):
    duplicate, survivor = CustomerFactory(phone="+79031112233"), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    created = customer_create(phone="+79031112233")

    assert Customer.objects.filter(phone="+79031112233", merged_into__isnull=True).get() == created


# --- customer_update ------------------------------------------------------------------------------------


def test_update_records_each_changed_field_before_and_after_with_who_and_why(staff):
    customer = CustomerFactory(name="Anna", email="anna@example.com", birth_date=date(1990, 1, 1))

    updated = customer_update(
        customer=customer,
        actor=staff,
        reason="customer called",
        now=NOW,
        name="Anna Petrova",
        email="Anna@Example.com",  # the same email in another case: no change
        birth_date=date(1990, 1, 2),
        phone="8 903 111 22 33",
    )

    updated.refresh_from_db()
    assert (updated.name, updated.email, updated.birth_date, updated.phone.as_e164) == (
        "Anna Petrova",
        "anna@example.com",
        date(1990, 1, 2),
        "+79031112233",
    )
    change = customer_history(customer=customer).get()
    assert (change.action, change.reason, change.actor_user, change.created_at) == (
        "update",
        "customer called",
        staff.user,
        NOW,
    )
    assert change.changes == {
        "name": ["Anna", "Anna Petrova"],
        "birth_date": ["1990-01-01", "1990-01-02"],
        "phone": [str(customer.phone), "+79031112233"],
    }


def test_an_update_to_the_same_values_writes_no_history(staff):
    customer = CustomerFactory(name="Anna", email="anna@example.com", card_number="C1")

    customer_update(customer=customer, actor=staff, name=" Anna ", email="ANNA@example.com", card_number="C1")

    assert not CustomerChange.objects.exists()


def test_changing_the_email_clears_its_validation(staff):
    validated_at = NOW - timedelta(days=3)
    customer = CustomerFactory(email="old@example.com", email_validated_at=validated_at)

    customer_update(customer=customer, actor=staff, email="new@example.com", now=NOW)

    customer.refresh_from_db()
    assert (customer.email, customer.email_validated_at, customer.email_validated) == ("new@example.com", None, False)
    assert changes_of(customer) == [
        {"email": ["old@example.com", "new@example.com"], "email_validated_at": [validated_at.isoformat(), None]}
    ]


def test_updating_to_another_customers_phone_is_customer_exists_and_changes_nothing(staff):
    owner, customer = CustomerFactory(phone="+79031112233"), CustomerFactory(phone="+79031112244")

    with pytest.raises(CustomerExists) as refused:
        customer_update(customer=customer, actor=staff, phone="8 903 111-22-33")

    assert refused.value.extra == {"customer_id": owner.pk}
    customer.refresh_from_db()
    assert customer.phone.as_e164 == "+79031112244"
    assert not CustomerChange.objects.exists()


def test_updating_to_another_customers_card_is_card_number_taken(staff):
    CustomerFactory(card_number="C1")
    customer = CustomerFactory(card_number="C2")

    with pytest.raises(CardNumberTaken):
        customer_update(customer=customer, actor=staff, card_number="C1")

    customer.refresh_from_db()
    assert customer.card_number == "C2"
    assert not CustomerChange.objects.exists()


def test_an_empty_card_number_is_no_card(staff):
    customer = CustomerFactory(card_number="C1")
    other = CustomerFactory()

    customer_update(customer=customer, actor=staff, card_number="")
    customer_update(customer=other, actor=staff, card_number="  ")  # two "no cards" do not collide

    assert list(Customer.objects.order_by("pk").values_list("card_number", flat=True)) == [None, None]
    assert changes_of(customer) == [{"card_number": ["C1", None]}]
    assert changes_of(other) == []


def test_a_card_number_is_stored_trimmed_so_that_identify_finds_it(staff):
    customer = CustomerFactory()

    customer_update(customer=customer, actor=staff, card_number=" C 77 ")

    customer.refresh_from_db()
    assert customer.card_number == "C 77"


def test_making_a_retail_customer_b2b_needs_the_kind_before_the_role(staff):
    customer = CustomerFactory()

    with pytest.raises(InvalidCustomerData) as refused:
        customer_update(customer=customer, actor=staff, b2b_role="horeca")
    customer_update(customer=customer, actor=staff, kind="b2b", b2b_role="horeca", company="Cafe")

    assert list(refused.value.fields) == ["b2b_role"]
    customer.refresh_from_db()
    assert (customer.kind, customer.b2b_role, customer.company) == ("b2b", "horeca", "Cafe")


def test_a_b2b_customer_cannot_become_retail_while_it_keeps_its_role(staff):
    customer = B2bCustomerFactory()

    with pytest.raises(InvalidCustomerData):
        customer_update(customer=customer, actor=staff, kind="retail")

    customer.refresh_from_db()
    assert customer.kind == "b2b"


def test_fields_that_are_not_editable_are_refused(staff):
    customer = CustomerFactory()

    with pytest.raises(InvalidCustomerData) as refused:
        customer_update(customer=customer, actor=staff, membership="member", merged_into=None)

    assert sorted(refused.value.fields) == ["membership", "merged_into"]
    assert not CustomerChange.objects.exists()


def test_a_merged_customer_refuses_updates(staff):
    duplicate, survivor = CustomerFactory(name="Old"), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    with pytest.raises(CustomerMerged) as refused:
        customer_update(customer=duplicate, actor=staff, name="New")

    assert refused.value.extra == {"customer_id": duplicate.pk, "merged_into": survivor.pk}
    duplicate.refresh_from_db()
    assert duplicate.name == "Old"


def test_an_anonymised_customer_refuses_updates(staff):
    customer = CustomerFactory()
    customer_anonymise(customer=customer, actor=staff, reason="GDPR request")

    with pytest.raises(CustomerAnonymised):
        customer_update(customer=customer, actor=staff, name="Back")

    customer.refresh_from_db()
    assert customer.name == ""


# --- external ids ---------------------------------------------------------------------------------------


def test_external_id_set_replaces_the_channels_previous_id_and_records_it(site, site_actor):
    customer = CustomerFactory()

    customer_external_id_set(customer=customer, channel=site, external_id="a", actor=site_actor)
    customer_external_id_set(customer=customer, channel=site, external_id="b", actor=site_actor)
    customer_external_id_set(customer=customer, channel=site, external_id="b", actor=site_actor)  # no change

    assert list(ExternalId.objects.values_list("customer", "external_id")) == [(customer.pk, "b")]
    assert changes_of(customer, "external_id") == [{"external_id:site": [None, "a"]}, {"external_id:site": ["a", "b"]}]


def test_external_id_taken_by_another_customer_of_the_channel(site, site_actor):
    owner, customer = CustomerFactory(), CustomerFactory()
    customer_external_id_set(customer=owner, channel=site, external_id="a", actor=site_actor)

    with pytest.raises(ExternalIdTaken) as refused:
        customer_external_id_set(customer=customer, channel=site, external_id="a", actor=site_actor)

    assert refused.value.extra == {"external_id": "a"}
    assert list(ExternalId.objects.values_list("customer", flat=True)) == [owner.pk]
    assert changes_of(customer) == []


def test_a_merged_customer_takes_no_external_id(staff, site, site_actor):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    with pytest.raises(CustomerMerged):
        customer_external_id_set(customer=duplicate, channel=site, external_id="a", actor=site_actor)

    assert not ExternalId.objects.exists()
