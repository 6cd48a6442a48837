"""Phone numbers as customers type them (``8 (916) 123-45-67``, ``+7 916 1234567``, ``9161234567``) → E.164."""

from __future__ import annotations

from django.conf import settings
from phonenumber_field.phonenumber import PhoneNumber, to_python

from customers.exceptions import InvalidPhone


def phone_normalise(value: PhoneNumber | str) -> PhoneNumber:
    """The number in E.164, read in ``PHONENUMBER_DEFAULT_REGION`` when typed without a country code, or
    ``InvalidPhone``."""
    phone = (
        to_python(value, region=settings.PHONENUMBER_DEFAULT_REGION) if not isinstance(value, PhoneNumber) else value
    )
    if not isinstance(phone, PhoneNumber) or not phone.is_valid():
        raise InvalidPhone(extra={"phone": str(value)})
    return phone


def phone_or_none(value: str) -> PhoneNumber | None:
    """The normalised number, or None when ``value`` is not a phone (e.g. an admin search for a name)."""
    try:
        return phone_normalise(value)
    except InvalidPhone:
        return None
