"""What the customer admin's modules share: labels of history actions, links, the indexed phone lookup and
the frame of a page around one form."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import FieldDoesNotExist
from django.forms import Form
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from customers.models import ConsentEvent, Customer, CustomerChange
from points.models import Entry

ACTION_LABELS = {
    "create": _("created"),
    "update": _("profile changed"),
    "external_id": _("external id set"),
    "join": _("joined"),
    "block": _("blocked"),
    "unblock": _("unblocked"),
    "merge": _("duplicate merged in"),
    "merged": _("merged into another customer"),
    "anonymise": _("anonymised"),
    "email_validated": _("email validated"),
}


def customer_ids_with_phone(phone: str) -> list[int]:
    """Active customers and merged redirects with this E.164 phone, each found through its own partial index
    (one query with both conditions would be folded by PostgreSQL into ``phone = …`` and scan the table)."""
    active = Customer.objects.filter(phone=phone, merged_into__isnull=True).values_list("pk", flat=True)
    merged = Customer.objects.filter(phone=phone, merged_into__isnull=False).values_list("pk", flat=True)
    return [*active, *merged]


def customer_link(customer: Customer | None) -> str:
    if customer is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse("admin:customers_customer_change", args=[customer.pk]), customer)


def changelist_url(model: str, **params: Any) -> str:
    return f"{reverse(f'admin:{model}_changelist')}?{urlencode(params)}"


def actor_label(row: ConsentEvent | CustomerChange | Entry) -> str:
    return str(row.actor_user or row.actor_channel or _("system"))


def shown(value: Any) -> Any:
    """A history value as the page shows it: nothing is a dash."""
    return "—" if value in (None, "") else value


def field_label(name: str) -> str:
    try:
        return str(Customer._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def field_changes(change: CustomerChange) -> list[tuple[str, Any, Any]]:
    """(field label, before, after) of each field a history row changed."""
    return [(field_label(name), *map(shown, values)) for name, values in change.changes.items()]


def form_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    form: Form,
    fieldsets: list[tuple[Any, dict[str, Any]]],
    *,
    template: str,
    title: Any,
    **context: Any,
) -> TemplateResponse:
    """An admin page around one form: an action's confirmation, the points adjustment."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": model_admin.opts,
            "form": form,
            "adminform": helpers.AdminForm(form, fieldsets, {}),
            "media": model_admin.media + form.media,
            **context,
        },
    )
