import django_filters
from phonenumber_field.formfields import PhoneNumberField

from customers.models import Customer


class PhoneFilter(django_filters.CharFilter):
    field_class = PhoneNumberField


class CustomerFilter(django_filters.FilterSet):
    phone = PhoneFilter(field_name="phone", help_text="Exact phone in any format, e.g. 8 916 123-45-67.")
    membership = django_filters.ChoiceFilter(choices=Customer.Membership.choices)

    class Meta:
        model = Customer
        fields = ["phone", "membership"]
