"""Staff in the admin (SPEC F-STAFF-1, F-STAFF-3): the stores each staff user works in, on the user's page, and the
audit trail — a read-only list for CRM managers and analysts.

The audit table grows with every manual action: its list never counts the whole table, sorts only by time (the
indexed ``created_at``), filters by fixed choices and a date, and searches by exact values through its indexes — a
customer id or a staff user's username.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from staff.models import AuditRecord, StoreMembership

User = get_user_model()


class StoreMembershipInline(admin.TabularInline):
    model = StoreMembership
    extra = 0
    fields = ["store"]
    verbose_name = _("store this user works in")
    verbose_name_plural = _(
        "Stores this user works in (staff without “Can see every store's customers and orders” see only these)"
    )


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, StoreMembershipInline]
    list_display = [*UserAdmin.list_display, "stores"]
    list_filter = [*UserAdmin.list_filter, ("store_memberships__store", admin.RelatedOnlyFieldListFilter)]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("store_memberships__store")

    @admin.display(description=_("stores"))
    def stores(self, user) -> str:
        return ", ".join(str(membership.store) for membership in user.store_memberships.all()) or "—"


# --- the audit trail ---------------------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """No add, change or delete for anyone, superusers included (``ReadOnlyAdmin``); seen with
    ``staff.view_auditrecord``."""

    list_display = ["created_at", "action", "actor_user", "target_shown", "customer_shown", "reason_shown"]
    list_select_related = ["actor_user"]
    list_filter = ["action", ("created_at", admin.DateFieldListFilter)]
    show_facets = admin.ShowFacets.NEVER  # a count per action would scan the table
    search_fields = ["=customer_id"]  # shows the search box; the search itself is below
    search_help_text = _("Customer id (42 or #42) or a staff user's username: exact.")
    sortable_by = ["created_at"]
    ordering = ["-created_at", "-pk"]
    fields = [
        "created_at",
        "actor_user",
        "action",
        "target_shown",
        "customer_shown",
        "reason",
        "changes_shown",
    ]
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[AuditRecord], search_term: str):
        """A number is a customer id; anything else a username, resolved to the user first (the index on
        ``actor_user, created_at`` then serves the list)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        number = term.removeprefix("#")
        if number.isdigit() and len(number) <= 18:
            return queryset.filter(customer_id=int(number)), False
        user_ids = list(User.objects.filter(**{User.USERNAME_FIELD: term}).values_list("pk", flat=True))
        return queryset.filter(actor_user_id__in=user_ids), False

    @admin.display(description=_("object"))
    def target_shown(self, record: AuditRecord) -> str:
        label = record.target_label or f"{record.target_type} #{record.target_id}"
        app_label, _dot, model_name = record.target_type.partition(".")
        try:
            url = reverse(f"admin:{app_label}_{model_name}_change", args=[record.target_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("customer"))
    def customer_shown(self, record: AuditRecord) -> str:
        if record.customer_id is None:
            return "—"
        url = reverse("admin:customers_customer_change", args=[record.customer_id])
        return format_html('<a href="{}">#{}</a>', url, record.customer_id)

    @admin.display(description=_("reason"))
    def reason_shown(self, record: AuditRecord) -> str:
        return record.reason if len(record.reason) <= 80 else f"{record.reason[:79]}…"

    @admin.display(description=_("before and after"))
    def changes_shown(self, record: AuditRecord) -> str:
        before, after = record.before or {}, record.after or {}
        names = [*before, *(name for name in after if name not in before)]
        if not names:
            return "—"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((name, _shown(before.get(name)), _shown(after.get(name))) for name in names),
        )
        return format_html(
            '<table class="audit-changes"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            _("field"),
            _("before"),
            _("after"),
            rows,
        )
