"""Staff forms that call ledger services (the admin's manual adjustment)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from points.exceptions import InsufficientPoints, InvalidAmount, PointsError, ReasonRequired
from points.models import POINTS, BalanceType

ADJUST_PERMISSION = "points.adjust_points"


class PointsAdjustForm(forms.Form):
    """A signed correction with a mandatory reason. ``token`` is generated when the form is first shown
    and becomes the operation key, so submitting the same form twice adjusts once."""

    amount = forms.DecimalField(
        label=_("amount"),
        max_digits=POINTS["max_digits"],
        decimal_places=POINTS["decimal_places"],
        help_text=_("Positive adds points, negative removes spendable points (soonest-expiring first)."),
    )
    reason = forms.CharField(label=_("reason"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))
    balance_type = forms.ModelChoiceField(
        label=_("balance type"), queryset=BalanceType.objects.order_by("pk"), to_field_name="code", empty_label=None
    )
    expires_at = forms.SplitDateTimeField(
        label=_("expires at"),
        required=False,
        widget=AdminSplitDateTime,
        help_text=_("For added points only. Empty: the lifetime configured for manual points."),
    )
    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("token", uuid.uuid4())
        kwargs["initial"].setdefault("balance_type", settings.POINTS_DEFAULT_BALANCE_TYPE)
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("The amount must not be zero."), code="zero")
        return amount

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError(_("The expiry must be in the future."), code="in_the_past")
        return expires_at

    def clean(self) -> dict:
        data = super().clean()
        amount, expires_at = data.get("amount"), data.get("expires_at")
        if amount is not None and amount < 0 and expires_at is not None:
            self.add_error("expires_at", forms.ValidationError(_("Only added points get an expiry."), code="removal"))
        return data

    @property
    def operation_key(self) -> str:
        return f"admin:{self.cleaned_data['token']}"

    def add_service_error(self, error: PointsError) -> None:
        """Show what the ledger refused next to the field it concerns."""
        if isinstance(error, InsufficientPoints):
            message = _("Not enough spendable points: %(spendable)s can be removed.") % {
                "spendable": error.extra.get("spendable", "0.00")
            }
            self.add_error("amount", message)
        elif isinstance(error, InvalidAmount):
            self.add_error("amount", error.message)
        elif isinstance(error, ReasonRequired):
            self.add_error("reason", error.message)
        else:
            self.add_error(None, error.message)
