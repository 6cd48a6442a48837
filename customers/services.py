from django.db import IntegrityError, transaction
from django.utils import timezone
from phonenumbers import PhoneNumber

from customers.exceptions import CustomerExists
from customers.models import Customer


def customer_create(*, phone: PhoneNumber | str, name: str = "", member: bool = False) -> Customer:
    """Create a customer (a non-member unless ``member``). Phones are unique: a second one raises
    ``CustomerExists`` carrying the existing customer's id, and creates nothing."""
    customer = Customer(
        phone=phone,
        name=name,
        membership=Customer.Membership.MEMBER if member else Customer.Membership.NON_MEMBER,
        joined_at=timezone.now() if member else None,
    )
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError:
        existing = Customer.objects.filter(phone=customer.phone).values_list("pk", flat=True).first()
        if existing is None:
            raise
        raise CustomerExists(extra={"customer_id": existing}) from None
    return customer
