"""Reservations in the admin (SPEC F-ORD-7): a read-only list, and a confirmed action to cancel.

Rows change only through ``orders.services.reservations``; the action asks for a reason on its own page, calls
``reservation_cancel`` per reservation with the staff user as actor and records the reason in the admin's log
of the reservation (the model has no column for it).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.actors import Actor
from core.admin import ReadOnlyAdmin
from core.exceptions import ApplicationError
from customers.admin.common import customer_ids_with_phone
from customers.phones import phone_or_none
from orders.models import Reservation
from orders.services.reservations import reservation_cancel
from staff.admin_scoping import StoreScopedAdminMixin

ACTION_BATCH_LIMIT = 100  # reservations one admin action may cancel at once

CONFIRMATION = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}
{% load i18n l10n static %}
{% block extrahead %}{{ block.super }}{{ media }}<script src="{% static 'admin/js/cancel.js' %}" async></script>
{% endblock %}
{% block extrastyle %}{{ block.super }}<link rel="stylesheet" href="{% static "admin/css/forms.css" %}">{% endblock %}
{% block bodyclass %}{{ block.super }} app-{{ opts.app_label }} model-{{ opts.model_name }} delete-confirmation\
{% endblock %}
{% block breadcrumbs %}<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">{% translate 'Home' %}</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label=opts.app_label %}">{{ opts.app_config.verbose_name }}</a>
&rsaquo; <a href="{% url 'admin:orders_reservation_changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; {{ title }}
</div>{% endblock %}
{% block content %}<div id="content-main">
<p>{{ question }}</p>
<ul>{% for reservation in reservations %}
<li>{{ reservation.number }} ({{ reservation.channel }}) — {{ reservation.customer }}: {{ reservation.item_count }} —
{{ reservation.get_status_display }}</li>{% endfor %}
</ul>
<form method="post" novalidate>{% csrf_token %}<div>
{% for reservation in reservations %}
<input type="hidden" name="{{ action_checkbox_name }}" value="{{ reservation.pk|unlocalize }}">{% endfor %}
<input type="hidden" name="action" value="cancel_reservations">
<input type="hidden" name="confirmed" value="yes">
{% if form.errors %}<p class="errornote">{% translate "Please correct the error below." %}</p>{% endif %}
{% for fieldset in adminform %}
{% include "admin/includes/fieldset.html" with heading_level=2 prefix="fieldset" id_prefix=0 \
id_suffix=forloop.counter0 %}
{% endfor %}
<div class="submit-row">
<input type="submit" value="{% translate 'Yes, I\u2019m sure' %}" class="default">
<a href="#" class="button cancel-link">{% translate "No, take me back" %}</a>
</div></div></form></div>{% endblock %}
"""
)


class CancelReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the reservation's history."),
    )


@admin.register(Reservation)
class ReservationAdmin(StoreScopedAdminMixin, ReadOnlyAdmin):
    list_display = [
        "number",
        "channel",
        "customer_shown",
        "store",
        "item_count",
        "status",
        "created_at",
        "expires_at",
        "closed_at",
    ]
    list_select_related = ["channel", "customer", "store"]
    list_filter = ["status", "store"]
    search_fields = ["=number", "=customer__phone"]
    search_help_text = _("Exact reservation number, or the customer's phone in any format.")
    fields = [
        "number",
        "channel",
        "customer_shown",
        "store",
        "items_shown",
        "item_count",
        "status",
        "created_at",
        "expires_at",
        "closed_at",
    ]
    readonly_fields = fields
    actions = ["cancel_reservations"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Reservation], search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(number=term)
        phone = phone_or_none(term)
        if phone is not None:
            # Resolved to customers first, through the phone's own indexes.
            condition |= Q(customer_id__in=customer_ids_with_phone(phone.as_e164))
        return queryset.filter(condition), False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.change_reservation")

    @admin.display(description=_("customer"))
    def customer_shown(self, reservation: Reservation) -> str:
        customer = reservation.customer
        url = reverse("admin:customers_customer_change", args=[customer.pk])
        return format_html('<a href="{}">#{} {}</a>', url, customer.pk, customer.phone or customer)

    @admin.display(description=_("items"))
    def items_shown(self, reservation: Reservation) -> str:
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} x {} {}</li>",
                ((item.get("quantity"), item.get("sku"), item.get("name", "")) for item in reservation.items),
            ),
        )

    @admin.action(description=_("Cancel selected reservations"), permissions=["cancel"])
    def cancel_reservations(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> HttpResponse | None:
        """Confirm with a reason, then one ``reservation_cancel`` per reservation, each its own transaction: one
        the service refuses (fulfilled, expired) is reported and left as it was."""
        reservations = list(
            queryset.select_related("channel", "customer", "store").order_by("pk")[: ACTION_BATCH_LIMIT + 1]
        )
        if len(reservations) > ACTION_BATCH_LIMIT:
            self.message_user(
                request,
                _("Select at most %(limit)d reservations at a time.") % {"limit": ACTION_BATCH_LIMIT},
                messages.ERROR,
            )
            return None
        form = CancelReasonForm(request.POST if "confirmed" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self._confirmation_page(request, reservations, form)
        actor = Actor(user=request.user)
        reason = form.cleaned_data["reason"]
        cancelled = unchanged = 0
        for reservation in reservations:
            try:
                outcome = reservation_cancel(reservation=reservation, actor=actor, reason=reason)
            except ApplicationError as error:
                self.message_user(request, f"{reservation.number}: {error.message}", messages.ERROR)
                continue
            if outcome.replayed:
                unchanged += 1
                continue
            cancelled += 1
            self.log_change(request, outcome.reservation, _("Cancelled: %(reason)s") % {"reason": reason})
        if cancelled:
            self.message_user(
                request,
                ngettext("%(count)d reservation cancelled.", "%(count)d reservations cancelled.", cancelled)
                % {"count": cancelled},
                messages.SUCCESS,
            )
        if unchanged:
            self.message_user(
                request,
                ngettext(
                    "%(count)d reservation was cancelled already.",
                    "%(count)d reservations were cancelled already.",
                    unchanged,
                )
                % {"count": unchanged},
                messages.WARNING,
            )
        return None

    def _confirmation_page(
        self, request: HttpRequest, reservations: list[Reservation], form: CancelReasonForm
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            CONFIRMATION,
            {
                **self.admin_site.each_context(request),
                "title": _("Cancel reservations"),
                "subtitle": None,
                "opts": self.opts,
                "question": _("Cancel these reservations? Their items stop counting towards the customers' limits."),
                "reservations": reservations,
                "form": form,
                "adminform": helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}),
                "media": self.media + form.media,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )
