"""Creating customers and changing their profile (F-ID-1, F-ID-4, F-ID-6)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from phonenumbers import PhoneNumber

from core.actors import SYSTEM, Actor
from customers.exceptions import (
    CardNumberTaken,
    CustomerAnonymised,
    CustomerExists,
    CustomerMerged,
    ExternalIdTaken,
    InvalidCustomerData,
)
from customers.models import Customer, ExternalId
from customers.phones import phone_normalise
from customers.services.history import diff, record_change, snapshot
from integrations.models import Channel, Store

EDITABLE_FIELDS = (
    "phone",
    "email",
    "name",
    "birth_date",
    "gender",
    "card_number",
    "kind",
    "company",
    "b2b_role",
    "language",
    "registration_store",
)


def customer_create(
    *,
    phone: PhoneNumber | str,
    name: str = "",
    email: str = "",
    birth_date: date | None = None,
    gender: str = "",
    card_number: str | None = None,
    kind: str = Customer.Kind.RETAIL,
    company: str = "",
    b2b_role: str = "",
    language: str = "ru",
    store: Store | None = None,
    external_id: str = "",
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> Customer:
    """Record a customer — a non-member (F-ID-4); joining is ``customer_join``. A phone already on an active
    customer raises ``CustomerExists`` carrying that customer's id, a taken card or external id their own
    errors; nothing is created then (a merged duplicate's phone is free: carriers recycle phones).
    ``external_id`` is the customer's id in the acting channel's system."""
    now = now or timezone.now()
    customer = Customer(
        phone=phone_normalise(phone),
        name=name.strip(),
        email=email.strip().lower(),
        birth_date=birth_date,
        gender=gender,
        card_number=_card(card_number),
        kind=kind,
        company=company.strip(),
        b2b_role=b2b_role,
        language=language,
        registration_store=store,
        join_channel=actor.channel,
    )
    _validate(customer)
    try:
        with transaction.atomic():
            customer.save()
            if external_id:
                _external_id_set(customer, actor.channel, external_id)
            record_change(customer, action="create", actor=actor, now=now, changes=_created(customer))
    except IntegrityError as error:
        _raise_taken(customer, error, channel=actor.channel, external_id=external_id)
        raise
    return customer


def customer_update(
    *,
    customer: Customer,
    actor: Actor,
    reason: str = "",
    external_id: str | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> Customer:
    """Change profile fields (``EDITABLE_FIELDS``) and, with ``external_id``, the customer's id in the acting
    channel's system — all or nothing; the history records each field's before and after. A new email is no
    longer validated. Locks the customer; a repeat with the same values changes nothing."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidCustomerData(
            fields={name: [{"code": "not_editable", "message": "Not editable."}] for name in unknown}
        )
    now = now or timezone.now()
    with transaction.atomic():
        locked = customer_lock(customer.pk)
        before = snapshot(locked, list(fields))
        for name, value in fields.items():
            if name == "phone":
                value = phone_normalise(value)
            elif name == "email":
                value = (value or "").strip().lower()
            elif name == "card_number":
                value = _card(value)
            elif isinstance(value, str):
                value = value.strip()
            setattr(locked, name, value)
        changes = diff(before, snapshot(locked, list(fields)))
        if "email" in changes and locked.email_validated_at is not None:
            changes["email_validated_at"] = [locked.email_validated_at.isoformat(), None]
            locked.email_validated_at = None
        if changes:
            _validate(locked)
            try:
                with transaction.atomic():
                    locked.save()
            except IntegrityError as error:
                _raise_taken(locked, error)
                raise
            record_change(locked, action="update", actor=actor, now=now, changes=changes, reason=reason)
        if external_id is not None:
            customer_external_id_set(customer=locked, channel=actor.channel, external_id=external_id, actor=actor)
    return locked


def customer_external_id_set(*, customer: Customer, channel: Channel, external_id: str, actor: Actor) -> ExternalId:
    """Link the customer to its id in ``channel``'s system (replacing the previous one). ``ExternalIdTaken`` if
    the channel already uses that id for another customer."""
    now = timezone.now()
    with transaction.atomic():
        locked = customer_lock(customer.pk)
        current = ExternalId.objects.filter(customer=locked, channel=channel).first()
        if current is not None and current.external_id == external_id:
            return current
        try:
            with transaction.atomic():
                linked = _external_id_set(locked, channel, external_id)
        except IntegrityError:
            raise ExternalIdTaken(extra={"external_id": external_id}) from None
        record_change(
            locked,
            action="external_id",
            actor=actor,
            now=now,
            changes={f"external_id:{channel.code}": [current.external_id if current else None, external_id]},
        )
        return linked


def customer_lock(customer_id: int) -> Customer:
    """The customer row, locked for the transaction; merged and anonymised customers cannot change."""
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    if customer.merged_into_id is not None:
        raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
    if customer.membership == Customer.Membership.ANONYMISED:
        raise CustomerAnonymised(extra={"customer_id": customer.pk})
    return customer


def _external_id_set(customer: Customer, channel: Channel | None, external_id: str) -> ExternalId:
    if channel is None:
        raise InvalidCustomerData("An external id needs the channel it belongs to.")
    linked, _ = ExternalId.objects.update_or_create(
        customer=customer, channel=channel, defaults={"external_id": external_id}
    )
    return linked


def _card(value: str | None) -> str | None:
    """Trimmed, as ``customer_identify`` looks it up; blank is no card (NULL, so blanks never collide)."""
    return (value or "").strip() or None


# Choice fields the database does not constrain (or constrains with an opaque IntegrityError).
CHOICES = {
    "kind": Customer.Kind.values,
    "b2b_role": Customer.B2bRole.values,
    "gender": Customer.Gender.values,
    "language": [code for code, _ in settings.LANGUAGES],
}


def _validate(customer: Customer) -> None:
    errors: dict[str, list[dict[str, str]]] = {}
    for name, allowed in CHOICES.items():
        if getattr(customer, name) not in allowed:
            errors[name] = [{"code": "invalid_choice", "message": f"Choose one of: {', '.join(map(str, allowed))}."}]
    if customer.kind != Customer.Kind.B2B and customer.b2b_role and "b2b_role" not in errors:
        errors["b2b_role"] = [{"code": "retail_has_no_role", "message": "Only B2B customers have a B2B role."}]
    if customer.birth_date is not None and customer.birth_date > timezone.localdate():
        errors["birth_date"] = [{"code": "in_future", "message": "The birth date is in the future."}]
    if customer.email:
        try:
            validate_email(customer.email)
        except ValidationError:
            errors["email"] = [{"code": "invalid", "message": "Enter a valid email address."}]
    if errors:
        raise InvalidCustomerData(fields=errors)


def _raise_taken(
    customer: Customer, error: IntegrityError, *, channel: Channel | None = None, external_id: str = ""
) -> None:
    """Turn a unique violation into the error naming what is taken (and by whom). Any other integrity error
    is left to the caller to re-raise: it is a bug, not a taken identifier to report to the channel."""
    active = Customer.objects.filter(merged_into__isnull=True).exclude(pk=customer.pk)
    owner = active.filter(phone=customer.phone).values_list("pk", flat=True).first()
    if owner is not None:
        raise CustomerExists(extra={"customer_id": owner}) from error
    if (
        customer.card_number
        and Customer.objects.filter(card_number=customer.card_number).exclude(pk=customer.pk).exists()
    ):
        raise CardNumberTaken(extra={"card_number": customer.card_number}) from error
    if external_id and ExternalId.objects.filter(channel=channel, external_id=external_id).exists():
        raise ExternalIdTaken(extra={"external_id": external_id}) from error


def _created(customer: Customer) -> dict[str, list[Any]]:
    fields = [
        name for name in EDITABLE_FIELDS if getattr(customer, Customer._meta.get_field(name).attname) not in ("", None)
    ]
    return {name: [None, value] for name, value in snapshot(customer, fields).items()}
