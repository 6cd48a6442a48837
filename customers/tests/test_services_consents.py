"""Marketing consents per channel with their history, and who may be messaged for what."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.exceptions import CustomerAnonymised, CustomerMerged
from customers.models import Consent, ConsentEvent
from customers.selectors import can_message, customer_consent_history, customer_consents
from customers.services import consent_set, customer_anonymise, customer_block, customer_merge
from customers.tests.factories import CustomerFactory, NonMemberFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def history(customer):
    return [
        (e.channel, e.granted, e.source, e.text_version, e.created_at)
        for e in ConsentEvent.objects.filter(customer=customer).order_by("pk")
    ]


def test_every_change_is_an_event_and_repeating_a_decision_writes_nothing(site_actor):
    customer = CustomerFactory()
    later, latest = NOW + timedelta(days=1), NOW + timedelta(days=2)

    def decide(granted, source, version, now):
        return consent_set(
            customer=customer,
            channel="sms",
            granted=granted,
            source=source,
            actor=site_actor,
            text_version=version,
            now=now,
        )

    decide(True, "api", "v1", NOW)
    decide(True, "admin", "v1", later)  # the same decision from elsewhere: nothing new
    decide(False, "api", "v1", later)
    consent = decide(True, "api", "v2", latest)  # granted again, on a new consent text

    assert history(customer) == [
        ("sms", True, "api", "v1", NOW),
        ("sms", False, "api", "v1", later),
        ("sms", True, "api", "v2", latest),
    ]
    assert (consent.granted, consent.source, consent.text_version, consent.changed_at) == (True, "api", "v2", latest)
    assert Consent.objects.filter(customer=customer).count() == 1
    assert {e.actor_channel for e in ConsentEvent.objects.all()} == {site_actor.channel}


def test_channels_are_independent_and_the_current_decision_per_channel_is_listed(staff):
    customer = CustomerFactory()

    consent_set(customer=customer, channel="email", granted=True, source="admin", actor=staff, now=NOW)
    consent_set(customer=customer, channel="push", granted=False, source="admin", actor=staff, now=NOW)

    current = customer_consents(customer=customer)
    assert list(current) == ["sms", "email", "push", "phone_call"]
    assert {channel: c.granted if c else None for channel, c in current.items()} == {
        "sms": None,
        "email": True,
        "push": False,
        "phone_call": None,
    }
    assert ConsentEvent.objects.get(channel="push").actor_user == staff.user


def test_the_consent_history_selector_is_newest_first(staff):
    customer = CustomerFactory()
    for days, granted in ((0, True), (1, False), (2, True)):
        consent_set(
            customer=customer, channel="sms", granted=granted, source="api", actor=staff, now=NOW + timedelta(days)
        )

    assert [(e.granted, e.created_at) for e in customer_consent_history(customer=customer)] == [
        (True, NOW + timedelta(days=2)),
        (False, NOW + timedelta(days=1)),
        (True, NOW),
    ]


def test_a_merged_customer_takes_no_consent(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    with pytest.raises(CustomerMerged):
        consent_set(customer=duplicate, channel="sms", granted=True, source="api", actor=staff)

    assert not ConsentEvent.objects.exists()
    assert not Consent.objects.exists()


def test_an_anonymised_customer_takes_no_consent(staff):
    customer = CustomerFactory()
    customer_anonymise(customer=customer, actor=staff, reason="request")

    with pytest.raises(CustomerAnonymised):
        consent_set(customer=customer, channel="sms", granted=True, source="api", actor=staff)

    assert not Consent.objects.filter(granted=True).exists()


def test_an_unknown_channel_is_refused(staff):
    from customers.exceptions import InvalidCustomerData

    customer = CustomerFactory()

    with pytest.raises(InvalidCustomerData) as refused:
        consent_set(customer=customer, channel="fax", granted=True, source="api", actor=staff)

    assert list(refused.value.fields) == ["channel"]
    assert not ConsentEvent.objects.exists()


# --- can_message --------------------------------------------------------------------------------------------

EVERY_CHANNEL = ("sms", "email", "push", "phone_call")


def messageable(customer, purpose):
    customer.refresh_from_db()
    return {channel: can_message(customer, channel, purpose) for channel in EVERY_CHANNEL}


def granted_everywhere(customer, staff):
    for channel in EVERY_CHANNEL:
        consent_set(customer=customer, channel=channel, granted=True, source="admin", actor=staff, now=NOW)


def test_service_messages_need_only_an_address(staff):
    with_email = CustomerFactory(email="anna@example.com")  # not validated, no consents
    without_email = CustomerFactory(email="")

    assert messageable(with_email, "service") == {"sms": True, "email": True, "push": True, "phone_call": True}
    assert messageable(without_email, "service") == {"sms": True, "email": False, "push": True, "phone_call": True}


def test_marketing_needs_the_consent_of_that_channel(staff):
    customer = CustomerFactory(email="anna@example.com", email_validated_at=NOW)
    consent_set(customer=customer, channel="sms", granted=True, source="admin", actor=staff)
    consent_set(customer=customer, channel="push", granted=True, source="admin", actor=staff)
    consent_set(customer=customer, channel="phone_call", granted=False, source="admin", actor=staff)

    assert messageable(customer, "marketing") == {"sms": True, "email": False, "push": True, "phone_call": False}


def test_email_marketing_needs_a_validated_email_and_the_consent(staff):
    unvalidated = CustomerFactory(email="anna@example.com")
    validated = CustomerFactory(email="boris@example.com", email_validated_at=NOW)
    for customer in (unvalidated, validated):
        consent_set(customer=customer, channel="email", granted=True, source="admin", actor=staff)

    assert (can_message(unvalidated, "email", "marketing"), can_message(validated, "email", "marketing")) == (
        False,
        True,
    )


def test_a_revoked_consent_stops_marketing(staff):
    customer = CustomerFactory()
    consent_set(customer=customer, channel="sms", granted=True, source="admin", actor=staff, now=NOW)
    consent_set(customer=customer, channel="sms", granted=False, source="api", actor=staff, now=NOW)

    assert (can_message(customer, "sms", "marketing"), can_message(customer, "sms", "service")) == (False, True)


def test_a_non_member_with_consent_may_get_marketing(staff):
    customer = NonMemberFactory()
    consent_set(customer=customer, channel="sms", granted=True, source="admin", actor=staff)

    assert can_message(customer, "sms", "marketing") is True


def test_a_blocked_customer_gets_no_marketing_but_service_messages(staff):
    customer = CustomerFactory(email="anna@example.com", email_validated_at=NOW)
    granted_everywhere(customer, staff)
    customer_block(customer=customer, actor=staff, reason="fraud")

    assert messageable(customer, "marketing") == dict.fromkeys(EVERY_CHANNEL, False)
    assert messageable(customer, "service") == dict.fromkeys(EVERY_CHANNEL, True)


@pytest.mark.parametrize("fate", ["anonymised", "merged"])
def test_an_anonymised_or_merged_customer_gets_nothing(staff, fate):
    customer = CustomerFactory(email="anna@example.com", email_validated_at=NOW)
    granted_everywhere(customer, staff)
    if fate == "anonymised":
        customer_anonymise(customer=customer, actor=staff, reason="request")
    else:
        customer_merge(duplicate=customer, survivor=CustomerFactory(), actor=staff, reason="same person")

    assert messageable(customer, "marketing") == dict.fromkeys(EVERY_CHANNEL, False)
    assert messageable(customer, "service") == dict.fromkeys(EVERY_CHANNEL, False)
