"""Email validation by a signed link (F-ID-3) and the one-time bonus for it (F-CMP-5)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.actors import SYSTEM, Actor
from customers.exceptions import EmailMissing, EmailTokenExpired, EmailTokenInvalid, EmailTokenStale
from customers.models import ConsentChannel, ConsentEvent, Customer
from customers.services.consents import consent_set
from customers.services.history import record_change
from customers.services.membership import customer_balance_type
from customers.services.profile import customer_lock, customer_update
from points.models import Entry, LotKind
from points.services import points_accrue

SALT = "customers.email_validation"


def email_validation_token(customer: Customer) -> str:
    return signing.dumps({"customer": customer.pk, "email": customer.email}, salt=SALT, compress=True)


def email_validation_request(*, customer: Customer, actor: Actor = SYSTEM, email: str | None = None) -> str:
    """Send a confirmation link for the customer's email (first setting ``email`` if given; a changed email is
    no longer validated). Returns the token, which the site posts back to confirm. ``email_missing`` if there
    is no email to validate; merged and anonymised customers refuse (``customer_merged``, ``customer_anonymised``)."""
    if email is not None:
        if not email.strip():  # checked first: clearing the email and then refusing left the customer without it
            raise EmailMissing()
        customer = customer_update(customer=customer, actor=actor, email=email)
    else:
        with transaction.atomic():
            # A fresh read, refused like an update (``customer_merged``/``customer_anonymised``): a link sent to a
            # merged duplicate's address would validate nothing, or the survivor's email by accident.
            customer = customer_lock(customer.pk)
    if not customer.email:
        raise EmailMissing()
    token = email_validation_token(customer)
    from customers.tasks import send_validation_email_task

    send_validation_email_task.delay(customer.email, token, customer.language)
    return token


def email_validation_message(token: str, language: str) -> tuple[str, str]:
    link = settings.EMAIL_VALIDATION_LINK.format(token=token)
    with translation.override(language):
        subject = _("Confirm your email")
        hours = settings.EMAIL_VALIDATION_MAX_AGE_HOURS
        body = ngettext(
            "Please confirm this email address for the loyalty programme by opening the link below. "
            "The link is valid for %(hours)d hour.\n\n%(link)s\n\nIf you did not ask for this, ignore this email.",
            "Please confirm this email address for the loyalty programme by opening the link below. "
            "The link is valid for %(hours)d hours.\n\n%(link)s\n\nIf you did not ask for this, ignore this email.",
            hours,
        ) % {"hours": hours, "link": link}
    return subject, body


def email_validation_confirm(
    *, token: str, actor: Actor = SYSTEM, accept_marketing: bool = False, now: datetime | None = None
) -> Customer:
    """Mark the email validated, record email consent if asked and grant the email bonus — once per customer
    ever (also across a changed email and across the customers merged into it). Errors: ``email_token_invalid``,
    ``email_token_expired``, ``email_token_stale`` (the email changed since). Confirming twice is harmless."""
    now = now or timezone.now()
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.EMAIL_VALIDATION_MAX_AGE_HOURS * 3600)
    except signing.SignatureExpired:
        raise EmailTokenExpired() from None
    except signing.BadSignature:
        raise EmailTokenInvalid() from None
    with transaction.atomic():
        try:
            customer = customer_lock(_survivor_id(data["customer"]))
        except Customer.DoesNotExist:  # a genuine link to a record deleted since: not a server error
            raise EmailTokenInvalid() from None
        if customer.email != data["email"]:
            raise EmailTokenStale()
        if customer.email_validated_at is None:
            customer.email_validated_at = now
            customer.save(update_fields=["email_validated_at", "updated_at"])
            record_change(
                customer,
                action="email_validated",
                actor=actor,
                now=now,
                changes={"email_validated_at": [None, now.isoformat()]},
            )
        if accept_marketing:
            consent_set(
                customer=customer,
                channel=ConsentChannel.EMAIL,
                granted=True,
                source=ConsentEvent.Source.EMAIL_VALIDATION,
                text_version=settings.CONSENT_TEXT_VERSION,
                actor=actor,
                now=now,
            )
        _email_bonus(customer, actor, now)
    return customer


def _survivor_id(customer_id: int) -> int:
    """A link sent before a merge validates the survivor's email (the same person)."""
    merged_into = Customer.objects.filter(pk=customer_id).values_list("merged_into", flat=True).first()
    return _survivor_id(merged_into) if merged_into else customer_id


def _email_bonus(customer: Customer, actor: Actor, now: datetime) -> None:
    amount = settings.LOYALTY_EMAIL_BONUS_POINTS
    same_person = [customer.pk, *customer.merged_duplicates.values_list("pk", flat=True)]
    if amount <= 0 or Entry.objects.filter(operation_key__in=[f"email-bonus:{pk}" for pk in same_person]).exists():
        return
    points_accrue(
        customer=customer,
        amount=amount,
        kind=LotKind.EMAIL,
        balance_type=customer_balance_type(customer),
        operation_key=f"email-bonus:{customer.pk}",  # the ledger's unique key makes it once, even in a race
        source_type="customer",
        source_id=str(customer.pk),
        actor=actor,
        reason="validated email",
        now=now,
    )
