"""Registration by a one-time SMS code (F-ID-2): request a code, confirm it, the phone's owner is a member."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from phonenumbers import PhoneNumber

from core.actors import SYSTEM, Actor
from customers.exceptions import (
    CustomerBlocked,
    InvalidCustomerData,
    SmsCodeAttemptsExceeded,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsCodeNotRequested,
    SmsDailyLimitReached,
    SmsResendTooSoon,
)
from customers.models import ConsentChannel, ConsentEvent, Customer, SmsCode
from customers.phones import phone_normalise
from customers.selectors import active_phone_holder
from customers.services.consents import consent_set
from customers.services.email import email_validation_request
from customers.services.membership import customer_join
from customers.services.profile import customer_create, customer_update
from integrations.models import Store


@dataclass(frozen=True)
class SmsCodeSent:
    phone: PhoneNumber
    expires_at: datetime
    resend_after: datetime


@dataclass(frozen=True)
class Registration:
    customer: Customer
    joined: bool  # False: the phone's owner was already a member (a repeat confirmation)


def _code_hash(phone: PhoneNumber, code: str) -> str:
    return salted_hmac("customers.sms_code", f"{phone.as_e164}:{code}").hexdigest()


def sms_code_request(*, phone: PhoneNumber | str, actor: Actor = SYSTEM, now: datetime | None = None) -> SmsCodeSent:
    """Send a fresh registration code to ``phone``; the SMS also offers marketing consent. Throttled: one code
    per ``SMS_CODE_RESEND_SECONDS`` (``sms_resend_too_soon``) and ``SMS_CODE_DAILY_LIMIT`` per 24 hours
    (``sms_daily_limit_reached``), both with ``retry_after`` seconds. A new code replaces the previous ones.
    A blocked customer gets no code (``customer_blocked``)."""
    phone = phone_normalise(phone)
    now = now or timezone.now()
    owner = active_phone_holder(phone)
    if owner is not None and owner.membership == Customer.Membership.BLOCKED:
        raise CustomerBlocked(extra={"customer_id": owner.pk})  # before an SMS is paid for
    with transaction.atomic():
        _phone_lock(phone)
        recent = list(
            SmsCode.objects.select_for_update()
            .filter(phone=phone, created_at__gt=now - timedelta(days=1))
            .order_by("-created_at")
        )
        if recent and recent[0].created_at > now - timedelta(seconds=settings.SMS_CODE_RESEND_SECONDS):
            wait = recent[0].created_at + timedelta(seconds=settings.SMS_CODE_RESEND_SECONDS) - now
            raise SmsResendTooSoon(extra={"retry_after": _seconds(wait)})
        if len(recent) >= settings.SMS_CODE_DAILY_LIMIT:
            wait = recent[-1].created_at + timedelta(days=1) - now
            raise SmsDailyLimitReached(extra={"retry_after": _seconds(wait)})
        SmsCode.objects.filter(phone=phone, used_at__isnull=True).update(used_at=now)  # only the newest code counts
        code = f"{secrets.randbelow(10**settings.SMS_CODE_LENGTH):0{settings.SMS_CODE_LENGTH}d}"
        sms = SmsCode.objects.create(
            phone=phone,
            code_hash=_code_hash(phone, code),
            channel=actor.channel,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.SMS_CODE_TTL_SECONDS),
        )
        # Queued last, not on commit: the message needs nothing from the database, and a code whose row did not
        # commit is merely unusable.
        _send(phone.as_e164, _registration_text(phone, code))
    return SmsCodeSent(
        phone=phone,
        expires_at=sms.expires_at,
        resend_after=now + timedelta(seconds=settings.SMS_CODE_RESEND_SECONDS),
    )


def _phone_lock(phone: PhoneNumber) -> None:
    """Serialise code requests for one phone until the transaction ends. Locking the recent codes is not
    enough: with none yet there is nothing to lock, and simultaneous first requests all passed the throttle
    (each sent an SMS). A transaction-scoped advisory lock on PostgreSQL; SQLite serialises writers itself."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"customers.sms_code:{phone.as_e164}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])


def _seconds(wait: timedelta) -> int:
    """Whole seconds to wait, rounded up (at least 1): waiting exactly that long is enough. The former
    ``int(s) + 1`` asked a second too many whenever the wait was a whole number of seconds."""
    return max(1, math.ceil(wait.total_seconds()))


def sms_code_confirm(
    *,
    phone: PhoneNumber | str,
    code: str,
    actor: Actor = SYSTEM,
    accept_marketing: bool = False,
    name: str = "",
    email: str = "",
    store: Store | None = None,
    now: datetime | None = None,
) -> Registration:
    """Check the code and make the phone's owner a member: the existing customer (a non-member from a
    receipt joins, with the welcome bonus) or a new one. ``accept_marketing`` records SMS consent (and email
    consent, with ``email``) with the consent text version the SMS carried. A given email is stored if the
    customer has none and a validation link is sent to it.

    Errors: ``sms_code_not_requested``, ``sms_code_expired``, ``sms_code_invalid`` (with ``attempts_left``;
    the failed attempt is counted), ``sms_code_attempts_exceeded`` after ``SMS_CODE_MAX_ATTEMPTS``."""
    phone = phone_normalise(phone)
    email = email.strip().lower()
    _check_email(email)
    now = now or timezone.now()
    with transaction.atomic():
        sms = (
            SmsCode.objects.select_for_update()
            .filter(phone=phone, used_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if sms is None:
            raise SmsCodeNotRequested()
        if sms.expires_at <= now:
            raise SmsCodeExpired()
        if sms.attempts >= settings.SMS_CODE_MAX_ATTEMPTS:
            raise SmsCodeAttemptsExceeded()
        correct = constant_time_compare(sms.code_hash, _code_hash(phone, str(code).strip()))
        sms.attempts += 1
        if correct:
            sms.used_at = now
        sms.save(update_fields=["attempts", "used_at"])
    if not correct:  # raised after the commit, so the attempt counts
        left = settings.SMS_CODE_MAX_ATTEMPTS - sms.attempts
        if left <= 0:
            raise SmsCodeAttemptsExceeded()
        raise SmsCodeInvalid(extra={"attempts_left": left})
    return _register(phone, actor, accept_marketing, name.strip(), email, store, now)


def _check_email(email: str) -> None:
    """Before the code is checked: a code used up by a registration that then fails on a typo in the email
    would cost the customer a new SMS and the resend wait."""
    if not email:
        return
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidCustomerData(
            fields={"email": [{"code": "invalid", "message": "Enter a valid email address."}]}
        ) from None


def _register(phone, actor, accept_marketing, name, email, store, now) -> Registration:
    with transaction.atomic():
        # Only an active holder: a merged duplicate's phone may have been recycled to someone else, who must
        # not be let into the survivor's account by proving they own it.
        customer = active_phone_holder(phone)
        if customer is None:
            customer = customer_create(phone=phone, name=name, email=email, store=store, actor=actor, now=now)
        else:
            if customer.membership == Customer.Membership.BLOCKED:
                raise CustomerBlocked(extra={"customer_id": customer.pk})
            fill = {"name": name} if name and not customer.name else {}
            if email and not customer.email:
                fill["email"] = email
            if fill:
                customer = customer_update(customer=customer, actor=actor, now=now, **fill)
        customer, joined = customer_join(
            customer=customer, actor=actor, store=store, reason="SMS registration", now=now
        )
        if accept_marketing:
            channels = [ConsentChannel.SMS] + ([ConsentChannel.EMAIL] if customer.email else [])
            for channel in channels:
                consent_set(
                    customer=customer,
                    channel=channel,
                    granted=True,
                    source=ConsentEvent.Source.REGISTRATION,
                    text_version=settings.CONSENT_TEXT_VERSION,
                    actor=actor,
                    now=now,
                )
        if email and customer.email == email and not customer.email_validated:
            email_validation_request(customer=customer, actor=actor)
    return Registration(customer=customer, joined=joined)


def _registration_text(phone: PhoneNumber, code: str) -> str:
    customer = Customer.objects.filter(phone=phone, merged_into__isnull=True).only("language").first()
    with translation.override(customer.language if customer else settings.LANGUAGE_CODE):
        return _(
            "Your code: %(code)s. By entering it you join the loyalty programme; tick the box to also get our "
            "offers by SMS and email."
        ) % {"code": code}


def _send(phone: str, text: str) -> None:
    from integrations.tasks import send_sms_task

    send_sms_task.delay(phone, text)
