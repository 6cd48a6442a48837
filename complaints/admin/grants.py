"""Apology grants in the admin: a read-only list whose "awaiting approval" filter is the CRM managers' approval
queue, with approve and reject actions (a note, a confirmation page) for holders of ``approve_apology``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from complaints.forms import ApologyDecisionForm
from complaints.models import ApologyGrant
from complaints.services import APPROVE_PERMISSION, apology_approve, apology_reject
from core.actors import Actor
from core.admin import EstimatedCountPaginator, ReadOnlyAdmin
from core.exceptions import ApplicationError
from customers.admin.common import customer_ids_with_phone, customer_link
from customers.phones import phone_or_none

DECISION_BATCH_LIMIT = 100  # grants one approval action may decide at once
QUEUE_QUERY = f"state__exact={ApologyGrant.State.AWAITING}"


def approval_queue_url() -> str:
    return f"{reverse('admin:complaints_apologygrant_changelist')}?{QUEUE_QUERY}"


@admin.register(ApologyGrant)
class ApologyGrantAdmin(ReadOnlyAdmin):
    list_display = [
        "grant",
        "created_at",
        "customer_link",
        "case_link",
        "amount",
        "state",
        "short_reason",
        "requested_by",
        "decided_by",
        "decided_at",
    ]
    list_select_related = ["customer", "case", "requested_by", "decided_by"]
    list_filter = ["state", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=case__id"]
    search_help_text = _("Customer's phone in any format, or the case number (#12).")
    raw_id_fields = ["case", "customer", "entry"]
    fields = [
        "case",
        "customer",
        "amount",
        "reason",
        "state",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "entry",
        "operation_key",
    ]
    readonly_fields = fields
    paginator = EstimatedCountPaginator
    sortable_by = ["created_at"]
    show_facets = admin.ShowFacets.NEVER
    actions = ["approve_grants", "reject_grants"]
    change_list_template = "admin/complaints/apologygrant/change_list.html"

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # The queue is worked oldest first; the full list shows the newest first.
        if request.GET.get("state__exact") == ApologyGrant.State.AWAITING:
            return ["created_at", "pk"]
        return ["-created_at", "-pk"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApologyGrant]:
        return super().get_queryset(request).select_related("case", "customer", "requested_by", "decided_by")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[ApologyGrant], search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(pk__in=[])
        number = term.removeprefix("#")
        if number.isdigit() and len(number) <= 18:
            condition |= Q(case_id=int(number))
        phone = phone_or_none(term)
        if phone is not None:
            condition |= Q(customer_id__in=customer_ids_with_phone(phone.as_e164))
        return queryset.filter(condition), False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "approval_queue_url": approval_queue_url()}
        if request.GET.get("state__exact") == ApologyGrant.State.AWAITING:
            extra_context.setdefault("title", _("Approval queue: apology points awaiting approval"))
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("grant"), ordering="pk")
    def grant(self, grant: ApologyGrant) -> str:
        return f"#{grant.pk}"

    @admin.display(description=_("reason"))
    def short_reason(self, grant: ApologyGrant) -> str:
        return Truncator(grant.reason).chars(80)

    @admin.display(description=_("customer"))
    def customer_link(self, grant: ApologyGrant) -> str:
        return customer_link(grant.customer)

    @admin.display(description=_("complaint case"))
    def case_link(self, grant: ApologyGrant) -> str:
        url = reverse("admin:complaints_complaintcase_change", args=[grant.case_id])
        return format_html('<a href="{}">#{}</a> {}', url, grant.case_id, grant.case.get_category_display())

    # --- the approval actions ---

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    @admin.action(description=_("Approve selected apology points"), permissions=["approve"])
    def approve_grants(self, request: HttpRequest, queryset: QuerySet[ApologyGrant]) -> HttpResponse | None:
        return self._decide(
            request,
            queryset,
            action="approve_grants",
            title=_("Approve apology points"),
            question=_("Issue these apology points to the customers? The points are booked at once."),
            decide=lambda grant, actor, note: apology_approve(grant=grant, actor=actor, note=note),
            done=lambda count: ngettext(
                "%(count)d apology grant approved: its points are issued.",
                "%(count)d apology grants approved: their points are issued.",
                count,
            ),
            note_required=False,
        )

    @admin.action(description=_("Reject selected apology points"), permissions=["approve"])
    def reject_grants(self, request: HttpRequest, queryset: QuerySet[ApologyGrant]) -> HttpResponse | None:
        return self._decide(
            request,
            queryset,
            action="reject_grants",
            title=_("Reject apology points"),
            question=_("Reject these apology points? No points are booked; tell the operator why."),
            decide=lambda grant, actor, note: apology_reject(grant=grant, actor=actor, note=note),
            done=lambda count: ngettext(
                "%(count)d apology grant rejected.", "%(count)d apology grants rejected.", count
            ),
            note_required=True,
        )

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[ApologyGrant],
        *,
        action: str,
        title: Any,
        question: Any,
        decide: Callable[[ApologyGrant, Actor, str], ApologyGrant],
        done: Callable[[int], str],
        note_required: bool,
    ) -> HttpResponse | None:
        """Confirm with a note, then one service call per grant, each its own transaction: a grant the service
        refuses (already decided, your own request) is reported and left as it was."""
        grants = list(queryset.order_by("created_at", "pk")[: DECISION_BATCH_LIMIT + 1])
        if len(grants) > DECISION_BATCH_LIMIT:
            self.message_user(
                request,
                _("Select at most %(limit)d grants at a time.") % {"limit": DECISION_BATCH_LIMIT},
                messages.ERROR,
            )
            return None
        form = ApologyDecisionForm(request.POST if "confirmed" in request.POST else None, note_required=note_required)
        if not (form.is_bound and form.is_valid()):
            return TemplateResponse(
                request,
                "admin/complaints/apologygrant/decision_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": title,
                    "subtitle": None,
                    "opts": self.opts,
                    "question": question,
                    "grants": grants,
                    "form": form,
                    "adminform": helpers.AdminForm(form, [(None, {"fields": ["note"]})], {}),
                    "action": action,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "media": self.media + form.media,
                },
            )
        actor = Actor(user=request.user)
        decided = 0
        for grant in grants:
            try:
                decide(grant, actor, form.cleaned_data["note"])
            except ApplicationError as error:
                self.message_user(request, f"#{grant.pk}: {error.message}", messages.ERROR)
                continue
            decided += 1
        if decided:
            self.message_user(request, done(decided) % {"count": decided}, messages.SUCCESS)
        return None
