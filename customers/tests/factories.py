import factory
from django.utils import timezone

from customers.models import Customer


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    phone = factory.Sequence(lambda n: f"+7916{n:07d}")
    name = factory.Faker("name")
    membership = Customer.Membership.MEMBER
    joined_at = factory.LazyFunction(timezone.now)
