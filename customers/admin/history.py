"""The customers' histories and SMS codes in the admin, read-only: consent events, profile changes and the
registration codes sent. Each list is searched by a customer's id or phone through indexed lookups."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, YesNoFilter
from customers.admin.common import ACTION_LABELS, actor_label, customer_ids_with_phone, customer_link, field_changes
from customers.models import ConsentEvent, CustomerChange, SmsCode
from customers.phones import phone_or_none


class CustomerSearchMixin:
    """Search a customer's rows by the customer id or phone (any format), through indexed lookups."""

    show_facets = admin.ShowFacets.NEVER
    search_fields = ["=customer__id", "=customer__phone"]
    search_help_text = _("Customer id or phone (any format).")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        ids = customer_ids_with_phone(phone.as_e164) if (phone := phone_or_none(term)) else []
        if term.isdigit() and len(term) <= 18:
            ids.append(int(term))
        return queryset.filter(customer_id__in=ids), False


class ActorMixin:
    @admin.display(description=_("by"))
    def actor(self, row: ConsentEvent | CustomerChange) -> str:
        return actor_label(row)

    @admin.display(description=_("customer"))
    def customer_column(self, row: ConsentEvent | CustomerChange) -> str:
        return customer_link(row.customer)


@admin.register(ConsentEvent)
class ConsentEventAdmin(CustomerSearchMixin, ActorMixin, ReadOnlyAdmin):
    list_display = ["id", "created_at", "customer_column", "channel", "granted", "source", "text_version", "actor"]
    list_select_related = ["customer", "actor_channel", "actor_user"]
    list_filter = ["channel", "granted", "source"]


class CustomerChangeActionFilter(admin.SimpleListFilter):
    """The known actions; Django's default would run SELECT DISTINCT over the whole history."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return list(ACTION_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(CustomerChange)
class CustomerChangeAdmin(CustomerSearchMixin, ActorMixin, ReadOnlyAdmin):
    list_display = ["id", "created_at", "customer_column", "action_label", "changed_fields", "reason", "actor"]
    list_select_related = ["customer", "actor_channel", "actor_user"]
    list_filter = [CustomerChangeActionFilter]

    @admin.display(description=_("action"))
    def action_label(self, change: CustomerChange) -> str:
        return str(ACTION_LABELS.get(change.action, change.action))

    @admin.display(description=_("changes"))
    def changed_fields(self, change: CustomerChange) -> str:
        return format_html_join("", "<div>{}: {} → {}</div>", field_changes(change))


class SmsCodeUsedFilter(YesNoFilter):
    title = _("used")
    parameter_name = "used"
    field = "used_at"


@admin.register(SmsCode)
class SmsCodeAdmin(ReadOnlyAdmin):
    """Registration codes sent, for support ("I got no SMS"). The code's hash is never shown."""

    list_display = ["phone", "created_at", "expires_at", "attempts", "used_at", "channel"]
    list_select_related = ["channel"]
    list_filter = [SmsCodeUsedFilter]
    show_facets = admin.ShowFacets.NEVER
    fields = ["phone", "channel", "created_at", "expires_at", "attempts", "used_at"]
    search_fields = ["=phone"]
    search_help_text = _("Phone (any format).")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[SmsCode], search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        phone = phone_or_none(term)
        return (queryset.filter(phone=phone.as_e164) if phone else queryset.none()), False
