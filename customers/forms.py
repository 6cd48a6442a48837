"""Staff forms of the customer admin: the profile form and the confirmation forms of the admin actions.

The profile form checks what the services would refuse (an invalid phone, a phone of another active customer,
a taken card, a role on a retail customer, a birth date in the future) so that the manager sees it next to the
field; the services stay the final guard against a concurrent change.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from phonenumber_field.phonenumber import PhoneNumber

from customers.exceptions import InvalidPhone
from customers.models import Customer
from customers.phones import phone_normalise
from integrations.models import Store


class CustomerAdminForm(forms.ModelForm):
    phone = forms.CharField(
        label=capfirst(_("phone")),
        max_length=40,
        help_text=_("Any format: 8 (916) 123-45-67, +7 916 1234567, 9161234567. Stored as +79161234567."),
    )
    change_reason = forms.CharField(
        label=capfirst(_("reason for the change")),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional; kept in the customer's change history."),
    )

    class Meta:
        model = Customer
        fields = [
            "phone",
            "email",
            "name",
            "birth_date",
            "gender",
            "language",
            "card_number",
            "kind",
            "company",
            "b2b_role",
            "registration_store",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "phone" in self.fields and self.instance.phone:
            self.initial["phone"] = self.instance.phone.as_e164
        if "registration_store" in self.fields:
            self.fields["registration_store"].queryset = Store.objects.order_by("name")

    def clean_phone(self) -> PhoneNumber:
        try:
            return phone_normalise(self.cleaned_data["phone"])
        except InvalidPhone as error:
            raise forms.ValidationError(error.message, code=InvalidPhone.code) from None

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_card_number(self) -> str | None:
        return (self.cleaned_data["card_number"] or "").strip() or None

    def clean_birth_date(self):
        birth_date = self.cleaned_data["birth_date"]
        if birth_date is not None and birth_date > timezone.localdate():
            raise forms.ValidationError(_("The birth date is in the future."), code="in_future")
        return birth_date

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        others = Customer.objects.exclude(pk=self.instance.pk) if self.instance.pk else Customer.objects.all()
        phone = data.get("phone")
        if "phone" in self.changed_data and phone is not None:
            owner = others.filter(phone=phone, merged_into__isnull=True).first()
            if owner is not None:
                self.add_error(
                    "phone", _customer_taken(_("A customer with this phone already exists: {customer}."), owner)
                )
        card_number = data.get("card_number")
        if "card_number" in self.changed_data and card_number:
            owner = others.filter(card_number=card_number).first()
            if owner is not None:
                self.add_error(
                    "card_number",
                    _customer_taken(_("This card number belongs to another customer: {customer}."), owner),
                )
        kind = data.get("kind", self.instance.kind)
        if data.get("b2b_role") and kind != Customer.Kind.B2B:
            self.add_error("b2b_role", forms.ValidationError(_("Only B2B customers have a B2B role."), code="retail"))
        return data


def _customer_taken(message: str, owner: Customer) -> forms.ValidationError:
    link = format_html('<a href="{}">{}</a>', reverse("admin:customers_customer_change", args=[owner.pk]), owner)
    return forms.ValidationError(format_html(message, customer=link), code="taken")


class ReasonForm(forms.Form):
    """The confirmation of an admin action: why it is done (kept in the customer's history)."""

    reason = forms.CharField(label=capfirst(_("reason")), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))


class JoinForm(ReasonForm):
    store = forms.ModelChoiceField(
        label=capfirst(_("registration store")),
        queryset=Store.objects.filter(is_active=True).order_by("name"),
        required=False,
        help_text=_("Where the customer joined; leave empty to keep the current one."),
    )


class MergeForm(ReasonForm):
    """Two customers are one person: which record stays. The other becomes a redirect to it."""

    survivor = forms.TypedChoiceField(
        label=capfirst(_("customer that stays")),
        coerce=int,
        widget=forms.RadioSelect,
        help_text=_("The other customer's points, consents, ids and card move to this one."),
    )
    field_order = ["survivor", "reason"]

    def __init__(self, *args: Any, customers: list[Customer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.customers = {customer.pk: customer for customer in customers}
        self.fields["survivor"].choices = [(customer.pk, f"#{customer.pk} {customer}") for customer in customers]

    def pair(self) -> tuple[Customer, Customer]:
        """(survivor, duplicate) as chosen."""
        survivor = self.customers[self.cleaned_data["survivor"]]
        (duplicate,) = (customer for pk, customer in self.customers.items() if pk != survivor.pk)
        return survivor, duplicate
