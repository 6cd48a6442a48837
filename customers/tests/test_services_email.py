"""Email validation by a signed token and its bonus: once per customer ever, also under concurrent confirms."""

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core import signing
from django.utils import timezone

from customers.exceptions import (
    CustomerAnonymised,
    CustomerMerged,
    EmailMissing,
    EmailTokenExpired,
    EmailTokenInvalid,
    EmailTokenStale,
)
from customers.models import Consent, ConsentEvent, Customer, CustomerChange
from customers.services import (
    customer_anonymise,
    customer_merge,
    customer_update,
    email_validation_confirm,
    email_validation_request,
)
from customers.tests.factories import CustomerFactory, NonMemberFactory
from points.models import Entry, Lot, LotKind
from points.services import points_reconcile
from points.tests.helpers import D, buckets

NOW = timezone.now().replace(microsecond=0)
MAX_AGE = settings.EMAIL_VALIDATION_MAX_AGE_HOURS * 3600


def email_lots(customer=None):
    lots = Lot.objects.filter(kind=LotKind.EMAIL)
    return lots.filter(account__customer=customer) if customer else lots


def clock_moved(monkeypatch, seconds: float) -> None:
    """The signing module's clock, ``seconds`` ahead (the token's age is measured with it)."""
    real = time.time
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: real() + seconds))


@pytest.mark.django_db
def test_the_emailed_token_validates_the_email_and_grants_the_bonus_once(mailoutbox):
    customer = CustomerFactory(email="anna@example.com")

    token = email_validation_request(customer=customer)
    validated = email_validation_confirm(token=token, now=NOW)

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["anna@example.com"]
    assert token in mailoutbox[0].body
    assert (validated.pk, validated.email_validated_at) == (customer.pk, NOW)
    lot = email_lots().get()
    assert (lot.account.customer_id, lot.amount, lot.restriction) == (customer.pk, D(500), "")
    assert Entry.objects.get().operation_key == f"email-bonus:{customer.pk}"
    assert list(CustomerChange.objects.values_list("action", "changes")) == [
        ("email_validated", {"email_validated_at": [None, NOW.isoformat()]})
    ]


@pytest.mark.django_db
def test_confirming_twice_is_harmless():
    customer = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=customer)
    email_validation_confirm(token=token, now=NOW)

    again = email_validation_confirm(token=token, now=NOW + timedelta(hours=1))

    assert again.email_validated_at == NOW
    assert email_lots().count() == 1
    assert CustomerChange.objects.filter(action="email_validated").count() == 1
    assert buckets(customer) == (D(500), D(0), D(0), D(0))


@pytest.mark.django_db
def test_request_with_an_email_sets_it_lower_case_and_unvalidated(mailoutbox, staff):
    customer = CustomerFactory(email="old@example.com", email_validated_at=NOW)

    email_validation_request(customer=customer, actor=staff, email=" New@Example.COM ")

    customer.refresh_from_db()
    assert (customer.email, customer.email_validated_at) == ("new@example.com", None)
    assert mailoutbox[0].to == ["new@example.com"]


@pytest.mark.django_db
def test_request_without_an_email_is_email_missing_and_sends_nothing(mailoutbox):
    customer = CustomerFactory(email="")

    with pytest.raises(EmailMissing):
        email_validation_request(customer=customer)

    assert mailoutbox == []


@pytest.mark.django_db
def test_request_with_a_blank_email_is_email_missing_and_keeps_the_current_one(staff, mailoutbox):
    customer = CustomerFactory(email="anna@example.com", email_validated_at=NOW)

    with pytest.raises(EmailMissing):
        email_validation_request(customer=customer, actor=staff, email="  ")

    customer.refresh_from_db()
    assert (customer.email, customer.email_validated_at) == ("anna@example.com", NOW)
    assert not CustomerChange.objects.exists()
    assert mailoutbox == []


@pytest.mark.django_db
def test_no_link_is_sent_for_a_merged_or_anonymised_customer(staff, mailoutbox):
    duplicate, survivor = CustomerFactory(email="anna@example.com"), CustomerFactory(email="other@example.com")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")
    anonymised = CustomerFactory(email="boris@example.com")
    customer_anonymise(customer=anonymised, actor=staff, reason="request")

    with pytest.raises(CustomerMerged) as merged:
        email_validation_request(customer=duplicate)
    with pytest.raises(CustomerAnonymised):
        email_validation_request(customer=anonymised)

    assert merged.value.extra == {"customer_id": duplicate.pk, "merged_into": survivor.pk}
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_token_of_a_customer_that_no_longer_exists_is_invalid():
    customer = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=customer)
    customer.delete()

    with pytest.raises(EmailTokenInvalid):
        email_validation_confirm(token=token, now=NOW)


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["", "garbage", "eyJjdXN0b21lciI6MX0:1abc:forged"])
def test_a_forged_or_garbled_token_is_invalid(token):
    CustomerFactory(email="anna@example.com")

    with pytest.raises(EmailTokenInvalid):
        email_validation_confirm(token=token, now=NOW)

    assert not Customer.objects.filter(email_validated_at__isnull=False).exists()


@pytest.mark.django_db
def test_a_tampered_token_is_invalid():
    customer = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=customer)

    with pytest.raises(EmailTokenInvalid):
        email_validation_confirm(token=token[:-1] + ("A" if token[-1] != "A" else "B"), now=NOW)


@pytest.mark.django_db
def test_a_token_older_than_its_max_age_is_expired_and_changes_nothing(monkeypatch):
    customer = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=customer)

    clock_moved(monkeypatch, MAX_AGE + 2)
    with pytest.raises(EmailTokenExpired):
        email_validation_confirm(token=token, now=NOW)

    customer.refresh_from_db()
    assert customer.email_validated_at is None
    assert not Lot.objects.exists()


@pytest.mark.django_db
def test_a_token_just_inside_its_max_age_still_works(monkeypatch):
    customer = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=customer)

    clock_moved(monkeypatch, MAX_AGE - 5)
    email_validation_confirm(token=token, now=NOW)

    customer.refresh_from_db()
    assert customer.email_validated_at == NOW


@pytest.mark.django_db
def test_a_token_for_an_email_since_changed_is_stale(staff):
    customer = CustomerFactory(email="old@example.com")
    token = email_validation_request(customer=customer)
    customer_update(customer=customer, actor=staff, email="new@example.com")

    with pytest.raises(EmailTokenStale):
        email_validation_confirm(token=token, accept_marketing=True, now=NOW)

    customer.refresh_from_db()
    assert customer.email_validated_at is None
    assert not Lot.objects.exists()
    assert not ConsentEvent.objects.exists()


@pytest.mark.django_db
def test_the_bonus_is_once_per_customer_ever_even_for_a_new_email(staff):
    customer = CustomerFactory(email="old@example.com")
    email_validation_confirm(token=email_validation_request(customer=customer), now=NOW)

    later = NOW + timedelta(days=30)
    token = email_validation_request(customer=customer, actor=staff, email="new@example.com")
    validated = email_validation_confirm(token=token, now=later)

    assert (validated.email, validated.email_validated_at) == ("new@example.com", later)
    assert email_lots().count() == 1
    assert buckets(customer) == (D(500), D(0), D(0), D(0))


@pytest.mark.django_db
def test_accept_marketing_records_the_email_consent():
    customer = CustomerFactory(email="anna@example.com")

    email_validation_confirm(token=email_validation_request(customer=customer), accept_marketing=True, now=NOW)

    event = ConsentEvent.objects.get()
    assert (event.channel, event.granted, event.source, event.text_version, event.created_at) == (
        "email",
        True,
        "email_validation",
        settings.CONSENT_TEXT_VERSION,
        NOW,
    )
    assert Consent.objects.values_list("channel", "granted").get() == ("email", True)


@pytest.mark.django_db
def test_a_non_members_email_bonus_is_for_members_only_until_it_joins():
    customer = NonMemberFactory(email="anna@example.com")

    email_validation_confirm(token=email_validation_request(customer=customer), now=NOW)

    assert email_lots().get().restriction == Lot.Restriction.MEMBERS_ONLY


@pytest.mark.django_db
def test_a_survivor_gets_no_bonus_when_its_merged_duplicate_had_it(staff):
    duplicate = CustomerFactory(email="old@example.com")
    email_validation_confirm(token=email_validation_request(customer=duplicate), now=NOW)
    survivor = CustomerFactory(email="anna@example.com")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    validated = email_validation_confirm(token=email_validation_request(customer=survivor), now=NOW)

    assert validated.email_validated_at == NOW
    assert list(Entry.objects.filter(operation_key__startswith="email-bonus:").values_list("operation_key")) == [
        (f"email-bonus:{duplicate.pk}",)
    ]
    assert email_lots(survivor).get().amount == D(500)  # the duplicate's bonus, moved by the merge
    assert buckets(survivor) == (D(500), D(0), D(0), D(0))
    assert points_reconcile() == []


@pytest.mark.django_db
def test_a_link_sent_before_a_merge_validates_the_survivor_that_took_the_email(staff):
    duplicate = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=duplicate)
    survivor = CustomerFactory(email="")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    validated = email_validation_confirm(token=token, now=NOW)

    assert (validated.pk, validated.email, validated.email_validated_at) == (survivor.pk, "anna@example.com", NOW)
    assert email_lots(survivor).count() == 1
    assert Entry.objects.filter(kind=Entry.Kind.ACCRUE).get().operation_key == f"email-bonus:{survivor.pk}"


@pytest.mark.django_db
def test_an_anonymised_customer_cannot_validate(staff):
    customer = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=customer)
    customer_anonymise(customer=customer, actor=staff, reason="request")

    with pytest.raises(CustomerAnonymised):
        email_validation_confirm(token=token, now=NOW)

    assert not Lot.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_confirmations_grant_exactly_one_bonus(run_together):
    customer = CustomerFactory(email="anna@example.com")
    token = email_validation_request(customer=customer)

    outcomes = run_together(*[lambda: email_validation_confirm(token=token, accept_marketing=True, now=NOW)] * 8)

    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert {o.pk for o in outcomes} == {customer.pk}
    assert email_lots().count() == 1
    assert Entry.objects.filter(operation_key=f"email-bonus:{customer.pk}").count() == 1
    assert CustomerChange.objects.filter(action="email_validated").count() == 1
    assert ConsentEvent.objects.filter(channel="email").count() == 1
    assert buckets(customer) == (D(500), D(0), D(0), D(0))
    assert points_reconcile() == []
