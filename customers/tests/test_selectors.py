"""Identifying a customer by one identifier, through merge redirects."""

import pytest

from customers.exceptions import CustomerNotFound, IdentifierRequired, InvalidPhone
from customers.models import Customer
from customers.selectors import customer_get, customer_identify
from customers.services import customer_create, customer_external_id_set, customer_merge
from customers.tests.factories import CustomerFactory
from integrations.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("typed", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567"])
def test_identify_by_phone_in_any_format(typed):
    wanted = CustomerFactory(phone="+79161234567")
    CustomerFactory(phone="+79161234568")

    assert customer_identify(phone=typed) == wanted


def test_identify_by_card_email_and_the_channels_external_id(site, site_actor):
    wanted = CustomerFactory(card_number="C-1", email="anna@example.com")
    other = CustomerFactory(card_number="C-2", email="boris@example.com")
    customer_external_id_set(customer=wanted, channel=site, external_id="42", actor=site_actor)
    erp = ChannelFactory(code="erp")
    customer_external_id_set(customer=other, channel=erp, external_id="42", actor=site_actor)

    assert customer_identify(card=" C-1 ") == wanted
    assert customer_identify(email=" Anna@Example.com ") == wanted
    assert customer_identify(external_id="42", channel=site) == wanted
    assert customer_identify(external_id="42", channel=erp) == other


@pytest.mark.parametrize(
    "identifiers",
    [{}, {"phone": "+79161234567", "card": "C-1"}, {"email": "", "card": ""}],
    ids=["none", "two", "blank"],
)
def test_identify_needs_exactly_one_identifier(identifiers):
    with pytest.raises(IdentifierRequired):
        customer_identify(**identifiers)


def test_identify_of_nobody_is_not_found_and_a_bad_phone_invalid(site):
    CustomerFactory(phone="+79161234567", card_number="C-1")

    for identifiers in ({"phone": "+79161234568"}, {"card": "C-2"}, {"email": "x@y.z"}, {"external_id": "1"}):
        with pytest.raises(CustomerNotFound):
            customer_identify(channel=site, **identifiers)
    with pytest.raises(InvalidPhone):
        customer_identify(phone="12")


def test_an_external_id_of_another_channel_is_not_found(site, site_actor):
    customer = CustomerFactory()
    customer_external_id_set(customer=customer, channel=site, external_id="42", actor=site_actor)

    with pytest.raises(CustomerNotFound):
        customer_identify(external_id="42", channel=ChannelFactory(code="erp"))


def test_a_merged_duplicates_identifiers_find_the_survivor(staff, site, site_actor):
    survivor = CustomerFactory(card_number="S-1")
    customer_external_id_set(customer=survivor, channel=site, external_id="s", actor=site_actor)
    duplicate = CustomerFactory(phone="+79031112233", card_number="D-1", email="old@example.com")
    customer_external_id_set(customer=duplicate, channel=site, external_id="d", actor=site_actor)
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    # The survivor kept its own card and external id: the duplicate's stay on it as redirects.
    assert customer_identify(phone="8 903 111 22 33") == survivor
    assert customer_identify(card="D-1") == survivor
    assert customer_identify(external_id="d", channel=site) == survivor
    assert customer_identify(email="old@example.com") == survivor
    assert customer_identify(card="S-1") == survivor


def test_a_new_customer_with_a_merged_duplicates_phone_is_found_before_the_redirect(staff):
    # On PostgreSQL NULLs sort last: ordering by merged_into alone found the merged duplicate first.
    duplicate, survivor = CustomerFactory(phone="+79031112233"), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")
    newcomer = customer_create(phone="+79031112233")

    assert customer_identify(phone="+79031112233") == newcomer


def test_a_shared_email_finds_the_newest_active_customer_not_a_redirect(staff):
    older = CustomerFactory(email="family@example.com")
    newest = CustomerFactory(email="family@example.com")
    duplicate = CustomerFactory(email="family@example.com")
    survivor = CustomerFactory(email="survivor@example.com")  # with an email of its own, it keeps it
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    assert customer_identify(email="family@example.com") == newest
    assert older.pk < newest.pk < duplicate.pk < survivor.pk


def test_customer_get_does_not_follow_redirects(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    assert customer_get(customer_id=duplicate.pk).merged_into == survivor
    with pytest.raises(CustomerNotFound):
        customer_get(customer_id=max(Customer.objects.values_list("pk", flat=True)) + 1)
