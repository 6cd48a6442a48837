import factory
from django.utils import timezone

from complaints.models import ComplaintCase
from customers.tests.factories import CustomerFactory


class ComplaintCaseFactory(factory.django.DjangoModelFactory):
    """An open case; cases in other states are made through ``complaint_update`` in the tests."""

    class Meta:
        model = ComplaintCase

    customer = factory.SubFactory(CustomerFactory)
    category = ComplaintCase.Category.DELIVERY
    description = "The sofa arrived two weeks late."
    created_at = factory.LazyFunction(timezone.now)
