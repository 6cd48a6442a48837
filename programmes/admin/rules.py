"""Admin of programme rules (SPEC F-EARN-1 … 3, F-RED-1 … 3): earning rules, redemption rules and promotions,
edited by CRM managers (rule sets: ``rule_sets``).

Every write goes through ``programmes.services.rules``, which keeps the history reproducible: a rule that has taken
effect shows its conditions and effect read-only and can only be ended or replaced from now (the "Replace from now"
page takes the new values and creates the replacement carrying them in the same transaction); a rule not yet in
force is edited freely. After a save the conflicts the rule is part of are shown as warnings (``programmes.conflicts``;
the save still happens); the changelists link to the programme-wide conflicts page and the "try it" form.
"""

from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.forms import modelform_factory
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.actors import Actor
from integrations.models import Channel
from programmes.conflicts import earning_effect, promotion_effect, redemption_effect, rule_conflicts
from programmes.exceptions import ProgrammeError
from programmes.forms import EarningRuleForm, PromotionForm, RedemptionRuleForm, RuleForm
from programmes.models import EarningRule, OperationType, Promotion, RedemptionRule
from programmes.services.rules import (
    DESCRIPTIVE_FIELDS,
    rule_create,
    rule_delete,
    rule_end,
    rule_is_effective,
    rule_is_ended,
    rule_is_in_force,
    rule_replace,
    rule_update,
)

CHANGE_LIST_TEMPLATE = "admin/programmes/rules/change_list.html"
CHANGE_FORM_TEMPLATE = "admin/programmes/rules/change_form.html"
FORM_PAGE_TEMPLATE = "admin/programmes/rules/form_page.html"
RULE_VIEW_PERMISSIONS = ("programmes.view_earningrule", "programmes.view_redemptionrule", "programmes.view_promotion")
CONDITIONS = ["tiers", "channel_kinds", "stores", "categories", "new_arrival", "operation_types"]
# A JSON list read-only shows as JSON: the page shows these labels instead (the field stays read-only).
SHOWN_AS = {"channel_kinds": "channel_kind_labels", "operation_types": "operation_type_labels"}


# --- how a rule reads ----------------------------------------------------------------------------------------------


def _moment(value) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"


def _labels(values: list[str], choices) -> str:
    names = dict(choices)
    return ", ".join(str(names.get(value, value)) for value in values)


def conditions_summary(rule) -> str:
    """The rule's conditions in one line (the many-to-many ones prefetched by the caller)."""
    parts = []
    if tiers := [tier.name for tier in rule.tiers.all()]:
        parts.append(_("tiers: %(tiers)s") % {"tiers": ", ".join(tiers)})
    if rule.channel_kinds:
        parts.append(_("channels: %(channels)s") % {"channels": _labels(rule.channel_kinds, Channel.Kind.choices)})
    if stores := [store.name for store in rule.stores.all()]:
        parts.append(_("stores: %(stores)s") % {"stores": ", ".join(stores)})
    if categories := [category.name for category in rule.categories.all()]:
        parts.append(_("categories: %(categories)s") % {"categories": ", ".join(categories)})
    if rule.new_arrival is not None:
        parts.append(_("new arrivals only") if rule.new_arrival else _("no new arrivals"))
    if rule.operation_types:
        parts.append(_("operations: %(types)s") % {"types": _labels(rule.operation_types, OperationType.choices)})
    return "; ".join(str(part) for part in parts) or str(_("every line"))


def validity_text(rule, now=None) -> str:
    now = now or timezone.now()
    until = _moment(rule.valid_until) if rule.valid_until else _("open-ended")
    if not rule_is_effective(rule, now):
        state = _("scheduled")
    elif rule_is_ended(rule, now):
        state = _("ended")
    else:
        state = _("in force")
    return f"{_moment(rule.valid_from)} → {until} ({state})"


class InForceFilter(admin.SimpleListFilter):
    """Applies now: within its dates and in an active rule set (an active promotion)."""

    title = _("in force now")
    parameter_name = "in_force"
    active = Q(rule_set__is_active=True)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        in_force = Q(valid_from__lte=now) & (Q(valid_until__isnull=True) | Q(valid_until__gt=now)) & self.active
        if self.value() == "yes":
            return queryset.filter(in_force)
        if self.value() == "no":
            return queryset.exclude(in_force)
        return queryset


class PromotionInForceFilter(InForceFilter):
    active = Q(is_active=True)


def _conflict_messages(model_admin: admin.ModelAdmin, request: HttpRequest, rule) -> None:
    for conflict in rule_conflicts(rule=rule):
        model_admin.message_user(request, conflict.message, messages.WARNING)


# --- rules -----------------------------------------------------------------------------------------------------------


class RuleAdmin(admin.ModelAdmin):
    """What the three rule admins share; each gives its form, fieldsets and columns."""

    form: type[RuleForm] = RuleForm
    search_fields = ["name"]
    autocomplete_fields = ["stores", "categories"]
    filter_horizontal = ["tiers"]
    change_list_template = CHANGE_LIST_TEMPLATE
    change_form_template = CHANGE_FORM_TEMPLATE
    actions = ["end_now"]
    list_per_page = 50
    show_full_result_count = False
    save_on_top = True
    owner = "rule_set"  # the field that places the rule in a programme; fixed once the rule exists
    list_prefetch = ("tiers", "stores", "categories")

    # --- list ---

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related(*self.list_prefetch)

    @admin.display(description=_("conditions"))
    def conditions(self, rule) -> str:
        return conditions_summary(rule)

    @admin.display(description=_("validity"), ordering="valid_from")
    def validity(self, rule) -> str:
        return validity_text(rule)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a rule that has taken effect is never deleted: one by one
        return actions

    def changelist_view(self, request: HttpRequest, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), **tool_links(request)})

    @admin.action(description=_("End the selected rules now"), permissions=["change"])
    def end_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        at, actor = timezone.now(), Actor(user=request.user)
        ended, skipped = [], []
        for rule in queryset:
            if not rule_is_in_force(rule, at):
                skipped.append(rule.name)
                continue
            try:
                rule_end(rule=rule, actor=actor, at=at)
            except ProgrammeError as error:
                skipped.append(f"{rule.name} ({error.message})")
            else:
                ended.append(rule.name)
        if ended:
            self.message_user(
                request,
                ngettext("%(count)d rule ended: %(names)s.", "%(count)d rules ended: %(names)s.", len(ended))
                % {"count": len(ended), "names": ", ".join(ended)},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                _("Not ended (not in force): %(names)s.") % {"names": ", ".join(skipped)},
                messages.WARNING,
            )

    # --- the rule's page ---

    def fieldsets_of(self, obj) -> list:
        raise NotImplementedError

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = self.fieldsets_of(obj)
        if obj is not None:
            fieldsets = [*fieldsets, (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]})]
        if obj is None or not rule_is_effective(obj, timezone.now()):
            return fieldsets
        shown = []
        for name, options in fieldsets:
            fields = [SHOWN_AS.get(field, field) for field in options["fields"]]
            shown.append((name, {**options, "fields": fields}))
        return shown

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return []
        readonly = ["validity_state", "created_at", "updated_at"]
        now = timezone.now()
        if rule_is_effective(obj, now):
            editable = set(DESCRIPTIVE_FIELDS) if rule_is_ended(obj, now) else {*DESCRIPTIVE_FIELDS, "valid_until"}
            fields = flatten_fieldsets(self.fieldsets_of(obj))
            readonly += [name for name in fields if name not in editable and name not in readonly]
            readonly += list(SHOWN_AS.values())
        return readonly

    @admin.display(description=_("state"))
    def validity_state(self, rule) -> str:
        now = timezone.now()
        if not rule_is_effective(rule, now):
            return _("Scheduled: not yet in force, everything can still change.")
        if rule_is_ended(rule, now):
            return _("Ended: kept as it was for calculations of the past.")
        return _(
            "In force: its conditions and effect are fixed so that past calculations can be reproduced. End it "
            "(valid until), or “Replace from now” to change them from now on."
        )

    @admin.display(description=_("channels"))
    def channel_kind_labels(self, rule) -> str:
        return _labels(rule.channel_kinds, Channel.Kind.choices) or _("every channel")

    @admin.display(description=_("operation types"))
    def operation_type_labels(self, rule) -> str:
        return _labels(rule.operation_types, OperationType.choices) or _("every operation type")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "tiers" and field is not None:
            field.queryset = field.queryset.select_related("programme").order_by("programme__code", "rank")
            field.label_from_instance = lambda tier: f"{tier.programme.name}: {tier.name}"
        return field

    def save_model(self, request: HttpRequest, obj, form: RuleForm, change: bool) -> None:
        actor = Actor(user=request.user)
        if change:
            saved = rule_update(rule=obj, changes=form.rule_changes(), actor=actor, at=form.at)
        else:
            saved = rule_create(model=self.model, values=form.rule_changes(), actor=actor, at=form.at)
        for field in self.model._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db
        _conflict_messages(self, request, saved)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # The conditions were set by the service, with the rule.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (
            obj is None or not rule_is_effective(obj, timezone.now())
        )

    def delete_model(self, request: HttpRequest, obj) -> None:
        rule_delete(rule=obj, actor=Actor(user=request.user))

    def changeform_view(self, request: HttpRequest, object_id=None, form_url: str = "", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ProgrammeError as error:
            # The form runs the services' checks, so only a concurrent change gets here (the rule took effect
            # meanwhile). The admin's transaction was rolled back: nothing was saved.
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = dict(extra_context or {})
        rule = self.get_object(request, unquote(object_id))
        if rule is not None and rule_is_in_force(rule, timezone.now()) and self.has_change_permission(request, rule):
            extra_context["replace_url"] = reverse(self._url_name("replace"), args=[rule.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    # --- replace from now ---

    def _url_name(self, view: str) -> str:
        return f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_replace"
        replace = path("<path:object_id>/replace/", self.admin_site.admin_view(self.replace_view), name=name)
        return [replace, *super().get_urls()]

    def replace_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The rule's fields prefilled; on submit ``rule_replace`` ends the rule now and creates the replacement
        with the values entered, in one transaction."""
        rule = self.get_object(request, unquote(object_id))
        if rule is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, rule):
            raise PermissionDenied
        change_url = reverse(self._url_name("change"), args=[rule.pk])
        if not rule_is_in_force(rule, timezone.now()):
            self.message_user(
                request,
                _("Only a rule in force can be replaced: a rule not yet in force is edited, an ended one is kept."),
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)
        fieldsets = self._replace_fieldsets(rule)
        form_class = modelform_factory(
            self.model,
            form=type(f"Replace{self.form.__name__}", (self.form,), {"replacing": True}),
            fields=[name for name in flatten_fieldsets(fieldsets) if name != self.owner],
            formfield_callback=partial(self.formfield_for_dbfield, request=request),
        )
        form = form_class(request.POST if request.method == "POST" else None, instance=rule)
        if form.is_bound and form.is_valid():
            try:
                new = rule_replace(rule=rule, changes=form.rule_changes(), actor=Actor(user=request.user), at=form.at)
            except ProgrammeError as error:
                form.add_service_error(error)
            else:
                self.log_change(request, rule, [{"changed": {"fields": ["valid_until"]}}])
                self.log_addition(request, new, [{"added": {}}])
                self.message_user(
                    request,
                    _("“%(old)s” ended now; its replacement “%(new)s” is in force from now.")
                    % {"old": rule.name, "new": new.name},
                    messages.SUCCESS,
                )
                _conflict_messages(self, request, new)
                return HttpResponseRedirect(reverse(self._url_name("change"), args=[new.pk]))
        return TemplateResponse(
            request,
            FORM_PAGE_TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "title": _("Replace from now: %(rule)s") % {"rule": rule.name},
                "subtitle": None,
                "intro": _(
                    "On saving, “%(rule)s” ends now and a new rule with the values below starts now, so calculations "
                    "of the past keep the rule as it was."
                )
                % {"rule": rule.name},
                "opts": self.opts,
                "original": rule,
                "change_url": change_url,
                "form": form,
                "adminform": helpers.AdminForm(form, fieldsets, {}, readonly_fields=[self.owner], model_admin=self),
                "media": self.media + form.media,
                "submit_label": _("End it now and start the replacement"),
            },
        )

    def _replace_fieldsets(self, rule) -> list:
        """The rule's fieldsets without its start (the replacement starts now)."""
        fieldsets = []
        for name, options in self.fieldsets_of(rule):
            fields = []
            for entry in options["fields"]:
                names = entry if isinstance(entry, tuple) else (entry,)
                kept = tuple(field for field in names if field not in ("valid_from", "validity_state"))
                if kept:
                    fields.append(kept if len(kept) > 1 else kept[0])
            if fields:
                fieldsets.append((name, {**options, "fields": fields}))
        return fieldsets


VALIDITY_HELP = _(
    "A rule applies from its start (inclusive) until its end (exclusive). Once it has taken effect its conditions and "
    "effect are fixed: end it, or replace it from now."
)


@admin.register(EarningRule)
class EarningRuleAdmin(RuleAdmin):
    form = EarningRuleForm
    list_display = ["name", "rule_set", "conditions", "effect", "validity", "priority"]
    list_select_related = ["rule_set__programme"]
    list_filter = [("rule_set__programme", admin.RelatedOnlyFieldListFilter), "rule_set", "kind", InForceFilter]
    sortable_by = ["name", "priority", "validity"]

    def fieldsets_of(self, obj) -> list:
        return [
            (None, {"fields": ["rule_set", "name", "priority"]}),
            (_("Effect"), {"fields": [("kind", "rate_percent")]}),
            (_("Validity"), {"fields": [*(["validity_state"] if obj else []), ("valid_from", "valid_until")],
                             "description": VALIDITY_HELP}),
            (_("Conditions"), {"fields": CONDITIONS, "description": _("Every condition set must match the line.")}),
            (None, {"fields": ["note"]}),
        ]  # fmt: skip

    @admin.display(description=_("effect"))
    def effect(self, rule: EarningRule) -> str:
        return earning_effect(rule)

    def get_urls(self):
        from programmes.admin.conflicts import conflicts_view
        from programmes.admin.try_it import try_it_view

        wrap = self.admin_site.admin_view
        return [
            path("try/", wrap(partial(try_it_view, self.admin_site)), name="programmes_earningrule_try"),
            path("conflicts/", wrap(partial(conflicts_view, self.admin_site)), name="programmes_rules_conflicts"),
            *super().get_urls(),
        ]


@admin.register(RedemptionRule)
class RedemptionRuleAdmin(RuleAdmin):
    form = RedemptionRuleForm
    list_display = ["name", "rule_set", "bracket", "conditions", "effect", "validity"]
    list_select_related = ["rule_set__programme"]
    list_filter = [("rule_set__programme", admin.RelatedOnlyFieldListFilter), "rule_set", "kind", InForceFilter]
    sortable_by = ["name", "validity"]

    def fieldsets_of(self, obj) -> list:
        return [
            (None, {"fields": ["rule_set", "name"]}),
            (_("Cap"), {"fields": [("kind", "percent")]}),
            (_("Shelf discount bracket"), {"fields": [("discount_from", "discount_to")]}),
            (_("Validity"), {"fields": [*(["validity_state"] if obj else []), ("valid_from", "valid_until")],
                             "description": VALIDITY_HELP}),
            (_("Conditions"), {"fields": CONDITIONS, "description": _("Every condition set must match the line.")}),
            (None, {"fields": ["note"]}),
        ]  # fmt: skip

    @admin.display(description=_("cap"))
    def effect(self, rule: RedemptionRule) -> str:
        return redemption_effect(rule)

    @admin.display(description=_("shelf discount"))
    def bracket(self, rule: RedemptionRule) -> str:
        return bracket_text(rule)


def bracket_text(rule: RedemptionRule) -> str:
    if rule.discount_from is None and rule.discount_to is None:
        return str(_("any"))
    low = f"{rule.discount_from.normalize():f}" if rule.discount_from is not None else "0"
    if rule.discount_to is None:
        return _("from %(low)s%%") % {"low": low}
    return _("%(low)s%% to below %(high)s%%") % {"low": low, "high": f"{rule.discount_to.normalize():f}"}


@admin.register(Promotion)
class PromotionAdmin(RuleAdmin):
    form = PromotionForm
    owner = "programme"
    list_display = ["name", "programme", "conditions", "effect", "validity", "is_active"]
    list_select_related = ["programme"]
    list_filter = ["programme", "is_active", PromotionInForceFilter]
    sortable_by = ["name", "validity"]

    def fieldsets_of(self, obj) -> list:
        return [
            (None, {"fields": ["programme", "name", "is_active"]}),
            (_("Effect"), {"fields": ["multiplier"]}),
            (_("Validity"), {"fields": [*(["validity_state"] if obj else []), ("valid_from", "valid_until")],
                             "description": VALIDITY_HELP}),
            (_("Conditions"), {"fields": CONDITIONS, "description": _("Every condition set must match the line.")}),
            (None, {"fields": ["note"]}),
        ]  # fmt: skip

    @admin.display(description=_("multiplier"))
    def effect(self, promotion: Promotion) -> str:
        return promotion_effect(promotion)


def tool_links(request: HttpRequest) -> dict[str, str]:
    """The links of the rule changelists: the conflicts page and the "try it" form, for who may open them."""
    links = {}
    if any(request.user.has_perm(permission) for permission in RULE_VIEW_PERMISSIONS):
        links["conflicts_url"] = reverse("admin:programmes_rules_conflicts")
    if request.user.has_perm("programmes.view_earningrule"):
        links["try_it_url"] = reverse("admin:programmes_earningrule_try")
    return links
