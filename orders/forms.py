"""Staff forms of the order admin: deliver, cancel or return lines, and attach an anonymous order to a customer.

Each form carries a ``token`` generated when it is first shown; it becomes the service's operation key, so a form
submitted twice changes the order once. What the services refuse is shown on the field it concerns
(``add_service_error``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError
from customers.exceptions import CustomerError
from customers.models import Customer
from customers.selectors import customer_identify
from orders.exceptions import ReasonRequired
from orders.models import QUANTITY
from orders.services import LineRequest


def operation_key(token: uuid.UUID) -> str:
    """The services' operation key of a form's submission."""
    return f"admin:orders:{token}"


def quantity_text(quantity: Decimal) -> str:
    """4.000 as 4, 10.000 as 10 (not 1E+1), 2.500 as 2.5."""
    return f"{quantity.normalize():f}"


@dataclass(frozen=True)
class LineChoice:
    """An order line (all its parts in the status the action takes) that the form offers."""

    line_number: int
    sku: str
    name: str
    available: Decimal


class StaffOperationForm(forms.Form):
    """A reason and the one-submission token every staff action on an order takes."""

    reason = forms.CharField(label=capfirst(_("reason")), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))
    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("token", uuid.uuid4())
        super().__init__(*args, **kwargs)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("This field is required."), code="required")
        return reason

    @property
    def operation_key(self) -> str:
        return operation_key(self.cleaned_data["token"])

    def add_service_error(self, error: ApplicationError) -> None:
        """Show what a service refused next to the field it concerns, else above the form."""
        if isinstance(error, ReasonRequired) and "reason" in self.fields:
            self.add_error("reason", error.message)
            return
        self.add_error(None, error.message)
        for name, problems in error.fields.items():
            for problem in problems:
                self.add_error(None, f"{name}: {problem.get('message', '')}")


class LinesForm(StaffOperationForm):
    """Lines to deliver, cancel or return: a tick per line and, optionally, a part of its quantity (empty: all of
    it). ``lines`` are the order's lines the action can take, read when the form is shown and again when it is
    submitted."""

    def __init__(self, *args, lines: list[LineChoice], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.choices = {choice.line_number: choice for choice in lines}
        for choice in lines:
            label = f"{choice.line_number}. {choice.sku}" + (f" {choice.name}" if choice.name else "")
            self.fields[f"line_{choice.line_number}"] = forms.BooleanField(label=label, required=False)
            self.fields[f"quantity_{choice.line_number}"] = forms.DecimalField(
                label=capfirst(_("quantity")),
                required=False,
                min_value=Decimal("0.001"),
                max_value=choice.available,
                max_digits=QUANTITY["max_digits"],
                decimal_places=QUANTITY["decimal_places"],
                help_text=_("Empty: all %(available)s.") % {"available": quantity_text(choice.available)},
            )
        # The reason and the token after the lines.
        self.order_fields([*self.line_field_names(), *self.extra_field_names(), "reason", "token"])

    def line_field_names(self) -> list[str]:
        return [name for number in self.choices for name in (f"line_{number}", f"quantity_{number}")]

    def extra_field_names(self) -> list[str]:
        return []

    def line_rows(self) -> list[tuple[str, str]]:
        """The fieldset rows: each line's tick and quantity side by side."""
        return [(f"line_{number}", f"quantity_{number}") for number in self.choices]

    def clean(self) -> dict:
        data = super().clean()
        requests = []
        for number in self.choices:
            quantity = data.get(f"quantity_{number}")
            if data.get(f"line_{number}") or quantity is not None:  # a typed quantity chooses the line too
                requests.append(LineRequest(line_number=number, quantity=quantity))
        self.requests = requests
        if not requests and not self.errors:
            raise forms.ValidationError(_("Choose at least one line."), code="no_lines")
        return data

    def add_service_error(self, error: ApplicationError) -> None:
        number = error.extra.get("line_number")
        if number in self.choices:
            available = error.extra.get("available")
            message = error.message
            if available is not None:
                message = f"{message} ({_('available')}: {quantity_text(Decimal(available))})"
            self.add_error(f"quantity_{number}", message)
            return
        super().add_service_error(error)


class DeliverForm(LinesForm):
    number = forms.CharField(
        label=capfirst(_("delivery number")),
        max_length=64,
        required=False,
        help_text=_("Empty: the order's number and the delivery's count, e.g. 1042/2."),
    )
    delivered_at = forms.SplitDateTimeField(
        label=capfirst(_("delivered at")),
        widget=AdminSplitDateTime,
        help_text=_("When the goods reached the customer."),
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        # Filled in when the form is first shown: a second submission of it is the same delivery, not a conflict.
        kwargs["initial"].setdefault("delivered_at", timezone.localtime().replace(microsecond=0))
        super().__init__(*args, **kwargs)

    def extra_field_names(self) -> list[str]:
        return ["number", "delivered_at"]

    def clean_number(self) -> str:
        return self.cleaned_data["number"].strip()

    def clean_delivered_at(self) -> datetime:
        delivered_at = self.cleaned_data["delivered_at"]
        if delivered_at > timezone.now():
            raise forms.ValidationError(_("A delivery cannot be in the future."), code="future")
        return delivered_at

    def add_service_error(self, error: ApplicationError) -> None:
        if error.code == "order_exists":
            self.add_error("number", _("Another order or delivery of this channel has this number."))
            return
        super().add_service_error(error)


class AttachCustomerForm(StaffOperationForm):
    """The customer an anonymous order goes to, by phone or card number."""

    phone = forms.CharField(label=capfirst(_("phone")), max_length=32, required=False)
    card = forms.CharField(label=capfirst(_("card number")), max_length=32, required=False)

    field_order = ["phone", "card", "reason", "token"]

    def clean(self) -> dict:
        data = super().clean()
        phone, card = data.get("phone", "").strip(), data.get("card", "").strip()
        if bool(phone) == bool(card):
            raise forms.ValidationError(_("Give either a phone or a card number."), code="identifier")
        try:
            self.customer: Customer = customer_identify(phone=phone) if phone else customer_identify(card=card)
        except CustomerError as error:
            self.add_error("phone" if phone else "card", error.message)
        return data
