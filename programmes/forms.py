"""Admin forms of programmes: the manual tier assignment (SPEC F-TIER-5), the rules and the "try it" cart."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from customers.exceptions import CustomerNotFound
from customers.models import Customer
from customers.phones import phone_or_none
from customers.selectors import customer_identify
from integrations.models import Channel, Store
from programmes.calculator import MAX_LINES, CartLine
from programmes.exceptions import ProgrammeError
from programmes.models import EarningRule, OperationType, Promotion, RedemptionRule, Tier
from programmes.services.rules import rule_check, rule_field_names, rule_replace_check


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


# --- rules (SPEC F-EARN, F-RED): the admin's forms save through programmes.services.rules --------------------------

# A start or end typed as "now" reaches the server a little later: within this margin before the form was checked it
# means the moment of the check (the rule then starts, or ends, when saved).
NOW_MARGIN = timedelta(minutes=10)


def _ordered(values: list[str], choices) -> list[str]:
    """Chosen values in the order of the choices (stable JSON, whatever the order they were ticked in)."""
    chosen = set(values)
    return [value for value, _label in choices if value in chosen]


class RuleForm(forms.ModelForm):
    """Base of the earning rule, redemption rule and promotion forms: channels and operation types as checkboxes
    (the model keeps JSON lists), an empty start meaning "when saved", and the services' history checks
    (``rule_check``, or ``rule_replace_check`` on the replace page) shown on the fields. The admin then saves with
    ``rule_create`` / ``rule_update`` / ``rule_replace`` at ``self.at``."""

    channel_kinds = forms.MultipleChoiceField(
        label=capfirst(_("channels")),
        choices=Channel.Kind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Kinds of sales channel. None ticked: every channel."),
    )
    operation_types = forms.MultipleChoiceField(
        label=capfirst(_("operation types")),
        choices=OperationType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every operation type."),
    )
    replacing = False  # True on the "replace from now" page

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at = timezone.now()
        start = self.fields.get("valid_from")
        if start is not None and self.instance.pk is None:
            start.required = False
            start.help_text = _("Empty: from the moment it is saved. A rule cannot start in the past.")

    def clean_channel_kinds(self) -> list[str]:
        return _ordered(self.cleaned_data["channel_kinds"], Channel.Kind.choices)

    def clean_operation_types(self) -> list[str]:
        return _ordered(self.cleaned_data["operation_types"], OperationType.choices)

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in ("valid_from", "valid_until"):
            value = cleaned.get(name)
            if value is not None and self.at - NOW_MARGIN <= value < self.at:
                cleaned[name] = self.at
        if "valid_from" in self.fields and cleaned.get("valid_from") is None and "valid_from" not in self.errors:
            cleaned["valid_from"] = self.at
        if self.replacing and not self.has_changed():
            raise forms.ValidationError(_("Nothing was changed: the replacement would be the same rule."))
        if not self.errors:
            self._check_history(cleaned)
        return cleaned

    def _check_history(self, cleaned: dict) -> None:
        try:
            if self.replacing:
                rule_replace_check(rule=self.instance, changes=self.rule_changes(), at=self.at)
            else:
                rule = self.instance if self.instance.pk is not None else None
                rule_check(rule=rule, model=self._meta.model, changes=self.rule_changes(), at=self.at)
        except ProgrammeError as error:
            self.add_service_error(error)

    def rule_changes(self) -> dict:
        """The cleaned values of the rule's fields this form edits, as the services take them."""
        names = set(rule_field_names(self._meta.model)) & set(self.fields)
        return {name: self.cleaned_data[name] for name in names if name in self.cleaned_data}

    def add_service_error(self, error: ProgrammeError) -> None:
        """A service's refusal on the fields it names (on the form when the field is not editable here)."""
        if not error.fields:
            self.add_error(None, error.message)
            return
        for name, items in error.fields.items():
            messages = [item["message"] for item in items]
            if name in self.fields:
                self.add_error(name, messages)
                continue
            try:
                label = capfirst(self._meta.model._meta.get_field(name).verbose_name)
            except FieldDoesNotExist:
                label = None
            self.add_error(None, [f"{label}: {message}" if label else message for message in messages])


CONDITION_FIELDS = ["tiers", "channel_kinds", "stores", "categories", "new_arrival", "operation_types"]
VALIDITY_FIELDS = ["valid_from", "valid_until"]


class EarningRuleForm(RuleForm):
    class Meta:
        model = EarningRule
        fields = ["rule_set", "name", "priority", "kind", "rate_percent", *VALIDITY_FIELDS, *CONDITION_FIELDS, "note"]


class RedemptionRuleForm(RuleForm):
    class Meta:
        model = RedemptionRule
        fields = [
            "rule_set",
            "name",
            "kind",
            "percent",
            "discount_from",
            "discount_to",
            *VALIDITY_FIELDS,
            *CONDITION_FIELDS,
            "note",
        ]


class PromotionForm(RuleForm):
    class Meta:
        model = Promotion
        fields = ["programme", "name", "is_active", "multiplier", *VALIDITY_FIELDS, *CONDITION_FIELDS, "note"]


# --- "try it": a sample cart for programmes.calculator.cart_calculate ---------------------------------------------

LINE_FORMAT = "sku;quantity;price;discount_percent[;category;operation_type]"
FIRST_ORDER_CHOICES = [("auto", _("as recorded")), ("yes", _("yes")), ("no", _("no"))]


def _number(text: str) -> Decimal | None:
    """A number as people type it: spaces between thousands, a decimal comma or point. None if it is not one."""
    cleaned = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


class TryItForm(forms.Form):
    """A sample cart: who, where, when, and the lines, one a row (``LINE_FORMAT``). ``lines`` cleans to
    ``CartLine``s; ``rows`` gives each line's row number in the text, to name rows in the calculator's errors."""

    customer = forms.CharField(
        label=_("customer"),
        required=False,
        max_length=40,
        help_text=_("Id (42 or #42) or phone number. Empty: an anonymous cart (earning preview only)."),
    )
    channel_kind = forms.ChoiceField(label=_("channel"), choices=[("", "—"), *Channel.Kind.choices], required=False)
    store = forms.ModelChoiceField(label=_("store"), queryset=Store.objects.order_by("name"), required=False)
    moment = forms.SplitDateTimeField(
        label=_("moment"),
        required=False,
        widget=AdminSplitDateTime,
        help_text=_('Empty: now. A past moment recalculates the cart "as of" then, with the rules and tiers of then.'),
    )
    spendable_balance = forms.DecimalField(
        label=_("spendable balance"),
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=2,
        help_text=_("Empty: the customer's current spendable balance."),
    )
    redeem = forms.DecimalField(
        label=_("points to spend"), required=False, min_value=0, max_digits=14, decimal_places=2
    )
    first_order = forms.ChoiceField(
        label=_("first order"), choices=FIRST_ORDER_CHOICES, initial="auto", widget=forms.RadioSelect
    )
    lines = forms.CharField(
        label=_("lines"),
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false"}),
        help_text=_(
            "One line per row: %(format)s. The category and operation type (purchase, loan_interest, paid_service) "
            "count only for a SKU the catalogue does not know. Example: SOFA-OSLO-3;1;89990;20"
        )
        % {"format": LINE_FORMAT},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[int] = []

    def clean_customer(self) -> Customer | None:
        term = self.cleaned_data["customer"].strip()
        if not term:
            return None
        digits = term.removeprefix("#")
        if digits.isdigit() and len(digits) <= 18:
            customer = Customer.objects.filter(pk=int(digits)).first()
            if customer is not None or term.startswith("#"):
                return self._found(customer)
        phone = phone_or_none(term)
        if phone is None:
            raise forms.ValidationError(_("Enter a customer id or a phone number."))
        try:
            return customer_identify(phone=phone)
        except CustomerNotFound:
            raise forms.ValidationError(_("No customer with this id or phone number.")) from None

    @staticmethod
    def _found(customer: Customer | None) -> Customer:
        if customer is None:
            raise forms.ValidationError(_("No customer with this id or phone number."))
        return customer

    def clean_first_order(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.cleaned_data["first_order"])

    def clean_lines(self) -> list[CartLine]:
        lines, errors, self.rows = [], [], []
        for number, row in enumerate(self.cleaned_data["lines"].splitlines(), start=1):
            if not row.strip() or row.lstrip().startswith("#"):
                continue
            line, problems = _cart_line(row)
            errors.extend(_("Row %(row)d: %(problem)s") % {"row": number, "problem": problem} for problem in problems)
            if line is not None:
                lines.append(line)
                self.rows.append(number)
        if errors:
            raise forms.ValidationError(errors)
        if not lines:
            raise forms.ValidationError(_("Enter at least one line."))
        if len(lines) > MAX_LINES:
            raise forms.ValidationError(_("At most %(max)d lines.") % {"max": MAX_LINES})
        return lines

    def row_of(self, index: int) -> int:
        return self.rows[index] if 0 <= index < len(self.rows) else index + 1


def _cart_line(row: str) -> tuple[CartLine | None, list[str]]:
    values = [value.strip() for value in row.split(";")]
    if not 4 <= len(values) <= 6:
        return None, [
            _("expected 4 to 6 values separated by “;” (%(format)s), got %(count)d.")
            % {"format": LINE_FORMAT, "count": len(values)}
        ]
    values += [""] * (6 - len(values))
    sku, quantity, price, discount, category, operation_type = values
    problems = []
    if not sku:
        problems.append(_("the SKU is missing."))
    numbers = {}
    for name, label, text in (
        ("quantity", _("quantity"), quantity),
        ("price", _("price"), price),
        ("discount", _("discount"), discount or "0"),
    ):
        numbers[name] = _number(text)
        if numbers[name] is None:
            problems.append(_("the %(field)s “%(value)s” is not a number.") % {"field": label, "value": text})
    if operation_type and operation_type not in OperationType.values:
        problems.append(
            _("unknown operation type “%(value)s” (%(choices)s).")
            % {"value": operation_type, "choices": ", ".join(OperationType.values)}
        )
    if problems:
        return None, problems
    line = CartLine(
        sku=sku,
        quantity=numbers["quantity"],
        price=numbers["price"],
        discount_percent=numbers["discount"],
        operation_type=operation_type or OperationType.PURCHASE,
        category=category or None,
    )
    return line, []
