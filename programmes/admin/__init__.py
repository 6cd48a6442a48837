"""Admin of programmes and tiers (SPEC F-TIER-1 … 6): programmes with their tiers (and each tier's past terms,
read-only), customers' tiers with the manual assignment, and the read-only tier history and purchase records.

Tier changes go through ``programmes.services``; the history and the purchase records are never edited here.

This package: the programme and tier admins here; the rules (earning and redemption rules, promotions) in ``rules``,
rule sets in ``rule_sets``, the rules' conflicts page in ``conflicts`` and the "try it" cart in ``try_it`` (all
registered by importing ``rules`` and ``rule_sets`` here).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.actors import Actor
from core.exceptions import ApplicationError
from customers.models import Customer
from customers.phones import phone_or_none
from programmes.admin.rule_sets import RuleSetAdmin
from programmes.admin.rules import EarningRuleAdmin, PromotionAdmin, RedemptionRuleAdmin
from programmes.forms import TierAssignForm
from programmes.models import CustomerTier, OperationType, Programme, PurchaseRecord, Tier, TierChange, TierTerms
from programmes.selectors import rules_naming
from programmes.services import tier_assign_manual

__all__ = [
    "CustomerTierAdmin",
    "EarningRuleAdmin",
    "ProgrammeAdmin",
    "PromotionAdmin",
    "PurchaseRecordAdmin",
    "RedemptionRuleAdmin",
    "RuleSetAdmin",
    "TierChangeAdmin",
]

ASSIGN_TEMPLATE = "admin/programmes/customertier/assign_tier.html"
ASSIGN_BATCH_LIMIT = 100


class TierFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        for form in self.deleted_forms:
            rules = rules_naming(form.instance) if form.instance.pk else []
            if rules:
                raise ValidationError(
                    _("The tier %(tier)s is named by rules: %(rules)s. End or change them first.")
                    % {"tier": form.instance, "rules": ", ".join(map(str, rules))}
                )


class TierInline(admin.StackedInline):
    model = Tier
    formset = TierFormSet
    extra = 0
    ordering = ["rank"]
    fieldsets = [
        (None, {"fields": [("code", "name", "rank"), "qualification_threshold"]}),
        (_("Earning and redemption"), {"fields": [("earn_rate_percent", "max_redemption_percent"), "welcome_bonus"]}),
        (
            _("Perks"),
            {
                "fields": [
                    ("reservation_days_bonus", "reservation_item_limit"),
                    ("early_access_hours", "loan_limit_multiplier"),
                    "extra_perks",
                ]
            },
        ),
        (_("Past terms"), {"fields": ["past_terms_table"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["past_terms_table"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tier]:
        return super().get_queryset(request).prefetch_related("past_terms")

    @admin.display(description=_("past terms"))
    def past_terms_table(self, tier: Tier | None) -> str:
        """The earning rate and redemption cap the tier had before each change (kept for "as of" calculations)."""
        if tier is None or tier.pk is None:
            return "—"
        terms: list[TierTerms] = list(tier.past_terms.all())  # prefetched
        if not terms:
            return _("None: the earning rate and the maximum redemption never changed.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} %</td><td>{} %</td></tr>",
            (
                (f"{timezone.localtime(row.valid_until):%Y-%m-%d %H:%M}", row.earn_rate_percent,
                 row.max_redemption_percent)
                for row in reversed(terms)
            ),
        )  # fmt: skip
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("until"),
            _("earning rate"),
            _("maximum redemption"),
            rows,
        )


class ProgrammeForm(forms.ModelForm):
    """The operation types whose points unlock on payment as checkboxes (the model keeps a JSON list), like the
    rules' operation types."""

    unlock_on_payment = forms.MultipleChoiceField(
        label=capfirst(Programme._meta.get_field("unlock_on_payment").verbose_name),
        choices=OperationType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "Orders whose lines are all of the ticked types earn points that become spendable when the order is "
            "paid rather than when it is delivered (e.g. a pawnshop's interest payments). None ticked: on delivery."
        ),
    )

    class Meta:
        model = Programme
        fields = ["unlock_on_payment"]  # the admin adds the others (every field of its page)

    def clean_unlock_on_payment(self) -> list[str]:
        chosen = set(self.cleaned_data["unlock_on_payment"])
        return [value for value, _label in OperationType.choices if value in chosen]  # stable JSON


@admin.register(Programme)
class ProgrammeAdmin(admin.ModelAdmin):
    form = ProgrammeForm
    list_display = [
        "code",
        "name",
        "customer_kind",
        "balance_type",
        "qualification_window_months",
        "downgrade_grace_days",
        "is_active",
    ]
    list_select_related = ["balance_type"]
    inlines = [TierInline]


def _customer_filter(term: str, prefix: str = "customer__") -> Q | None:
    """Exact search by customer id (``42`` or ``#42``) or phone in any format; None when the term is neither."""
    term = term.strip()
    condition = Q()
    matched = False
    if term.removeprefix("#").isdigit() and len(term) <= 18:
        condition |= Q(**{f"{prefix}pk": int(term.removeprefix("#"))})
        matched = True
    phone = phone_or_none(term)
    if phone is not None:
        condition |= Q(**{f"{prefix}phone": phone.as_e164})
        matched = True
    return condition if matched else None


class CustomerSearchMixin:
    search_help_text = _("Customer id or phone number.")
    search_fields = ["customer__phone"]  # shows the search box; the search itself is exact, below

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        if not search_term.strip():
            return queryset, False
        condition = _customer_filter(search_term)
        return (queryset.filter(condition) if condition is not None else queryset.none()), False


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(CustomerTier)
class CustomerTierAdmin(CustomerSearchMixin, admin.ModelAdmin):
    list_display = ["customer", "programme", "tier", "since", "manual", "manual_until", "below_threshold_since"]
    list_select_related = ["customer", "programme", "tier"]
    list_filter = ["programme", "tier", "manual"]
    sortable_by = ["since", "manual_until"]
    show_full_result_count = False
    raw_id_fields = ["customer"]
    actions = ["assign_tier_manually"]
    fields = ["customer", "programme", "tier", "since", "manual", "manual_until", "below_threshold_since"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # customers get a tier row from purchases, the recalculation or the manual assignment

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        assign = path("assign/", self.admin_site.admin_view(self.assign_view), name="programmes_customertier_assign")
        return [assign, *super().get_urls()]

    @admin.action(description=_("Assign a tier manually"), permissions=["change"])
    def assign_tier_manually(self, request: HttpRequest, queryset: QuerySet[CustomerTier]) -> HttpResponse | None:
        rows = list(queryset.select_related("customer", "tier")[: ASSIGN_BATCH_LIMIT + 1])
        if len(rows) > ASSIGN_BATCH_LIMIT:
            self.message_user(
                request,
                _("Select at most %(limit)s customers at once.") % {"limit": ASSIGN_BATCH_LIMIT},
                messages.ERROR,
            )
            return None
        form = TierAssignForm(request.POST if "confirmed" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._assign(request, [row.customer for row in rows], form)
            return None
        return self._page(request, form, rows=rows, action="assign_tier_manually")

    def assign_view(self, request: HttpRequest) -> HttpResponse:
        """Assign a tier to one customer by id, also one without a tier row yet."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        initial = {"customer": request.GET.get("customer")} if request.GET.get("customer", "").isdigit() else {}
        form = TierAssignForm(request.POST or None, initial=initial, with_customer=True)
        if form.is_bound and form.is_valid() and self._assign(request, [form.cleaned_data["customer"]], form):
            return HttpResponseRedirect(reverse("admin:programmes_customertier_changelist"))
        return self._page(request, form)

    def _assign(self, request: HttpRequest, customers: list[Customer], form: TierAssignForm) -> bool:
        actor = Actor(user=request.user)
        done, failed = [], []
        for customer in customers:
            try:
                tier_assign_manual(
                    customer=customer,
                    tier=form.cleaned_data["tier"],
                    actor=actor,
                    reason=form.cleaned_data["reason"],
                    until=form.until,
                )
            except ApplicationError as error:
                failed.append(f"#{customer.pk}: {error.message}")
            else:
                done.append(f"#{customer.pk}")
        if done:
            self.message_user(
                request,
                ngettext(
                    "Tier %(tier)s assigned to %(count)d customer: %(names)s.",
                    "Tier %(tier)s assigned to %(count)d customers: %(names)s.",
                    len(done),
                )
                % {"tier": form.cleaned_data["tier"], "count": len(done), "names": ", ".join(done)},
                messages.SUCCESS,
            )
        if failed:
            self.message_user(request, _("Not assigned: %(errors)s") % {"errors": "; ".join(failed)}, messages.ERROR)
        return not failed

    def _page(self, request: HttpRequest, form: TierAssignForm, **context) -> TemplateResponse:
        return TemplateResponse(
            request,
            ASSIGN_TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "title": _("Assign a tier manually"),
                "opts": self.opts,
                "form": form,
                "adminform": admin.helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}),
                "media": self.media + form.media,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                **context,
            },
        )


@admin.register(TierChange)
class TierChangeAdmin(CustomerSearchMixin, ReadOnlyAdmin):
    list_display = ["created_at", "customer", "programme", "from_tier", "to_tier", "reason", "note", "actor_user"]
    list_select_related = ["customer", "programme", "from_tier", "to_tier", "actor_user"]
    list_filter = ["programme", "reason"]
    sortable_by = ["created_at"]


@admin.register(PurchaseRecord)
class PurchaseRecordAdmin(CustomerSearchMixin, ReadOnlyAdmin):
    list_display = ["occurred_at", "customer", "programme", "amount", "source_type", "source_id"]
    list_select_related = ["customer", "programme"]
    list_filter = ["programme", "source_type"]
    sortable_by = ["occurred_at"]
