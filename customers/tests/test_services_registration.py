"""SMS registration through the services: request a code, confirm it, the phone's owner is a member."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from customers.exceptions import (
    CustomerBlocked,
    InvalidCustomerData,
    InvalidPhone,
    SmsCodeAttemptsExceeded,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsCodeNotRequested,
    SmsDailyLimitReached,
    SmsResendTooSoon,
)
from customers.models import Consent, ConsentEvent, Customer, SmsCode
from customers.services import customer_block, sms_code_confirm, sms_code_request
from customers.tests.factories import CustomerFactory, NonMemberFactory, StoreFactory
from points.models import Lot, LotKind
from points.tests.helpers import D, buckets

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
PHONE = "+79161234567"


def code_sent(sms_outbox, index=-1) -> str:
    message = sms_outbox[index]
    assert message.phone == PHONE
    return re.search(r"\b(\d{6})\b", message.text).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def request_code(sms_outbox, *, at=NOW, phone=PHONE, actor=None) -> str:
    sms_code_request(phone=phone, now=at, **({"actor": actor} if actor else {}))
    return code_sent(sms_outbox)


@pytest.mark.smoke
def test_a_new_phone_registers_as_a_member_with_the_welcome_bonus(sms_outbox, site_actor):
    store = StoreFactory(code="msk-1")

    sent = sms_code_request(phone="8 (916) 123-45-67", actor=site_actor, now=NOW)
    registration = sms_code_confirm(
        phone="9161234567", code=code_sent(sms_outbox), actor=site_actor, name=" Anna ", store=store, now=NOW
    )

    assert (sent.phone.as_e164, sent.expires_at, sent.resend_after) == (
        PHONE,
        NOW + timedelta(seconds=300),
        NOW + timedelta(seconds=60),
    )
    assert len(sms_outbox) == 1
    customer = Customer.objects.get()
    assert (registration.customer, registration.joined) == (customer, True)
    assert (customer.phone.as_e164, customer.name, customer.membership, customer.joined_at) == (
        PHONE,
        "Anna",
        Customer.Membership.MEMBER,
        NOW,
    )
    assert (customer.join_channel, customer.registration_store) == (site_actor.channel, store)
    assert list(Lot.objects.values_list("kind", "amount")) == [(LotKind.WELCOME, D(500))]
    assert SmsCode.objects.get().used_at == NOW


def test_an_existing_non_member_joins_keeping_its_record(sms_outbox):
    customer = NonMemberFactory(phone=PHONE, name="")

    registration = sms_code_confirm(
        phone=PHONE, code=request_code(sms_outbox), name="Anna", email="Anna@Example.com", now=NOW
    )

    customer.refresh_from_db()
    assert (registration.customer.pk, registration.joined) == (customer.pk, True)
    assert (customer.membership, customer.name, customer.email) == ("member", "Anna", "anna@example.com")
    assert Customer.objects.count() == 1


def test_registration_keeps_an_existing_name_and_email(sms_outbox):
    customer = NonMemberFactory(phone=PHONE, name="Anna", email="anna@example.com")

    sms_code_confirm(phone=PHONE, code=request_code(sms_outbox), name="Other", email="other@example.com", now=NOW)

    customer.refresh_from_db()
    assert (customer.name, customer.email) == ("Anna", "anna@example.com")


def test_a_wrong_code_counts_attempts_and_five_lock_the_code_even_against_the_right_one(sms_outbox):
    code = request_code(sms_outbox)

    left = []
    for _ in range(4):
        with pytest.raises(SmsCodeInvalid) as refused:
            sms_code_confirm(phone=PHONE, code=wrong(code), now=NOW)
        left.append(refused.value.extra["attempts_left"])
    with pytest.raises(SmsCodeAttemptsExceeded):
        sms_code_confirm(phone=PHONE, code=wrong(code), now=NOW)
    with pytest.raises(SmsCodeAttemptsExceeded):
        sms_code_confirm(phone=PHONE, code=code, now=NOW)

    assert left == [4, 3, 2, 1]
    assert SmsCode.objects.values_list("attempts", "used_at").get() == (5, None)
    assert not Customer.objects.exists()


def test_the_right_code_after_wrong_ones_still_works(sms_outbox):
    code = request_code(sms_outbox)
    with pytest.raises(SmsCodeInvalid):
        sms_code_confirm(phone=PHONE, code=wrong(code), now=NOW)

    registration = sms_code_confirm(phone=PHONE, code=f" {code} ", now=NOW)

    assert registration.joined is True
    assert SmsCode.objects.values_list("attempts", flat=True).get() == 2


def test_a_code_expires_after_its_lifetime(sms_outbox):
    code = request_code(sms_outbox)

    with pytest.raises(SmsCodeExpired):
        sms_code_confirm(phone=PHONE, code=code, now=NOW + timedelta(seconds=300))
    registration_before = sms_code_confirm(phone=PHONE, code=code, now=NOW + timedelta(seconds=299))

    assert registration_before.joined is True


def test_an_expired_code_is_refused_before_it_is_checked(sms_outbox):
    code = request_code(sms_outbox)

    with pytest.raises(SmsCodeExpired):
        sms_code_confirm(phone=PHONE, code=code, now=NOW + timedelta(minutes=6))

    assert SmsCode.objects.values_list("attempts", "used_at").get() == (0, None)
    assert not Customer.objects.exists()


def test_confirming_without_a_code_or_twice_is_not_requested(sms_outbox):
    with pytest.raises(SmsCodeNotRequested):
        sms_code_confirm(phone=PHONE, code="123456", now=NOW)
    code = request_code(sms_outbox)
    sms_code_confirm(phone=PHONE, code=code, now=NOW)

    with pytest.raises(SmsCodeNotRequested):
        sms_code_confirm(phone=PHONE, code=code, now=NOW)


def test_a_code_belongs_to_its_phone(sms_outbox):
    code = request_code(sms_outbox)

    with pytest.raises(SmsCodeNotRequested):
        sms_code_confirm(phone="+79161234568", code=code, now=NOW)


def test_a_resend_within_a_minute_is_refused_with_retry_after(sms_outbox):
    request_code(sms_outbox)

    with pytest.raises(SmsResendTooSoon) as refused:
        sms_code_request(phone=PHONE, now=NOW + timedelta(seconds=10))
    with pytest.raises(SmsResendTooSoon) as refused_later:
        sms_code_request(phone=PHONE, now=NOW + timedelta(seconds=59, milliseconds=500))
    sms_code_request(phone=PHONE, now=NOW + timedelta(seconds=60))

    assert (refused.value.code, refused.value.extra) == ("sms_resend_too_soon", {"retry_after": 50})
    assert refused_later.value.extra == {"retry_after": 1}
    assert len(sms_outbox) == 2
    assert SmsCode.objects.count() == 2


def test_at_most_five_codes_a_day_per_phone(sms_outbox):
    for minute in range(5):
        sms_code_request(phone=PHONE, now=NOW + timedelta(minutes=minute))

    with pytest.raises(SmsDailyLimitReached) as refused:
        sms_code_request(phone=PHONE, now=NOW + timedelta(minutes=5))
    # A day after the first code it leaves the window and one more may be sent.
    sms_code_request(phone=PHONE, now=NOW + timedelta(days=1))

    assert refused.value.extra == {"retry_after": 24 * 3600 - 5 * 60}
    assert len(sms_outbox) == 6


def test_the_daily_limit_is_per_phone(sms_outbox):
    for minute in range(5):
        sms_code_request(phone=PHONE, now=NOW + timedelta(minutes=minute))

    sms_code_request(phone="+79161234568", now=NOW + timedelta(minutes=5))

    assert [message.phone for message in sms_outbox][-1] == "+79161234568"


def test_a_new_code_invalidates_the_previous_one(sms_outbox):
    first = request_code(sms_outbox)
    second = request_code(sms_outbox, at=NOW + timedelta(seconds=60))
    if first == second:
        pytest.skip("the two random codes happen to be equal")

    with pytest.raises(SmsCodeInvalid):
        sms_code_confirm(phone=PHONE, code=first, now=NOW + timedelta(seconds=61))
    registration = sms_code_confirm(phone=PHONE, code=second, now=NOW + timedelta(seconds=62))

    assert registration.joined is True
    assert list(SmsCode.objects.order_by("pk").values_list("attempts", "used_at")) == [
        (0, NOW + timedelta(seconds=60)),  # closed when the second was sent
        (2, NOW + timedelta(seconds=62)),
    ]


def test_codes_are_stored_only_as_a_keyed_hash(sms_outbox):
    code = request_code(sms_outbox)

    row = SmsCode.objects.values().get()
    assert len(code) == settings.SMS_CODE_LENGTH == 6
    assert all(code not in str(value) for value in row.values())
    assert re.fullmatch(r"[0-9a-f]{40,64}", row["code_hash"])


def test_an_invalid_phone_is_refused_before_anything_is_sent(sms_outbox):
    with pytest.raises(InvalidPhone):
        sms_code_request(phone="12345", now=NOW)

    assert sms_outbox == []
    assert not SmsCode.objects.exists()


def test_accept_marketing_records_sms_and_email_consent_with_the_text_version(sms_outbox, mailoutbox, site_actor):
    code = request_code(sms_outbox)

    registration = sms_code_confirm(
        phone=PHONE, code=code, accept_marketing=True, email="anna@example.com", actor=site_actor, now=NOW
    )

    events = ConsentEvent.objects.filter(customer=registration.customer).order_by("channel")
    assert [(e.channel, e.granted, e.source, e.text_version, e.actor_channel, e.created_at) for e in events] == [
        ("email", True, "registration", settings.CONSENT_TEXT_VERSION, site_actor.channel, NOW),
        ("sms", True, "registration", settings.CONSENT_TEXT_VERSION, site_actor.channel, NOW),
    ]
    assert sorted(Consent.objects.values_list("channel", "granted", "source")) == [
        ("email", True, "registration"),
        ("sms", True, "registration"),
    ]
    # The given email is not validated yet: a validation link went out to it.
    assert [message.to for message in mailoutbox] == [["anna@example.com"]]
    assert registration.customer.email_validated_at is None


def test_accept_marketing_without_an_email_records_only_sms(sms_outbox, mailoutbox):
    registration = sms_code_confirm(phone=PHONE, code=request_code(sms_outbox), accept_marketing=True, now=NOW)

    assert list(Consent.objects.filter(customer=registration.customer).values_list("channel", "granted")) == [
        ("sms", True)
    ]
    assert mailoutbox == []


def test_without_accept_marketing_no_consent_is_recorded(sms_outbox):
    sms_code_confirm(phone=PHONE, code=request_code(sms_outbox), email="anna@example.com", now=NOW)

    assert not ConsentEvent.objects.exists()


def test_an_invalid_email_is_refused_before_the_code_is_used_up(sms_outbox):
    code = request_code(sms_outbox)

    with pytest.raises(InvalidCustomerData) as refused:
        sms_code_confirm(phone=PHONE, code=code, email="anna@", now=NOW)
    registration = sms_code_confirm(phone=PHONE, code=code, email="anna@example.com", now=NOW)

    assert list(refused.value.fields) == ["email"]
    assert (registration.joined, registration.customer.email) == (True, "anna@example.com")


def test_a_blocked_customer_cannot_register(sms_outbox, staff):
    customer = NonMemberFactory(phone=PHONE)
    customer_block(customer=customer, actor=staff, reason="fraud")

    with pytest.raises(CustomerBlocked) as refused:
        sms_code_confirm(phone=PHONE, code=request_code(sms_outbox), accept_marketing=True, now=NOW)

    assert refused.value.extra == {"customer_id": customer.pk}
    customer.refresh_from_db()
    assert (customer.membership, customer.joined_at) == (Customer.Membership.BLOCKED, None)
    assert not Lot.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_registering_an_existing_member_again_changes_nothing(sms_outbox):
    first = sms_code_confirm(phone=PHONE, code=request_code(sms_outbox), now=NOW)

    again = sms_code_confirm(
        phone=PHONE, code=request_code(sms_outbox, at=NOW + timedelta(minutes=2)), now=NOW + timedelta(minutes=2)
    )

    assert (again.customer.pk, again.joined) == (first.customer.pk, False)
    assert again.customer.joined_at == NOW
    assert list(Lot.objects.values_list("kind", flat=True)) == [LotKind.WELCOME]
    assert buckets(first.customer) == (D(500), D(0), D(0), D(0))


def test_a_member_created_directly_registers_without_a_welcome_bonus(sms_outbox):
    customer = CustomerFactory(phone=PHONE)

    registration = sms_code_confirm(phone=PHONE, code=request_code(sms_outbox), now=NOW)

    assert (registration.customer.pk, registration.joined) == (customer.pk, False)
    assert not Lot.objects.exists()


# --- races (PostgreSQL, real threads) ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_code_confirmed_five_times_at_once_registers_once(sms_outbox, run_together):
    code = request_code(sms_outbox)

    outcomes = run_together(*[lambda: sms_code_confirm(phone=PHONE, code=code, now=NOW)] * 5)

    registrations = [o for o in outcomes if not isinstance(o, BaseException)]
    assert [r.joined for r in registrations] == [True]
    assert sorted(o.code for o in outcomes if isinstance(o, BaseException)) == ["sms_code_not_requested"] * 4
    assert Customer.objects.count() == 1
    assert Lot.objects.filter(kind=LotKind.WELCOME).count() == 1


@pytest.mark.django_db(transaction=True)
def test_eight_wrong_codes_at_once_count_exactly_five_attempts(sms_outbox, run_together):
    code = request_code(sms_outbox)

    outcomes = run_together(*[lambda: sms_code_confirm(phone=PHONE, code=wrong(code), now=NOW)] * 8)

    assert sorted(o.code for o in outcomes) == ["sms_code_attempts_exceeded"] * 4 + ["sms_code_invalid"] * 4
    assert sorted(o.extra.get("attempts_left", 0) for o in outcomes) == [0, 0, 0, 0, 1, 2, 3, 4]
    assert SmsCode.objects.get().attempts == 5


@pytest.mark.django_db(transaction=True)
def test_five_requests_at_once_send_one_code(sms_outbox, run_together):
    outcomes = run_together(*[lambda: sms_code_request(phone=PHONE, now=NOW)] * 5)

    assert sorted(type(o).__name__ for o in outcomes) == ["SmsCodeSent"] + ["SmsResendTooSoon"] * 4
    assert len(sms_outbox) == 1
    assert SmsCode.objects.count() == 1
