"""Customers in the admin, for CRM managers (SPEC F-ID, F-STAFF-2).

The customer table holds millions of rows: the list never counts the whole table, does not sort, joins what it
shows and searches by exact, indexed values (a phone in any format, an email, a card) — only a name is searched
by substring, through a trigram index on PostgreSQL (customers migration 0003). Every change goes through
``customers.services``: the profile form calls ``customer_create`` / ``customer_update``; membership, merge and
anonymisation are admin actions with a confirmation page and a reason.
The customer page (F-STAFF-2) shows the balances, the tier and the latest rows of each history — orders with their
deliveries, complaints, messages, consents, changes, lots, the journal — each with a link to the full, filtered list.

This package: ``CustomerAdmin`` here, saving through the services imported into this module; its actions in
``actions``, the points adjustment in ``adjust_points``, the read-only parts of its page in ``sections``; the
read-only histories and SMS codes in ``history`` (registered by importing it here).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.actors import Actor
from core.admin import EstimatedCountPaginator, YesNoFilter
from customers.admin.actions import CustomerActionsMixin
from customers.admin.adjust_points import AdjustPointsMixin
from customers.admin.common import customer_ids_with_phone, customer_link
from customers.admin.history import ConsentEventAdmin, CustomerChangeAdmin, SmsCodeAdmin
from customers.admin.sections import (
    RECENT_ROWS,
    Card,
    card_accounts,
    customer_sections,
    points_balances_table,
    section_kind,
)
from customers.exceptions import CustomerError
from customers.forms import CustomerAdminForm
from customers.models import Customer
from customers.phones import phone_or_none
from customers.services import customer_create, customer_update
from customers.services.profile import EDITABLE_FIELDS
from points.forms import ADJUST_PERMISSION
from points.models import Account
from staff.admin_scoping import StoreScopedAdminMixin
from staff.services import staff_store_ids

__all__ = ["ConsentEventAdmin", "CustomerAdmin", "CustomerChangeAdmin", "SmsCodeAdmin"]


class EmailValidatedFilter(YesNoFilter):
    title = _("email validated")
    parameter_name = "email_validated"
    field = "email_validated_at"


class MergedFilter(YesNoFilter):
    title = _("merged into another customer")
    parameter_name = "merged"
    field = "merged_into"


NAME_SEARCH_MIN = 3  # characters: a trigram index cannot narrow down a shorter part of a name

PROFILE = ["phone", "email", "name", "birth_date", "gender", "language", "card_number"]
BUSINESS = ["kind", "company", "b2b_role"]
MEMBERSHIP = [
    "membership",
    "joined_at",
    "join_channel",
    "registration_store",
    "merged_into",
    "merged_duplicates_list",
    "merged_at",
    "anonymised_at",
    "email_validated_at",
    "created_at",
    "updated_at",
]
ALWAYS_READ_ONLY = [name for name in MEMBERSHIP if name != "registration_store"] + ["points_balances"]


@admin.register(Customer)
class CustomerAdmin(StoreScopedAdminMixin, CustomerActionsMixin, AdjustPointsMixin, admin.ModelAdmin):
    form = CustomerAdminForm
    list_display = [
        "phone",
        "name",
        "membership_state",
        "kind",
        "card_number",
        "email",
        "registration_store",
        "created_at",
    ]
    list_select_related = ["registration_store"]
    list_filter = [
        "kind",
        "membership",
        ("join_channel", admin.RelatedFieldListFilter),
        ("registration_store", admin.RelatedFieldListFilter),
        EmailValidatedFilter,
        MergedFilter,
    ]
    # Shown as the search box's fields; ``get_search_results`` does the searching.
    search_fields = ["=phone", "=email", "=card_number", "name"]
    search_help_text = _(
        "Phone in any format, email, card number, #id (exact) or part of the name (3 letters or more)."
    )
    show_full_result_count = False  # no COUNT(*) over millions of customers (F-STAFF-4)
    paginator = EstimatedCountPaginator
    sortable_by: list[str] = []  # newest first; no column has an index to sort millions of rows by
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice would scan the table
    save_on_top = True
    actions = ["join_customers", "block_customers", "unblock_customers", "merge_customers", "anonymise_customers"]

    # --- list ---

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(card_number=term)
        if term.removeprefix("#").isdigit() and len(term) <= 18:
            condition |= Q(pk=int(term.removeprefix("#")))
        phone = phone_or_none(term)
        if phone is not None:
            condition |= Q(pk__in=customer_ids_with_phone(phone.as_e164))
        elif "@" in term:
            condition |= Q(email=term.lower())  # stored lower-case
        elif len(term) >= NAME_SEARCH_MIN and any(char.isalpha() for char in term):
            # UPPER(name) LIKE '%TERM%': served on PostgreSQL by the trigram index customer_name_trgm (customers
            # migration 0003), which needs three characters to narrow anything down.
            condition |= Q(name__icontains=term)
        return queryset.filter(condition), False

    @admin.display(description=_("membership"))
    def membership_state(self, customer: Customer) -> str:
        if customer.merged_into_id is not None:
            return _("merged into #%(id)s") % {"id": customer.merged_into_id}
        return customer.get_membership_display()

    # --- customer page ---

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Customer | None:
        """The customer with what its page shows joined or prefetched, so the page costs the same queries
        however long its history is."""
        queryset = (
            self.get_queryset(request)
            .select_related("join_channel", "registration_store", "merged_into")
            .prefetch_related(Prefetch("point_accounts", queryset=card_accounts()))
        )
        field = Customer._meta.pk if from_field is None else Customer._meta.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (Customer.DoesNotExist, ValidationError, ValueError):
            return None

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None):
        if obj is None:
            return [
                (_("Profile"), {"fields": PROFILE}),
                (_("Business"), {"fields": BUSINESS}),
                (
                    _("Registration"),
                    {
                        "fields": ["registration_store"],
                        "description": _(
                            "A new customer is a non-member; “Make member (join)” in the customer list enrols them."
                        ),
                    },
                ),
            ]
        fieldsets = [
            (_("Profile"), {"fields": PROFILE}),
            (_("Business"), {"fields": BUSINESS}),
            (_("Membership"), {"fields": MEMBERSHIP}),
            (_("Points"), {"fields": ["points_balances"]}),
        ]
        if self.has_change_permission(request, obj):
            fieldsets.append((_("Reason"), {"fields": ["change_reason"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> list[str]:
        return ALWAYS_READ_ONLY if obj is not None else []

    @staticmethod
    def _editable(customer: Customer) -> bool:
        return customer.merged_into_id is None and customer.membership != Customer.Membership.ANONYMISED

    def has_change_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        # A merged duplicate or an anonymised customer is shown, not edited: the services refuse to change them.
        return super().has_change_permission(request, obj) and (obj is None or self._editable(obj))

    def has_delete_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        return False  # the ledger keeps customers; personal data goes by anonymisation (F-ID-8)

    def save_model(self, request: HttpRequest, obj: Customer, form: forms.ModelForm, change: bool) -> None:
        actor = Actor(user=request.user)
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
            if not fields:
                return
            saved = customer_update(
                customer=obj, actor=actor, reason=form.cleaned_data.get("change_reason", ""), **fields
            )
        else:
            data = form.cleaned_data
            saved = customer_create(
                phone=data["phone"],
                name=data["name"],
                email=data["email"],
                birth_date=data["birth_date"],
                gender=data["gender"],
                card_number=data["card_number"],
                kind=data["kind"],
                company=data["company"],
                b2b_role=data["b2b_role"],
                language=data["language"],
                store=data["registration_store"],
                actor=actor,
            )
        for field in Customer._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def changeform_view(self, request: HttpRequest, object_id=None, form_url: str = "", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except CustomerError as error:
            # The form checks what the services check, so only a concurrent change gets here (another customer
            # took the phone a moment ago). The admin's transaction was rolled back: nothing was saved.
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "can_adjust_points": request.user.has_perm(ADJUST_PERMISSION)}
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None:
            # the current state here; each history is a placeholder the page fills in through ``section_view``
            context["customer_sections"] = customer_sections(Card(obj, self._accounts(obj)))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        section = path(
            "<path:object_id>/section/<str:name>/",
            self.admin_site.admin_view(self.section_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_section",
        )
        return [section, *super().get_urls()]

    def section_view(self, request: HttpRequest, object_id: str, name: str) -> TemplateResponse:
        """One history table of the customer page, alone (the page's script puts it in place): the customer read
        as the page reads it (store scoping applies), 404 for a customer out of reach or an unknown table."""
        kind = section_kind(name)
        if kind is None:
            raise Http404(_("No such table on the customer page."))
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404(_("No such customer."))
        if not self.has_view_or_change_permission(request, customer):
            raise PermissionDenied
        card = Card(customer, self._accounts(customer), store_ids=staff_store_ids(request.user))
        section = kind.build(card)
        return TemplateResponse(request, section.template, {"section": section})

    @staticmethod
    def _accounts(customer: Customer) -> list[Account]:
        return list(customer.point_accounts.all())  # prefetched by get_object

    @admin.display(description=_("merged duplicates"))
    def merged_duplicates_list(self, customer: Customer) -> str:
        duplicates = list(customer.merged_duplicates.order_by("pk")[: RECENT_ROWS + 1])
        if not duplicates:
            return "—"
        links = format_html_join(", ", "{}", [(customer_link(duplicate),) for duplicate in duplicates[:RECENT_ROWS]])
        return format_html("{} …", links) if len(duplicates) > RECENT_ROWS else links

    @admin.display(description=_("balances"))
    def points_balances(self, customer: Customer) -> str:
        """Per balance type: available / pending / held / debt / expiring within 30 days (F-STAFF-2)."""
        if customer.pk is None:
            return "—"
        return points_balances_table(customer, self._accounts(customer))
