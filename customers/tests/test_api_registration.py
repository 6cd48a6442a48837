"""SMS registration and email validation through the channel API (SPEC F-ID-2, F-ID-3, F-CMP-1, F-CMP-5)."""

import re
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from core.actors import Actor
from customers.models import Consent, Customer, SmsCode
from customers.services import customer_merge
from customers.services.email import email_validation_token
from customers.tests.factories import CustomerFactory, NonMemberFactory
from points.models import Entry
from points.services import points_accrue

pytestmark = pytest.mark.django_db

PHONE = "+79161234567"
REQUEST_URL = "/api/v1/customers/sms-codes"
CONFIRM_URL = "/api/v1/customers/sms-codes/confirm"
EMAIL_CONFIRM_URL = "/api/v1/customers/email-validation/confirm"


def post(client, url, body=None, *, key=None):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def sent_code(sms_outbox) -> str:
    return re.search(rf"\b(\d{{{settings.SMS_CODE_LENGTH}}})\b", sms_outbox[-1].text).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**settings.SMS_CODE_LENGTH:0{settings.SMS_CODE_LENGTH}d}"


def email_token() -> str:
    return re.search(r"token=(\S+)", mail.outbox[-1].body).group(1)


def account(client, customer_id: int) -> dict:
    response = client.get(f"/api/v1/customers/{customer_id}/account")
    assert response.status_code == 200
    return response.json()


# --- SMS registration ------------------------------------------------------------------------


def test_registration_end_to_end_makes_a_member_with_the_welcome_bonus(api, channel, sms_outbox):
    requested = post(api, REQUEST_URL, {"phone": "8 (916) 123-45-67"})

    assert requested.status_code == 202
    assert set(requested.json()) == {"phone", "expires_at", "resend_after"}
    assert requested.json()["phone"] == PHONE
    assert [message.phone for message in sms_outbox] == [PHONE]

    confirmed = post(
        api,
        CONFIRM_URL,
        {"phone": "89161234567", "code": sent_code(sms_outbox), "accept_marketing": True, "name": "Anna"},
    )

    body = confirmed.json()
    assert confirmed.status_code == 200
    assert body["joined"] is True
    assert (body["customer"]["membership"], body["customer"]["name"], body["customer"]["join_channel"]) == (
        "member",
        "Anna",
        channel.code,
    )
    mine = account(api, body["customer"]["id"])
    assert (mine["balance"]["available"], mine["tier"]) == ("500.00", "basic")  # Basic's welcome bonus
    assert {row["channel"]: (row["granted"], row["source"]) for row in mine["consents"]} == {
        "sms": (True, "registration"),
        "email": (None, None),
        "push": (None, None),
        "phone_call": (None, None),
    }


def test_a_used_code_cannot_register_again(api, sms_outbox):
    post(api, REQUEST_URL, {"phone": PHONE})
    code = sent_code(sms_outbox)
    post(api, CONFIRM_URL, {"phone": PHONE, "code": code})

    again = post(api, CONFIRM_URL, {"phone": PHONE, "code": code})

    assert error(again) == (400, "sms_code_not_requested")


def test_a_wrong_code_counts_down_the_attempts_and_creates_nobody(api, sms_outbox):
    post(api, REQUEST_URL, {"phone": PHONE})
    bad = wrong(sent_code(sms_outbox))

    first = post(api, CONFIRM_URL, {"phone": PHONE, "code": bad})
    second = post(api, CONFIRM_URL, {"phone": PHONE, "code": bad})

    assert error(first) == (400, "sms_code_invalid")
    assert (first.json()["error"]["attempts_left"], second.json()["error"]["attempts_left"]) == (
        settings.SMS_CODE_MAX_ATTEMPTS - 1,
        settings.SMS_CODE_MAX_ATTEMPTS - 2,
    )
    assert not Customer.objects.exists()


def test_too_many_wrong_attempts_refuse_even_the_right_code(api, sms_outbox):
    post(api, REQUEST_URL, {"phone": PHONE})
    code = sent_code(sms_outbox)

    answers = [post(api, CONFIRM_URL, {"phone": PHONE, "code": wrong(code)}) for _ in range(5)]
    right = post(api, CONFIRM_URL, {"phone": PHONE, "code": code})

    assert [error(answer) for answer in answers] == [(400, "sms_code_invalid")] * 4 + [
        (429, "sms_code_attempts_exceeded")
    ]
    assert error(right) == (429, "sms_code_attempts_exceeded")
    assert not Customer.objects.exists()


def test_an_expired_code_is_refused(api, sms_outbox):
    post(api, REQUEST_URL, {"phone": PHONE})
    SmsCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post(api, CONFIRM_URL, {"phone": PHONE, "code": sent_code(sms_outbox)})

    assert error(response) == (400, "sms_code_expired")
    assert not Customer.objects.exists()


def test_a_code_never_requested_is_refused(api):
    assert error(post(api, CONFIRM_URL, {"phone": PHONE, "code": "123456"})) == (400, "sms_code_not_requested")


def test_a_second_code_within_a_minute_is_429_with_retry_after(api, sms_outbox):
    post(api, REQUEST_URL, {"phone": PHONE})

    too_soon = post(api, REQUEST_URL, {"phone": "8 916 123-45-67"})
    SmsCode.objects.update(created_at=timezone.now() - timedelta(seconds=settings.SMS_CODE_RESEND_SECONDS + 1))
    later = post(api, REQUEST_URL, {"phone": PHONE})

    retry_after = too_soon.json()["error"]["retry_after"]
    assert error(too_soon) == (429, "sms_resend_too_soon")
    assert 0 < retry_after <= settings.SMS_CODE_RESEND_SECONDS + 1
    assert too_soon["Retry-After"] == str(retry_after)
    assert later.status_code == 202
    assert len(sms_outbox) == 2


def test_the_daily_limit_per_phone_is_429_with_retry_after(api, sms_outbox):
    for number in range(settings.SMS_CODE_DAILY_LIMIT):
        assert post(api, REQUEST_URL, {"phone": PHONE}).status_code == 202
        SmsCode.objects.update(created_at=timezone.now() - timedelta(minutes=10 * (number + 1)))

    response = post(api, REQUEST_URL, {"phone": PHONE})

    assert error(response) == (429, "sms_daily_limit_reached")
    assert response["Retry-After"] == str(response.json()["error"]["retry_after"])
    assert len(sms_outbox) == settings.SMS_CODE_DAILY_LIMIT


def test_a_code_for_an_invalid_phone_is_400(api, sms_outbox):
    response = post(api, REQUEST_URL, {"phone": "12345"})

    assert error(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == ["phone"]
    assert sms_outbox == []


def test_a_non_member_from_a_receipt_joins_by_sms_and_keeps_its_id(api, sms_outbox):
    created = post(api, "/api/v1/customers", {"phone": "9161234567"}).json()
    points_accrue(
        customer=Customer.objects.get(pk=created["id"]), amount=100, kind="purchase", operation_key="test:receipt:1"
    )
    post(api, REQUEST_URL, {"phone": "+7 916 1234567"})

    confirmed = post(api, CONFIRM_URL, {"phone": "8 (916) 123-45-67", "code": sent_code(sms_outbox)}).json()

    assert (confirmed["customer"]["id"], confirmed["customer"]["membership"], confirmed["joined"]) == (
        created["id"],
        "member",
        True,
    )
    assert Customer.objects.count() == 1
    assert account(api, created["id"])["balance"]["available"] == f"{100 + settings.LOYALTY_WELCOME_BONUS_POINTS}.00"


def test_a_member_confirming_again_is_not_joined_twice(api, sms_outbox):
    member = CustomerFactory(phone=PHONE)
    post(api, REQUEST_URL, {"phone": PHONE})

    confirmed = post(api, CONFIRM_URL, {"phone": PHONE, "code": sent_code(sms_outbox)}).json()

    assert (confirmed["customer"]["id"], confirmed["joined"]) == (member.pk, False)
    assert not Entry.objects.exists()


def test_a_blocked_customer_is_sent_no_code(api, sms_outbox):
    NonMemberFactory(phone=PHONE, membership=Customer.Membership.BLOCKED)

    response = post(api, REQUEST_URL, {"phone": PHONE})

    assert error(response) == (409, "customer_blocked")
    assert sms_outbox == []


def test_registration_with_an_email_sends_its_validation_link(api, sms_outbox):
    post(api, REQUEST_URL, {"phone": PHONE})

    confirmed = post(
        api,
        CONFIRM_URL,
        {"phone": PHONE, "code": sent_code(sms_outbox), "email": "Anna@Example.com", "accept_marketing": True},
    ).json()

    assert confirmed["customer"]["email"] == "anna@example.com"
    assert [message.to for message in mail.outbox] == [["anna@example.com"]]
    assert set(Consent.objects.filter(granted=True).values_list("channel", flat=True)) == {"sms", "email"}


# --- email validation ------------------------------------------------------------------------


def test_email_validation_end_to_end_grants_the_bonus_once(api):
    customer = CustomerFactory(email="")

    requested = post(api, f"/api/v1/customers/{customer.pk}/email-validation", {"email": "Anna@Example.com"})
    token = email_token()
    confirmed = post(api, EMAIL_CONFIRM_URL, {"token": token, "accept_marketing": True})
    again = post(api, EMAIL_CONFIRM_URL, {"token": token})

    assert (requested.status_code, requested.json()) == (202, {"email": "anna@example.com", "sent": True})
    assert token not in requested.content.decode()
    assert [message.to for message in mail.outbox] == [["anna@example.com"]]
    assert confirmed.status_code == 200
    assert (confirmed.json()["id"], confirmed.json()["email_validated"]) == (customer.pk, True)
    assert again.status_code == 200
    mine = account(api, customer.pk)
    assert mine["balance"]["available"] == f"{settings.LOYALTY_EMAIL_BONUS_POINTS}.00"
    assert {row["channel"]: row["granted"] for row in mine["consents"]}["email"] is True
    assert Entry.objects.filter(operation_key=f"email-bonus:{customer.pk}").count() == 1


def test_a_changed_and_revalidated_email_gets_no_second_bonus(api):
    customer = CustomerFactory(email="anna@example.com")
    post(api, f"/api/v1/customers/{customer.pk}/email-validation")
    post(api, EMAIL_CONFIRM_URL, {"token": email_token()})

    post(api, f"/api/v1/customers/{customer.pk}/email-validation", {"email": "anna.p@example.com"})
    revalidated = post(api, EMAIL_CONFIRM_URL, {"token": email_token()})

    assert (revalidated.json()["email"], revalidated.json()["email_validated"]) == ("anna.p@example.com", True)
    assert account(api, customer.pk)["balance"]["available"] == f"{settings.LOYALTY_EMAIL_BONUS_POINTS}.00"


def test_email_validation_without_an_email_is_400_email_missing(api):
    customer = CustomerFactory(email="")

    response = post(api, f"/api/v1/customers/{customer.pk}/email-validation")

    assert error(response) == (400, "email_missing")
    assert mail.outbox == []


def test_email_validation_of_an_unknown_customer_is_404(api):
    assert error(post(api, "/api/v1/customers/999999/email-validation")) == (404, "customer_not_found")


def test_a_link_for_an_old_email_is_stale(api):
    customer = CustomerFactory(email="anna@example.com")
    post(api, f"/api/v1/customers/{customer.pk}/email-validation")
    old = email_token()
    api.patch(
        f"/api/v1/customers/{customer.pk}", {"email": "new@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="e1"
    )

    response = post(api, EMAIL_CONFIRM_URL, {"token": old})

    assert error(response) == (409, "email_token_stale")
    customer.refresh_from_db()
    assert customer.email_validated_at is None
    assert not Entry.objects.exists()


def test_a_forged_or_expired_link_is_refused(api):
    customer = CustomerFactory(email="anna@example.com")
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 3600 * 1000):
        expired = email_validation_token(customer)

    forged = post(api, EMAIL_CONFIRM_URL, {"token": email_validation_token(customer) + "x"})
    old = post(api, EMAIL_CONFIRM_URL, {"token": expired})

    assert error(forged) == (400, "email_token_invalid")
    assert error(old) == (400, "email_token_expired")
    assert not Entry.objects.exists()


def test_email_validation_of_a_merged_customer_with_a_new_email_is_409(api, channel):
    survivor, duplicate = CustomerFactory(), CustomerFactory(email="")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=Actor(channel=channel), reason="same person")

    response = post(api, f"/api/v1/customers/{duplicate.pk}/email-validation", {"email": "anna@example.com"})

    assert error(response) == (409, "customer_merged")
    assert response.json()["error"]["merged_into"] == survivor.pk
    assert mail.outbox == []


def test_email_validation_of_a_merged_customer_with_its_current_email_is_409(api, channel):
    survivor, duplicate = CustomerFactory(email="other@example.com"), CustomerFactory(email="anna@example.com")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=Actor(channel=channel), reason="same person")

    response = post(api, f"/api/v1/customers/{duplicate.pk}/email-validation")

    assert error(response) == (409, "customer_merged")
    assert mail.outbox == []
