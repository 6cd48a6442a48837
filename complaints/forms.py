"""Staff forms of the complaints desk: the case form, the apology grant form, the approval decision and budgets.

The forms check what the services would refuse so that the operator sees it next to the field; the services stay
the final guard (a concurrent change).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from complaints.exceptions import (
    ApologyAmountInvalid,
    ApologyNoteRequired,
    ApologyReasonRequired,
    ComplaintError,
    ComplaintInvalid,
)
from complaints.models import ApologyBudget, ComplaintCase
from core.exceptions import ApplicationError
from points.models import POINTS


class ComplaintCaseForm(forms.ModelForm):
    class Meta:
        model = ComplaintCase
        fields = ["customer", "order", "category", "description", "status", "resolution"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 4}),
            "resolution": forms.Textarea(attrs={"rows": 3}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        customer = data.get("customer", self.instance.customer if self.instance.customer_id else None)
        order = data.get("order")
        if "order" in self.fields and order is not None and customer is not None and order.customer_id != customer.pk:
            self.add_error("order", _("This order belongs to another customer."))
        status = data.get("status")
        if status in ComplaintCase.CLOSED and not (data.get("resolution") or "").strip():
            self.add_error("resolution", _("A closed case needs a resolution."))
        return data

    def add_service_error(self, error: ComplaintError) -> None:
        if isinstance(error, ComplaintInvalid) and error.fields:
            for field, problems in error.fields.items():
                target = field if field in self.fields else None
                for problem in problems:
                    self.add_error(target, problem["message"])
        else:
            self.add_error(None, error.message)


class ApologyGrantForm(forms.Form):
    """Apology points on a case with a mandatory reason. ``token`` is generated when the form is first shown and
    becomes the operation key, so submitting the same form twice grants once."""

    amount = forms.DecimalField(
        label=_("points"),
        max_digits=POINTS["max_digits"],
        decimal_places=POINTS["decimal_places"],
        min_value=Decimal("0.01"),
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why the customer gets apology points; kept with the grant and in the audit trail."),
    )
    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("token", uuid.uuid4())
        super().__init__(*args, **kwargs)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Apology points need a reason."), code="required")
        return reason

    @property
    def operation_key(self) -> str:
        return f"admin:{self.cleaned_data['token']}"

    def add_service_error(self, error: ApplicationError) -> None:
        if isinstance(error, ApologyAmountInvalid):
            self.add_error("amount", error.message)
        elif isinstance(error, ApologyReasonRequired):
            self.add_error("reason", error.message)
        else:
            self.add_error(None, error.message)


class ApologyDecisionForm(forms.Form):
    """The confirmation of an approval or a rejection; a rejection needs a note for the operator."""

    note = forms.CharField(
        label=_("note"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept with the grant and in the audit trail."),
    )

    def __init__(self, *args: Any, note_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.note_required = note_required
        self.fields["note"].required = note_required

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if self.note_required and not note:
            raise forms.ValidationError(ApologyNoteRequired.default_message, code="required")
        return note


class ApologyBudgetForm(forms.ModelForm):
    change_reason = forms.CharField(
        label=_("reason for the change"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional; kept in the audit trail."),
    )

    class Meta:
        model = ApologyBudget
        fields = ["group", "user", "daily_limit", "case_limit"]
