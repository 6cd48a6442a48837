"""Admin of rule sets (groups of rules switched on and off together): their rules listed read-only with links, and the
activate / deactivate actions through ``programmes.services.rules``. A set with rules that have taken effect is kept
for the history (deactivate it instead)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.actors import Actor
from programmes.admin.rules import CHANGE_LIST_TEMPLATE, bracket_text, conditions_summary, tool_links, validity_text
from programmes.conflicts import earning_effect, redemption_effect
from programmes.models import EarningRule, RedemptionRule, RuleSet
from programmes.services.rules import CONDITION_M2M, rule_set_activate, rule_set_deactivate, rule_set_delete


class _RuleInline(admin.TabularInline):
    """The set's rules, read-only: each is edited on its own page (through the services)."""

    extra = 0
    show_change_link = True
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related(*CONDITION_M2M)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("conditions"))
    def conditions(self, rule) -> str:
        return conditions_summary(rule)

    @admin.display(description=_("validity"))
    def validity(self, rule) -> str:
        return validity_text(rule)


class EarningRuleInline(_RuleInline):
    model = EarningRule
    fields = readonly_fields = ["name", "priority", "conditions", "effect", "validity"]

    @admin.display(description=_("effect"))
    def effect(self, rule: EarningRule) -> str:
        return earning_effect(rule)


class RedemptionRuleInline(_RuleInline):
    model = RedemptionRule
    fields = readonly_fields = ["name", "bracket", "conditions", "effect", "validity"]

    @admin.display(description=_("shelf discount"))
    def bracket(self, rule: RedemptionRule) -> str:
        return bracket_text(rule)

    @admin.display(description=_("cap"))
    def effect(self, rule: RedemptionRule) -> str:
        return redemption_effect(rule)


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "programme", "is_active", "earning_rules_link", "redemption_rules_link"]
    list_select_related = ["programme"]
    list_filter = ["programme", "is_active"]
    search_fields = ["name", "code"]
    fields = ["programme", "code", "name", "description", "is_active", "add_rule_links"]
    inlines = [EarningRuleInline, RedemptionRuleInline]
    actions = ["activate", "deactivate"]
    change_list_template = CHANGE_LIST_TEMPLATE

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                earning_count=Count("earning_rules", distinct=True),
                redemption_count=Count("redemption_rules", distinct=True),
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # A set's programme and code are fixed once it exists (its rules name the programme's tiers); it is switched
        # on and off by the actions, which say what that means for calculations of the past.
        return ["programme", "code", "is_active", "add_rule_links"] if obj is not None else ["add_rule_links"]

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changelist_view(self, request: HttpRequest, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), **tool_links(request)})

    @admin.display(description=_("earning rules"), ordering="earning_count")
    def earning_rules_link(self, rule_set: RuleSet) -> str:
        url = reverse("admin:programmes_earningrule_changelist")
        return format_html('<a href="{}?rule_set__id__exact={}">{}</a>', url, rule_set.pk, rule_set.earning_count)

    @admin.display(description=_("redemption rules"), ordering="redemption_count")
    def redemption_rules_link(self, rule_set: RuleSet) -> str:
        url = reverse("admin:programmes_redemptionrule_changelist")
        return format_html('<a href="{}?rule_set__id__exact={}">{}</a>', url, rule_set.pk, rule_set.redemption_count)

    @admin.display(description=_("add a rule"))
    def add_rule_links(self, rule_set: RuleSet) -> str:
        if rule_set is None or rule_set.pk is None:
            return "—"
        return format_html(
            '<a href="{}?rule_set={}">{}</a> · <a href="{}?rule_set={}">{}</a>',
            reverse("admin:programmes_earningrule_add"),
            rule_set.pk,
            _("Add an earning rule"),
            reverse("admin:programmes_redemptionrule_add"),
            rule_set.pk,
            _("Add a redemption rule"),
        )

    def has_delete_permission(self, request: HttpRequest, obj: RuleSet | None = None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        if obj is None:
            return True
        now = timezone.now()
        return not (
            obj.earning_rules.filter(valid_from__lte=now).exists()
            or obj.redemption_rules.filter(valid_from__lte=now).exists()
        )

    def delete_model(self, request: HttpRequest, obj: RuleSet) -> None:
        rule_set_delete(rule_set=obj, actor=Actor(user=request.user))

    def _switch(self, request: HttpRequest, queryset: QuerySet[RuleSet], active: bool) -> None:
        service = rule_set_activate if active else rule_set_deactivate
        actor = Actor(user=request.user)
        switched = [rule_set.name for rule_set in queryset if service(rule_set=rule_set, actor=actor)]
        if not switched:
            self.message_user(request, _("Nothing to change."), messages.INFO)
            return
        done = _("Activated: %(names)s.") if active else _("Deactivated: %(names)s.")
        self.message_user(request, done % {"names": ", ".join(switched)}, messages.SUCCESS)
        self.message_user(
            request,
            _(
                "A rule set's switch has no date: calculations “as of” the past now see its rules as %(state)s too. "
                "To stop rules from now on and keep the history, end them instead."
            )
            % {"state": _("active") if active else _("inactive")},
            messages.WARNING,
        )

    @admin.action(description=_("Activate the selected rule sets"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[RuleSet]) -> None:
        self._switch(request, queryset, True)

    @admin.action(description=_("Deactivate the selected rule sets"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[RuleSet]) -> None:
        self._switch(request, queryset, False)
