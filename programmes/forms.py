"""Admin forms of programmes: the manual tier assignment (SPEC F-TIER-5)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from programmes.models import Tier


class TierChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Tier) -> str:
        return f"{obj.programme.name}: {obj.name}"


class TierAssignForm(forms.Form):
    """Tier, reason and an optional last day for ``tier_assign_manual``; ``with_customer`` adds the customer id
    (the standalone page, for a customer who has no tier row yet)."""

    customer = forms.IntegerField(label=_("customer id"), min_value=1, required=False)
    tier = TierChoiceField(
        label=_("tier"), queryset=Tier.objects.select_related("programme").order_by("programme__code", "rank")
    )
    reason = forms.CharField(label=_("reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)
    last_day = forms.DateField(
        label=_("last day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The manual tier holds through this day; empty: until changed by staff."),
    )

    def __init__(self, *args, with_customer: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if with_customer:
            self.fields["customer"].required = True
        else:
            del self.fields["customer"]

    def clean_customer(self) -> Customer:
        customer = Customer.objects.filter(pk=self.cleaned_data["customer"]).first()
        if customer is None:
            raise forms.ValidationError(_("No customer with this id."))
        return customer

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("This field is required."))
        return reason

    def clean_last_day(self):
        last_day = self.cleaned_data["last_day"]
        if last_day is not None and last_day < timezone.localdate():
            raise forms.ValidationError(_("The last day cannot be in the past."))
        return last_day

    @property
    def until(self) -> datetime | None:
        """The end of the last day in the business timezone (exclusive)."""
        last_day = self.cleaned_data.get("last_day")
        if last_day is None:
            return None
        return timezone.make_aware(datetime.combine(last_day + timedelta(days=1), time.min))
