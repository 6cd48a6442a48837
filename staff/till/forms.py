"""The till screen's forms: each validates what the seller typed; the views call the services and selectors."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from customers.phones import phone_or_none
from staff.till.selectors import till_product


class StoreForm(forms.Form):
    store = forms.ModelChoiceField(
        queryset=None,
        label=_("Store"),
        widget=forms.Select(attrs={"accesskey": "s"}),
        empty_label=_("— choose the store you work in —"),
        error_messages={"invalid_choice": _("You do not work in this store.")},
    )

    def __init__(self, *args, stores: QuerySet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Phone or card number"),
        max_length=64,
        widget=forms.TextInput(attrs={"accesskey": "c", "autocomplete": "off", "spellcheck": "false"}),
        help_text=_("A phone in any format (8 916 123 45 67, +7 (916) 123-45-67) or the card number."),
    )


class RegisterRequestForm(forms.Form):
    phone = forms.CharField(
        label=_("Phone"),
        max_length=64,
        widget=forms.TextInput(attrs={"accesskey": "r", "autocomplete": "off", "inputmode": "tel"}),
    )

    def clean_phone(self) -> str:
        phone = phone_or_none(self.cleaned_data["phone"])
        if phone is None:
            raise forms.ValidationError(_("This is not a valid phone number."))
        return phone.as_e164


class RegisterConfirmForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the SMS"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    accept_marketing = forms.BooleanField(
        label=_("The customer agrees to receive offers by SMS and email"), required=False
    )


class LineForm(forms.Form):
    """A product scanned or typed by SKU, with the shelf price (the catalogue has no prices) and discount."""

    sku = forms.CharField(
        label=_("SKU"),
        max_length=64,
        widget=forms.TextInput(attrs={"accesskey": "a", "autocomplete": "off", "spellcheck": "false"}),
    )
    quantity = forms.DecimalField(
        label=_("Quantity"),
        max_digits=12,
        decimal_places=3,
        initial=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    price = forms.DecimalField(
        label=_("Shelf price"),
        max_digits=14,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
        error_messages={"required": _("Type the shelf price.")},
    )
    discount_percent = forms.DecimalField(
        label=_("Discount, %"),
        max_digits=5,
        decimal_places=2,
        required=False,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("99.99"))],
    )

    def clean_sku(self) -> str:
        sku = self.cleaned_data["sku"].strip()
        product = till_product(sku=sku)
        if product is None:
            raise forms.ValidationError(_("No product with the SKU %(sku)s in the catalogue.") % {"sku": sku})
        if not product.is_active:
            raise forms.ValidationError(_("The product %(sku)s is not on sale.") % {"sku": sku})
        self.product = product
        return product.sku

    def clean_discount_percent(self) -> Decimal:
        return self.cleaned_data["discount_percent"] or Decimal("0")


class RemoveLineForm(forms.Form):
    index = forms.IntegerField(min_value=0)


class CheckoutForm(forms.Form):
    """The points to spend and, to place the order, the sale's token and the calculation the seller saw."""

    redeem = forms.DecimalField(
        label=_("Points to spend"),
        max_digits=14,
        decimal_places=2,
        required=False,
        widget=forms.NumberInput(attrs={"accesskey": "p", "min": "0", "step": "any"}),
        validators=[MinValueValidator(Decimal("0"))],
    )
    token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)
    calculation = forms.CharField(widget=forms.HiddenInput, required=False, max_length=10_000)

    def clean_redeem(self) -> Decimal:
        return self.cleaned_data["redeem"] or Decimal("0")
