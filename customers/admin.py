"""Customers in the admin, for CRM managers (SPEC F-ID, F-STAFF-2).

The customer table holds millions of rows: the list never counts the whole table, does not sort, joins what it
shows and searches by exact, indexed values (a phone in any format, an email, a card) — only a name is searched
by substring. Every change goes through ``customers.services``: the profile form calls ``customer_create`` /
``customer_update``; membership, merge and anonymisation are admin actions with a confirmation page and a reason.
The customer page shows the latest rows of each history with a link to the full, filtered list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.actors import Actor
from core.exceptions import ApplicationError
from customers.exceptions import CustomerError
from customers.forms import CustomerAdminForm, JoinForm, MergeForm, ReasonForm
from customers.models import ConsentChannel, ConsentEvent, Customer, CustomerChange, SmsCode
from customers.phones import phone_or_none
from customers.selectors import customer_consent_history, customer_consents, customer_history
from customers.services import (
    customer_anonymise,
    customer_block,
    customer_create,
    customer_join,
    customer_merge,
    customer_unblock,
    customer_update,
)
from customers.services.profile import EDITABLE_FIELDS
from points.admin import EstimatedCountPaginator, ReadOnlyAdmin
from points.exceptions import PointsError
from points.forms import ADJUST_PERMISSION, PointsAdjustForm
from points.models import Account, Entry, Lot
from points.selectors import points_balance
from points.services import points_adjust

EXPIRING_WITHIN_DAYS = 30
RECENT_ROWS = 20  # rows of each history on the customer page; the rest through the linked list
ACTION_BATCH_LIMIT = 100  # customers one admin action may change at once

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


# --- list filters ----------------------------------------------------------------------------


class YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter on whether ``field`` is set."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class EmailValidatedFilter(YesNoFilter):
    title = _("email validated")
    parameter_name = "email_validated"
    field = "email_validated_at"


class MergedFilter(YesNoFilter):
    title = _("merged into another customer")
    parameter_name = "merged"
    field = "merged_into"


# --- the customer page's history sections ----------------------------------------------------


@dataclass(frozen=True)
class Recent:
    """The newest rows of a history, whether there are more, and the list holding all of them."""

    rows: list[Any]
    more: bool
    url: str | None


@dataclass(frozen=True)
class ChangeRow:
    change: CustomerChange
    action: str
    actor: str
    fields: list[tuple[str, Any, Any]]


def recent(queryset: QuerySet, url: str | None) -> Recent:
    rows = list(queryset[: RECENT_ROWS + 1])
    return Recent(rows=rows[:RECENT_ROWS], more=len(rows) > RECENT_ROWS, url=url)


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


def changelist_url(model: str, **params: Any) -> str:
    return f"{reverse(f'admin:{model}_changelist')}?{urlencode(params)}"


def customer_sections(customer: Customer, accounts: list[Account]) -> dict[str, Any]:
    """What the customer page shows below the profile: one query per section, whatever the history's size."""
    account_ids = ",".join(str(account.pk) for account in accounts)
    consents = customer_consents(customer=customer)
    changes = recent(
        customer_history(customer=customer), changelist_url("customers_customerchange", customer__id__exact=customer.pk)
    )
    return {
        "consents": [(ConsentChannel(channel).label, consent) for channel, consent in consents.items()],
        "consent_events": recent(
            customer_consent_history(customer=customer),
            changelist_url("customers_consentevent", customer__id__exact=customer.pk),
        ),
        "external_ids": list(customer.external_ids.select_related("channel").order_by("channel__name")),
        "changes": Recent(
            rows=[
                ChangeRow(
                    change=change,
                    action=str(ACTION_LABELS.get(change.action, change.action)),
                    actor=actor_label(change),
                    fields=[(field_label(name), *map(shown, values)) for name, values in change.changes.items()],
                )
                for change in changes.rows
            ],
            more=changes.more,
            url=changes.url,
        ),
        "lots": recent(
            Lot.objects.filter(account__in=accounts).select_related("account__balance_type").order_by("-pk"),
            changelist_url("points_lot", account__in=account_ids) if accounts else None,
        ),
        "entries": recent(
            Entry.objects.filter(account__in=accounts)
            .select_related("account__balance_type", "actor_channel", "actor_user")
            .order_by("-created_at", "-pk"),
            changelist_url("points_entry", account__in=account_ids) if accounts else None,
        ),
    }


# --- admin actions: a confirmation page with a reason ----------------------------------------


@dataclass(frozen=True)
class BatchAction:
    """An action applied to each selected customer by one service call. ``apply`` returns False when the
    customer was already in the wanted state (nothing was done)."""

    name: str
    title: Any
    question: Any
    done: Callable[[int], str]
    unchanged: Callable[[int], str]
    apply: Callable[[Customer, Actor, dict[str, Any]], bool]
    form_class: type[forms.Form] = ReasonForm
    warning: Any = ""
    personal_in_messages: bool = True  # False: messages name customers by id only


def _join(customer: Customer, actor: Actor, data: dict[str, Any]) -> bool:
    _customer, joined = customer_join(customer=customer, actor=actor, store=data.get("store"), reason=data["reason"])
    return joined


def _block(customer: Customer, actor: Actor, data: dict[str, Any]) -> bool:
    blocked_before = customer.membership == Customer.Membership.BLOCKED
    customer_block(customer=customer, actor=actor, reason=data["reason"])
    return not blocked_before


def _unblock(customer: Customer, actor: Actor, data: dict[str, Any]) -> bool:
    customer_unblock(customer=customer, actor=actor, reason=data["reason"])
    return True


def _anonymise(customer: Customer, actor: Actor, data: dict[str, Any]) -> bool:
    anonymised_before = customer.membership == Customer.Membership.ANONYMISED
    customer_anonymise(customer=customer, actor=actor, reason=data["reason"])
    return not anonymised_before


BATCH_ACTIONS = {
    action.name: action
    for action in (
        BatchAction(
            name="join_customers",
            title=_("Make the selected customers members"),
            question=_(
                "Make these customers members of the programme? Points they collected as non-members become "
                "spendable and each new member gets the welcome bonus."
            ),
            done=lambda n: ngettext(
                "%(count)d customer joined the programme: %(names)s.",
                "%(count)d customers joined the programme: %(names)s.",
                n,
            ),
            unchanged=lambda n: ngettext(
                "%(count)d customer was a member already: %(names)s.",
                "%(count)d customers were members already: %(names)s.",
                n,
            ),
            apply=_join,
            form_class=JoinForm,
        ),
        BatchAction(
            name="block_customers",
            title=_("Block the selected customers"),
            question=_("Block these customers? They keep their points but cannot spend them until unblocked."),
            done=lambda n: ngettext(
                "%(count)d customer blocked: %(names)s.", "%(count)d customers blocked: %(names)s.", n
            ),
            unchanged=lambda n: ngettext(
                "%(count)d customer was blocked already: %(names)s.",
                "%(count)d customers were blocked already: %(names)s.",
                n,
            ),
            apply=_block,
        ),
        BatchAction(
            name="unblock_customers",
            title=_("Unblock the selected customers"),
            question=_("Unblock these customers? Members become members again, non-members non-members."),
            done=lambda n: ngettext(
                "%(count)d customer unblocked: %(names)s.", "%(count)d customers unblocked: %(names)s.", n
            ),
            unchanged=lambda n: "",
            apply=_unblock,
        ),
        BatchAction(
            name="anonymise_customers",
            title=_("Anonymise the selected customers"),
            question=_(
                "Anonymise these customers? Their phone, email, name, birth date, card, external ids and the "
                "personal values in their history are wiped and their consents revoked. Points and the journal "
                "stay for accounting."
            ),
            warning=_("This cannot be undone."),
            done=lambda n: ngettext(
                "%(count)d customer anonymised: %(names)s.", "%(count)d customers anonymised: %(names)s.", n
            ),
            unchanged=lambda n: ngettext(
                "%(count)d customer was anonymised already: %(names)s.",
                "%(count)d customers were anonymised already: %(names)s.",
                n,
            ),
            apply=_anonymise,
            personal_in_messages=False,
        ),
    )
}


def names(customers: list[Customer], *, personal: bool = True, limit: int = 10) -> str:
    listed = ", ".join(
        f"#{customer.pk} {customer}" if personal else f"#{customer.pk}" for customer in customers[:limit]
    )
    return listed + (" …" if len(customers) > limit else "")


# --- customers ---------------------------------------------------------------------------------

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
class CustomerAdmin(admin.ModelAdmin):
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
    search_help_text = _("Phone in any format, email, card number, #id (exact) or part of the name.")
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
        elif any(char.isalpha() for char in term):
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
            .prefetch_related(
                Prefetch(
                    "point_accounts",
                    queryset=Account.objects.select_related("balance_type").order_by("balance_type"),
                )
            )
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
            context["customer_sections"] = customer_sections(obj, self._accounts(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

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
        accounts = self._accounts(customer)
        balances = [
            (account.balance_type, points_balance(customer=customer, balance_type=account.balance_type.code))
            for account in accounts
        ]
        if not balances:
            return format_html("<p>{}</p>", _("No points yet."))
        account_ids = ",".join(str(account.pk) for account in accounts)
        links = format_html(
            '<p><a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a></p>',
            changelist_url("points_lot", account__in=account_ids),
            _("Lots"),
            changelist_url("points_entry", account__in=account_ids),
            _("Journal"),
            changelist_url("points_hold", account__in=account_ids),
            _("Holds"),
        )
        header = format_html_join(
            "",
            "<th>{}</th>",
            [
                (label,)
                for label in (
                    _("balance type"),
                    _("available"),
                    _("pending"),
                    _("held"),
                    _("debt"),
                    _("expiring in %(days)d days") % {"days": EXPIRING_WITHIN_DAYS},
                )
            ],
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            [(balance_type, b.available, b.pending, b.held, b.debt, b.expiring_soon) for balance_type, b in balances],
        )
        return format_html('<table class="points-balances"><tr>{}</tr>{}</table>{}', header, rows, links)

    # --- manual points adjustment ---

    def get_urls(self):
        adjust = path(
            "<path:object_id>/adjust-points/",
            self.admin_site.admin_view(self.adjust_points_view),
            name="customers_customer_adjust_points",
        )
        return [adjust, *super().get_urls()]

    def adjust_points_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Manual adjustment (F-STAFF-3): audited in the journal with the staff user and the reason."""
        if not request.user.has_perm(ADJUST_PERMISSION):
            raise PermissionDenied
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse("admin:customers_customer_change", args=[customer.pk])

        if request.method == "POST":
            form = PointsAdjustForm(request.POST)
            if form.is_valid():
                try:
                    operation = points_adjust(
                        customer=customer,
                        amount=form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        balance_type=form.cleaned_data["balance_type"].code,
                        expires_at=form.cleaned_data["expires_at"],
                        actor=Actor(user=request.user),
                        operation_key=form.operation_key,
                    )
                except PointsError as error:
                    form.add_service_error(error)
                else:
                    if operation.replayed:
                        self.message_user(request, _("This adjustment was already recorded."), messages.WARNING)
                    else:
                        self.message_user(
                            request,
                            _("Points adjusted by %(amount)s.") % {"amount": form.cleaned_data["amount"]},
                            messages.SUCCESS,
                        )
                    return HttpResponseRedirect(change_url)
        else:
            form = PointsAdjustForm()

        fieldsets = [(None, {"fields": ["amount", "reason", "balance_type", "expires_at"]})]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Adjust points: %(customer)s") % {"customer": customer},
            "subtitle": None,
            "opts": self.opts,
            "original": customer,
            "change_url": change_url,
            "form": form,
            "adminform": helpers.AdminForm(form, fieldsets, {}),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/customers/customer/adjust_points.html", context)

    # --- actions ---

    def has_merge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.merge_customer")

    def has_anonymise_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.anonymise_customer")

    def has_block_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.block_customer")

    @admin.action(description=_("Make member (join)"), permissions=["change"])
    def join_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        return self._batch_action(request, queryset, BATCH_ACTIONS["join_customers"])

    @admin.action(description=_("Block selected customers"), permissions=["block"])
    def block_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        return self._batch_action(request, queryset, BATCH_ACTIONS["block_customers"])

    @admin.action(description=_("Unblock selected customers"), permissions=["block"])
    def unblock_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        return self._batch_action(request, queryset, BATCH_ACTIONS["unblock_customers"])

    @admin.action(description=_("Anonymise selected customers"), permissions=["anonymise"])
    def anonymise_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        return self._batch_action(request, queryset, BATCH_ACTIONS["anonymise_customers"])

    @admin.action(description=_("Merge selected customers"), permissions=["merge"])
    def merge_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        """Two records of one person: the manager picks the one that stays and says why (F-ID-7)."""
        customers = list(queryset.order_by("pk")[:3])
        if len(customers) != 2:
            self.message_user(request, _("Select exactly two customers to merge."), messages.ERROR)
            return None
        form = MergeForm(request.POST if "confirmed" in request.POST else None, customers=customers)
        if form.is_bound and form.is_valid():
            survivor, duplicate = form.pair()
            try:
                customer_merge(
                    duplicate=duplicate,
                    survivor=survivor,
                    actor=Actor(user=request.user),
                    reason=form.cleaned_data["reason"],
                )
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
                return None
            self.message_user(
                request,
                format_html(
                    _("{duplicate} was merged into {survivor}; its points moved there."),
                    duplicate=f"#{duplicate.pk} {duplicate}",
                    survivor=customer_link(survivor),
                ),
                messages.SUCCESS,
            )
            return None
        accounts = Account.objects.filter(customer__in=customers).select_related("balance_type").order_by("pk")
        balances = {customer.pk: [] for customer in customers}
        for account in accounts:
            balances[account.customer_id].append(account)
        return self._confirmation_page(
            request,
            customers,
            form,
            action="merge_customers",
            title=_("Merge two customers"),
            template="admin/customers/customer/merge_confirmation.html",
            extra={"compared": [(customer, balances[customer.pk]) for customer in customers]},
        )

    def _batch_action(self, request: HttpRequest, queryset: QuerySet[Customer], action: BatchAction):
        """Confirm with a reason, then one service call per customer. Each call is its own transaction: a
        refused customer is reported and left as it was, the others are changed."""
        customers = list(queryset.order_by("pk")[: ACTION_BATCH_LIMIT + 1])
        if len(customers) > ACTION_BATCH_LIMIT:
            self.message_user(
                request,
                _("Select at most %(limit)d customers at a time.") % {"limit": ACTION_BATCH_LIMIT},
                messages.ERROR,
            )
            return None
        form = action.form_class(request.POST if "confirmed" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self._confirmation_page(
                request,
                customers,
                form,
                action=action.name,
                title=action.title,
                template="admin/customers/customer/action_confirmation.html",
                extra={"question": action.question, "warning": action.warning},
            )
        actor = Actor(user=request.user)
        changed, unchanged = [], []
        for customer in customers:
            try:
                done = action.apply(customer, actor, form.cleaned_data)
            except ApplicationError as error:
                self.message_user(request, f"#{customer.pk} {customer}: {error.message}", messages.ERROR)
                continue
            (changed if done else unchanged).append(customer)
        if changed:
            self.message_user(
                request,
                action.done(len(changed))
                % {"count": len(changed), "names": names(changed, personal=action.personal_in_messages)},
                messages.SUCCESS,
            )
        if unchanged:
            self.message_user(
                request,
                action.unchanged(len(unchanged))
                % {"count": len(unchanged), "names": names(unchanged, personal=action.personal_in_messages)},
                messages.WARNING,
            )
        return None

    def _confirmation_page(
        self,
        request: HttpRequest,
        customers: list[Customer],
        form: forms.Form,
        *,
        action: str,
        title: Any,
        template: str,
        extra: dict[str, Any],
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "customers": customers,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "form": form,
            "adminform": helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}),
            "media": self.media + form.media,
            **extra,
        }
        return TemplateResponse(request, template, context)


# --- histories and SMS codes (read-only) -------------------------------------------------------


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
        return format_html_join(
            "",
            "<div>{}: {} → {}</div>",
            [(field_label(name), *map(shown, values)) for name, values in change.changes.items()],
        )


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
