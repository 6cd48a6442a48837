"""Complaint cases in the admin, and the case's "Issue apology points" page (issue 7, the complaints desk)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from complaints.exceptions import ComplaintError
from complaints.forms import ApologyGrantForm, ComplaintCaseForm
from complaints.models import ApologyGrant, ComplaintCase
from complaints.selectors import apology_allowance
from complaints.services import (
    ISSUE_PERMISSION,
    apology_grant,
    complaint_open,
    complaint_update,
)
from core.actors import Actor
from core.admin import EstimatedCountPaginator
from core.exceptions import ApplicationError
from customers.admin.common import customer_ids_with_phone, customer_link
from customers.phones import phone_or_none

EDITABLE = ["category", "description", "status", "resolution"]


class ApologyGrantInline(admin.TabularInline):
    """The case's grants, read-only: they change through the grant form and the approval queue only."""

    model = ApologyGrant
    fields = ["created_at", "amount", "state", "reason", "requested_by", "decided_by", "decided_at", "decision_note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at", "-pk"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApologyGrant]:
        return super().get_queryset(request).select_related("requested_by", "decided_by")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ComplaintCase)
class ComplaintCaseAdmin(admin.ModelAdmin):
    form = ComplaintCaseForm
    list_display = ["case", "created_at", "customer_link", "order", "category", "status", "created_by", "closed_at"]
    list_select_related = ["customer", "order", "created_by"]
    list_filter = ["status", "category", ("created_at", admin.DateFieldListFilter)]
    # Shown as the search box; ``get_search_results`` does the searching, through indexes.
    search_fields = ["=id"]
    search_help_text = _("Customer's phone in any format, or the case number (#12).")
    autocomplete_fields = ["customer"]
    raw_id_fields = ["order"]
    inlines = [ApologyGrantInline]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    sortable_by = ["created_at"]
    show_facets = admin.ShowFacets.NEVER
    ordering = ["-created_at"]
    list_per_page = 50
    change_form_template = "admin/complaints/complaintcase/change_form.html"

    # --- list ---

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[ComplaintCase], search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(pk__in=[])
        number = term.removeprefix("#")
        if number.isdigit() and len(number) <= 18:
            condition |= Q(pk=int(number))
        phone = phone_or_none(term)
        if phone is not None:
            condition |= Q(customer_id__in=customer_ids_with_phone(phone.as_e164))
        return queryset.filter(condition), False

    @admin.display(description=_("case"), ordering="pk")
    def case(self, case: ComplaintCase) -> str:
        return f"#{case.pk}"

    @admin.display(description=_("customer"))
    def customer_link(self, case: ComplaintCase) -> str:
        return customer_link(case.customer)

    # --- the case page ---

    def get_queryset(self, request: HttpRequest) -> QuerySet[ComplaintCase]:
        return super().get_queryset(request).select_related("customer", "order", "created_by")

    def get_inlines(self, request: HttpRequest, obj: ComplaintCase | None) -> list:
        return [] if obj is None else self.inlines

    def get_fields(self, request: HttpRequest, obj: ComplaintCase | None = None) -> list[str]:
        if obj is None:
            return ["customer", "order", "category", "description"]
        return ["customer_link", "order", *EDITABLE, "created_by", "created_at", "closed_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ComplaintCase | None = None) -> list[str]:
        if obj is None:
            return []
        return ["customer_link", "order", "created_by", "created_at", "closed_at"]

    def has_delete_permission(self, request: HttpRequest, obj: ComplaintCase | None = None) -> bool:
        return False  # a case with grants is part of the points' history; close it instead

    def save_model(self, request: HttpRequest, obj: ComplaintCase, form: forms.ModelForm, change: bool) -> None:
        actor = Actor(user=request.user)
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in EDITABLE}
            saved = complaint_update(case=obj, actor=actor, **changes) if changes else obj
        else:
            saved = complaint_open(
                customer=data["customer"],
                order=data.get("order"),
                category=data["category"],
                description=data["description"],
                actor=actor,
            )
        for field in ComplaintCase._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def changeform_view(self, request: HttpRequest, object_id=None, form_url: str = "", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ComplaintError as error:
            # The form checks what the services check; only a concurrent change gets here. Nothing was saved.
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_issue_apology": request.user.has_perm(ISSUE_PERMISSION),
            "issue_apology_url": reverse("admin:complaints_complaintcase_issue_apology", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- issue apology points ---

    def get_urls(self):
        issue = path(
            "<path:object_id>/issue-apology/",
            self.admin_site.admin_view(self.issue_apology_view),
            name="complaints_complaintcase_issue_apology",
        )
        return [issue, *super().get_urls()]

    def issue_apology_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Apology points on the case: issued at once within the operator's budget, otherwise sent for a CRM
        manager's approval. The page shows what is left of the operator's budget today and of the case's."""
        if not request.user.has_perm(ISSUE_PERMISSION):
            raise PermissionDenied
        case = self.get_object(request, unquote(object_id))
        if case is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse("admin:complaints_complaintcase_change", args=[case.pk])
        if case.is_closed:
            self.message_user(request, _("The case is closed: no apology points can be granted on it."), messages.ERROR)
            return HttpResponseRedirect(change_url)

        form = ApologyGrantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = apology_grant(
                    case=case,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=Actor(user=request.user),
                    operation_key=form.operation_key,
                )
            except ApplicationError as error:
                form.add_service_error(error)
            else:
                amount = outcome.grant.amount
                if outcome.replayed:
                    self.message_user(request, _("This grant was already recorded."), messages.WARNING)
                elif outcome.issued:
                    self.message_user(
                        request, _("%(amount)s apology points issued.") % {"amount": amount}, messages.SUCCESS
                    )
                else:
                    self.message_user(
                        request,
                        _(
                            "%(amount)s apology points are above your budget: sent for approval. They are awaiting "
                            "approval by a CRM manager."
                        )
                        % {"amount": amount},
                        messages.WARNING,
                    )
                return HttpResponseRedirect(change_url)

        return TemplateResponse(
            request,
            "admin/complaints/complaintcase/issue_apology.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Issue apology points: %(case)s") % {"case": case},
                "subtitle": None,
                "opts": self.opts,
                "original": case,
                "customer": customer_link(case.customer),
                "change_url": change_url,
                "form": form,
                "adminform": admin.helpers.AdminForm(form, [(None, {"fields": ["amount", "reason"]})], {}),
                "allowance": apology_allowance(user=request.user, case=case),
                "media": self.media + form.media,
            },
        )
