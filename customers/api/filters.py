import django_filters
from phonenumber_field.formfields import PhoneNumberField

from customers.models import Customer


class PhoneFilter(django_filters.CharFilter):
    field_class = PhoneNumberField


class CustomerFilter(django_filters.FilterSet):
    phone = PhoneFilter(field_name="phone", help_text="Exact phone in any format, e.g. 8 916 123-45-67.")
    email = django_filters.CharFilter(method="filter_email", help_text="Exact email, case-insensitive.")
    card_number = django_filters.CharFilter(field_name="card_number", max_length=32, help_text="Exact card number.")
    kind = django_filters.ChoiceFilter(choices=Customer.Kind.choices)
    membership = django_filters.ChoiceFilter(choices=Customer.Membership.choices)

    class Meta:
        model = Customer
        fields = ["phone", "email", "card_number", "kind", "membership"]

    def filter_email(self, queryset, name: str, value: str):
        # Emails are stored lower-case: an exact match keeps the index usable, unlike iexact.
        return queryset.filter(email=value.strip().lower())
