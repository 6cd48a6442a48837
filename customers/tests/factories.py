import factory
from django.utils import timezone

from customers.models import Consent, ConsentChannel, Customer, ExternalId
from integrations.models import Store


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"store-{n}")
    name = factory.Sequence(lambda n: f"Showroom {n}")
    city = "Moscow"


class CustomerFactory(factory.django.DjangoModelFactory):
    """A member; ``NonMemberFactory`` for someone only seen on a receipt. Built directly (no welcome bonus):
    tests of joining go through ``customer_join``."""

    class Meta:
        model = Customer

    phone = factory.Sequence(lambda n: f"+7916{n:07d}")
    name = factory.Faker("name")
    membership = Customer.Membership.MEMBER
    joined_at = factory.LazyFunction(timezone.now)


class NonMemberFactory(CustomerFactory):
    membership = Customer.Membership.NON_MEMBER
    joined_at = None


class B2bCustomerFactory(CustomerFactory):
    kind = Customer.Kind.B2B
    company = factory.Faker("company")
    b2b_role = Customer.B2bRole.DESIGNER


class ExternalIdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExternalId

    customer = factory.SubFactory(CustomerFactory)
    channel = factory.SubFactory("integrations.tests.factories.ChannelFactory")
    external_id = factory.Sequence(lambda n: f"ext-{n}")


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    customer = factory.SubFactory(CustomerFactory)
    channel = ConsentChannel.SMS
    granted = True
    source = "api"
    text_version = "2026-01"
    changed_at = factory.LazyFunction(timezone.now)
