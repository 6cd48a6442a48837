"""Apology budgets in the admin, for CRM managers: every save and delete goes through the services (audited)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from complaints.forms import ApologyBudgetForm
from complaints.models import ApologyBudget
from complaints.services import apology_budget_delete, apology_budget_set
from core.actors import Actor


@admin.register(ApologyBudget)
class ApologyBudgetAdmin(admin.ModelAdmin):
    form = ApologyBudgetForm
    list_display = ["holder", "daily_limit", "case_limit", "updated_at"]
    list_select_related = ["group", "user"]
    raw_id_fields = ["user"]
    fieldsets = [
        (
            None,
            {
                "fields": ["group", "user"],
                "description": _(
                    "Exactly one: a group's budget applies to each of its members; a user's own budget wins over "
                    "their groups'; of several groups the most generous applies."
                ),
            },
        ),
        (_("Limits without approval"), {"fields": ["daily_limit", "case_limit"]}),
        (_("Reason"), {"fields": ["change_reason"]}),
    ]

    @admin.display(description=_("for"))
    def holder(self, budget: ApologyBudget) -> str:
        if budget.user_id is not None:
            return _("user %(user)s") % {"user": budget.user}
        return _("group %(group)s") % {"group": budget.group}

    def save_model(self, request: HttpRequest, obj: ApologyBudget, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        saved = apology_budget_set(
            actor=Actor(user=request.user),
            budget=obj if change else None,
            group=data["group"],
            user=data["user"],
            daily_limit=data["daily_limit"],
            case_limit=data["case_limit"],
            reason=data.get("change_reason", ""),
        )
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: ApologyBudget) -> None:
        apology_budget_delete(actor=Actor(user=request.user), budget=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApologyBudget]) -> None:
        for budget in queryset:
            apology_budget_delete(actor=Actor(user=request.user), budget=budget)
