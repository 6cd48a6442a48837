"""Anonymisation: personal data goes everywhere it was kept, the ledger stays for accounting."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from core.actors import SYSTEM
from customers.exceptions import CustomerNotFound
from customers.models import Consent, ConsentEvent, Customer, CustomerChange, ExternalId, SmsCode
from customers.selectors import customer_identify
from customers.services import (
    consent_set,
    customer_anonymise,
    customer_create,
    customer_external_id_set,
    customer_merge,
    customer_update,
    sms_code_request,
)
from customers.tests.factories import CustomerFactory
from points.exceptions import InsufficientPoints, ReasonRequired
from points.models import Entry
from points.services import points_accrue, points_reconcile, points_redeem
from points.tests.helpers import D, buckets, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
R = "[anonymised]"


def anonymise(customer, staff, **kwargs):
    return customer_anonymise(customer=customer, actor=staff, reason="data subject request", **kwargs)


@pytest.fixture
def anna(site, site_actor, staff):
    """A member with everything personal: profile, card, external id, consents, SMS codes and history."""
    customer = customer_create(
        phone="+79161234567",
        name="Anna Petrova",
        email="anna@example.com",
        birth_date=date(1990, 5, 17),
        gender="female",
        card_number="C-1",
        company="Studio",
        external_id="site-1",
        actor=site_actor,
        now=NOW - timedelta(days=10),
    )
    customer_update(customer=customer, actor=staff, name="Anna P.", reason="typo")
    customer_external_id_set(customer=customer, channel=site, external_id="site-2", actor=site_actor)
    for channel in ("sms", "email"):
        consent_set(customer=customer, channel=channel, granted=True, source="api", actor=site_actor, now=NOW)
    consent_set(customer=customer, channel="push", granted=False, source="api", actor=site_actor, now=NOW)
    sms_code_request(phone="+79161234567", now=NOW)
    points_accrue(customer=customer, amount=120, kind="purchase", operation_key=key("accrue"), now=NOW)
    return customer


def test_personal_fields_are_wiped_and_the_ledger_is_untouched(anna, staff):
    entries = list(Entry.objects.values_list("pk", flat=True))

    result = anonymise(anna, staff, now=NOW)

    anna.refresh_from_db()
    assert result.pk == anna.pk
    assert (anna.phone, anna.email, anna.email_validated_at, anna.name, anna.birth_date) == (None, "", None, "", None)
    assert (anna.gender, anna.card_number, anna.company) == ("", None, "")
    assert (anna.membership, anna.anonymised_at) == (Customer.Membership.ANONYMISED, NOW)
    assert str(anna) == f"Anonymised customer #{anna.pk}"
    assert buckets(anna) == (D(120), D(0), D(0), D(0))
    assert list(Entry.objects.values_list("pk", flat=True)) == entries
    assert points_reconcile() == []


def test_external_ids_and_sms_codes_are_gone(anna, staff):
    sms_code_request(phone="+79031112233", now=NOW)  # someone else's code stays

    anonymise(anna, staff)

    assert not ExternalId.objects.exists()
    assert [str(code.phone) for code in SmsCode.objects.all()] == ["+79031112233"]


def test_personal_values_in_the_history_are_redacted(anna, staff, site):
    anonymise(anna, staff, now=NOW)

    changes = {c.action: c.changes for c in CustomerChange.objects.filter(customer=anna).exclude(action="update")}
    assert changes["create"] == {
        "phone": [None, R],
        "email": [None, R],
        "name": [None, R],
        "birth_date": [None, R],
        "gender": [None, R],
        "card_number": [None, R],
        "company": [None, R],
        "kind": [None, "retail"],
        "language": [None, "ru"],
    }
    assert changes["external_id"] == {"external_id:site": [R, R]}
    assert changes["anonymise"] == {"membership": ["non_member", "anonymised"]}
    update = CustomerChange.objects.get(customer=anna, action="update")
    assert (update.changes, update.reason) == ({"name": [R, R]}, "typo")
    history_text = str(list(CustomerChange.objects.values_list("changes", flat=True)))
    assert all(secret not in history_text for secret in ("Anna", "anna@", "7916", "C-1", "site-1", "site-2"))


def test_consents_are_revoked_and_their_history_kept(anna, staff):
    anonymise(anna, staff, now=NOW)

    assert sorted(Consent.objects.values_list("channel", "granted", "source")) == [
        ("email", False, "anonymisation"),
        ("push", False, "api"),
        ("sms", False, "anonymisation"),
    ]
    assert sorted(ConsentEvent.objects.values_list("channel", "granted", "source")) == [
        ("email", False, "anonymisation"),
        ("email", True, "api"),
        ("push", False, "api"),
        ("sms", False, "anonymisation"),
        ("sms", True, "api"),
    ]


def test_anonymising_again_changes_nothing(anna, staff):
    anonymise(anna, staff, now=NOW)
    changes, events = CustomerChange.objects.count(), ConsentEvent.objects.count()

    again = anonymise(anna, staff, now=NOW + timedelta(days=1))

    assert again.anonymised_at == NOW
    assert (CustomerChange.objects.count(), ConsentEvent.objects.count()) == (changes, events)


def test_duplicates_merged_into_the_customer_are_anonymised_too(anna, staff):
    duplicate = CustomerFactory(phone="+79031112233", name="Anna Old", card_number="D-1")
    survivor_card = Customer.objects.get(pk=anna.pk).card_number
    customer_merge(duplicate=duplicate, survivor=anna, actor=staff, reason="same person")

    anonymise(anna, staff, now=NOW)

    duplicate.refresh_from_db()
    assert (duplicate.phone, duplicate.name, duplicate.card_number, duplicate.membership) == (
        None,
        "",
        None,
        Customer.Membership.ANONYMISED,
    )
    assert duplicate.merged_into_id == anna.pk  # still a redirect, to a nameless record
    assert survivor_card == "C-1"
    with pytest.raises(CustomerNotFound):
        customer_identify(phone="+79031112233")
    assert points_reconcile() == []


@pytest.mark.parametrize(("who", "reason"), [("staff", ""), ("system", "request")])
def test_a_reason_and_a_known_actor_are_required(anna, staff, who, reason):
    with pytest.raises(ReasonRequired):
        customer_anonymise(customer=anna, actor=staff if who == "staff" else SYSTEM, reason=reason)

    anna.refresh_from_db()
    assert (anna.name, anna.membership) == ("Anna P.", Customer.Membership.NON_MEMBER)


def test_an_anonymised_customer_cannot_spend(staff):
    customer = CustomerFactory()
    points_accrue(customer=customer, amount=50, kind="purchase", operation_key=key("accrue"), now=NOW)

    anonymise(customer, staff)
    with pytest.raises(InsufficientPoints):
        points_redeem(customer=customer, amount=10, operation_key=key("redeem"), now=NOW)

    assert buckets(customer) == (D(50), D(0), D(0), D(0))


def test_the_phone_is_free_for_a_new_customer_afterwards(anna, staff):
    anonymise(anna, staff)

    newcomer = customer_create(phone="8 916 123 45 67", card_number="C-1")

    assert customer_identify(phone="+79161234567") == newcomer
    assert customer_identify(card="C-1") == newcomer
