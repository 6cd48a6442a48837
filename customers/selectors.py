from django.db.models import QuerySet

from customers.exceptions import CustomerNotFound
from customers.models import Customer


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.order_by("-pk")


def customer_get(*, customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise CustomerNotFound()
    return customer
