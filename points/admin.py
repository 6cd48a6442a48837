"""The ledger in the admin (SPEC F-LED, F-STAFF-3/4).

Accounts, lots, journal entries and holds are read-only: every change goes through a service, and
corrections through the customer's "Adjust points" form. These tables hold tens of millions of rows,
so their lists never count the whole table (nor the millions of rows of a broad filter: the planner's
estimate stands in), filter by fixed choices through indexes that also give the default order (lots by
state or kind, the journal by kind: ``?state__exact=active``, ``?kind__exact=accrue``), sort only by the
id, join what they display in the same query and search by exact values only (a customer's phone in any
format, an operation key).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from phonenumber_field.phonenumber import PhoneNumber
from phonenumber_field.phonenumber import to_python as phone_parse

from core.admin import PlannerEstimatePaginator, ReadOnlyAdmin
from customers.models import Customer
from points.exceptions import PointsError
from points.models import Account, Allocation, BalanceReset, BalanceType, Entry, Hold, Lot, LotLifetime
from points.services import points_reset_cancel, points_reset_preview, points_reset_run, points_reset_schedule


def phone_e164(text: str) -> str | None:
    """``text`` as an E.164 phone if it is a valid one (typed in any common format), else None."""
    phone = phone_parse(text)
    return phone.as_e164 if isinstance(phone, PhoneNumber) and phone.is_valid() else None


class LedgerSearchMixin:
    """Exact search that uses indexes: a customer's phone in any format (``89161234567`` finds
    ``+79161234567``) or, where the model has one, an operation key. ``search_fields`` names both for
    the admin's search box; the lookups themselves are exact matches rather than Django's ``iexact``,
    which would defeat the indexes."""

    search_help_text = _("Customer phone (any format) or exact operation key.")
    paginator = PlannerEstimatePaginator
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice would scan the table
    account_field = "account_id"
    operation_key_field: str | None = "operation_key"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(pk__in=[])
        if self.operation_key_field:
            condition |= Q(**{self.operation_key_field: term})
        phone = phone_e164(term)
        if phone is not None:
            # Resolve the phone to accounts first: a join inside the OR would scan the whole ledger table.
            account_ids = list(Account.objects.filter(customer__phone=phone).values_list("pk", flat=True))
            condition |= Q(**{f"{self.account_field}__in": account_ids})
        return queryset.filter(condition), False


def customer_link(account: Account) -> str:
    customer = account.customer
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:customers_customer_change", args=[customer.pk]), customer.phone
    )


# --- accounts, lots, journal, holds (read-only) ----------------------------------------------


@admin.register(Account)
class AccountAdmin(LedgerSearchMixin, ReadOnlyAdmin):
    list_display = ["id", "customer_phone", "balance_type", "available", "pending", "held", "debt", "updated_at"]
    list_select_related = ["customer", "balance_type"]
    list_filter = ["balance_type"]
    search_fields = ["=customer__phone"]
    search_help_text = _("Customer phone (any format).")
    account_field = "pk"
    operation_key_field = None
    raw_id_fields = ["customer"]

    @admin.display(description=_("customer"))
    def customer_phone(self, account: Account) -> str:
        return customer_link(account)


class LotAllocationInline(admin.TabularInline):
    """The journal lines that changed this lot: accrued, held, spent, expired …"""

    model = Allocation
    fk_name = "lot"
    fields = ["entry", "entry_kind", "entry_created_at", "remaining_delta", "held_delta"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("journal lines of this lot")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        return super().get_queryset(request).select_related("entry").order_by("pk")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("kind"))
    def entry_kind(self, allocation: Allocation) -> str:
        return allocation.entry.get_kind_display()

    @admin.display(description=_("created at"))
    def entry_created_at(self, allocation: Allocation):
        return allocation.entry.created_at


@admin.register(Lot)
class LotAdmin(LedgerSearchMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "customer",
        "balance_type",
        "kind",
        "amount",
        "remaining",
        "held",
        "state",
        "expires_at",
        "created_at",
    ]
    list_select_related = ["account__customer", "account__balance_type"]
    list_filter = ["state", "kind"]
    search_fields = ["=account__customer__phone"]
    search_help_text = _("Customer phone (any format).")
    operation_key_field = None
    raw_id_fields = ["account"]
    inlines = [LotAllocationInline]

    @admin.display(description=_("customer"))
    def customer(self, lot: Lot) -> str:
        return customer_link(lot.account)

    @admin.display(description=_("balance type"))
    def balance_type(self, lot: Lot) -> str:
        return lot.account.balance_type.code


class AllocationInline(admin.TabularInline):
    """Which lots a journal line changed: a spend shows the accruals it consumed (F-LED-11)."""

    model = Allocation
    fk_name = "entry"
    fields = ["lot", "lot_kind", "lot_expires_at", "remaining_delta", "held_delta"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        return super().get_queryset(request).select_related("lot").order_by("pk")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("lot kind"))
    def lot_kind(self, allocation: Allocation) -> str:
        return allocation.lot.get_kind_display()

    @admin.display(description=_("lot expires at"))
    def lot_expires_at(self, allocation: Allocation):
        return allocation.lot.expires_at


@admin.register(Entry)
class EntryAdmin(LedgerSearchMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "customer",
        "balance_type",
        "kind",
        "amount",
        "available_delta",
        "pending_delta",
        "held_delta",
        "debt_delta",
        "operation_key",
        "actor",
    ]
    list_select_related = ["account__customer", "account__balance_type", "actor_channel", "actor_user"]
    list_filter = ["kind"]
    search_fields = ["=account__customer__phone", "=operation_key"]
    raw_id_fields = ["account", "hold", "reverses", "actor_channel", "actor_user"]
    exclude = ["fingerprint"]
    inlines = [AllocationInline]

    @admin.display(description=_("customer"))
    def customer(self, entry: Entry) -> str:
        return customer_link(entry.account)

    @admin.display(description=_("balance type"))
    def balance_type(self, entry: Entry) -> str:
        return entry.account.balance_type.code

    @admin.display(description=_("by"))
    def actor(self, entry: Entry) -> str:
        return str(entry.actor_user or entry.actor_channel or _("system"))


@admin.register(Hold)
class HoldAdmin(LedgerSearchMixin, ReadOnlyAdmin):
    list_display = ["id", "customer", "balance_type", "amount", "state", "expires_at", "created_at", "closed_at"]
    list_select_related = ["account__customer", "account__balance_type"]
    list_filter = ["state"]
    search_fields = ["=account__customer__phone", "=operation_key"]
    raw_id_fields = ["account"]

    @admin.display(description=_("customer"))
    def customer(self, hold: Hold) -> str:
        return customer_link(hold.account)

    @admin.display(description=_("balance type"))
    def balance_type(self, hold: Hold) -> str:
        return hold.account.balance_type.code


# --- configuration: balance types and lot lifetimes -----------------------------------------


class LotLifetimeInline(admin.TabularInline):
    model = LotLifetime
    extra = 0


@admin.register(BalanceType)
class BalanceTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "default_lifetime_days"]
    inlines = [LotLifetimeInline]

    def get_readonly_fields(self, request: HttpRequest, obj: BalanceType | None = None) -> list[str]:
        return ["code"] if obj is not None else []  # channels and settings refer to balance types by code

    def has_delete_permission(self, request: HttpRequest, obj: BalanceType | None = None) -> bool:
        return False  # accounts and the API refer to it; an unused one does no harm


# --- balance resets (F-LED-9) ---------------------------------------------------------------


class BalanceResetForm(forms.ModelForm):
    memberships = forms.MultipleChoiceField(
        label=_("memberships"),
        choices=Customer.Membership.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Reset only customers in these membership states; none ticked: everyone."),
    )

    class Meta:
        model = BalanceReset
        fields = ["balance_type", "memberships", "run_at", "reason"]


@admin.register(BalanceReset)
class BalanceResetAdmin(admin.ModelAdmin):
    """A manager schedules a reset and sees what it would zero; it runs once, by "Run now" when due."""

    form = BalanceResetForm
    list_display = [
        "id",
        "balance_type",
        "run_at",
        "state",
        "memberships_display",
        "created_by",
        "accounts_reset",
        "points_reset",
        "finished_at",
    ]
    list_select_related = ["balance_type", "created_by"]
    list_filter = ["state", "balance_type"]
    sortable_by = ["id", "run_at"]
    actions = ["run_now", "cancel"]
    readonly_fields = [
        "balance_type",
        "memberships_display",
        "run_at",
        "reason",
        "preview",
        "state",
        "created_by",
        "created_at",
        "finished_at",
        "accounts_reset",
        "points_reset",
    ]

    def get_fields(self, request: HttpRequest, obj: BalanceReset | None = None) -> list[str]:
        return self.readonly_fields if obj is not None else list(BalanceResetForm.Meta.fields)

    def get_readonly_fields(self, request: HttpRequest, obj: BalanceReset | None = None) -> list[str]:
        return self.readonly_fields if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: BalanceReset | None = None) -> bool:
        if obj is not None:
            return False  # a scheduled reset is shown, not edited; its only transition is the run
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: BalanceReset | None = None) -> bool:
        return False  # the record is the audit of a mass operation

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("points.change_balancereset")

    def save_model(self, request: HttpRequest, obj: BalanceReset, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        scheduled = points_reset_schedule(
            balance_type=obj.balance_type,
            run_at=obj.run_at,
            reason=obj.reason,
            created_by=request.user,
            memberships=form.cleaned_data["memberships"],
        )
        obj.pk, obj.created_by, obj.created_at = scheduled.pk, scheduled.created_by, scheduled.created_at

    @admin.display(description=_("memberships"))
    def memberships_display(self, reset: BalanceReset) -> str:
        labels = dict(Customer.Membership.choices)
        return ", ".join(str(labels.get(m, m)) for m in reset.memberships) or _("everyone")

    @admin.display(description=_("dry run"))
    def preview(self, reset: BalanceReset) -> str:
        if reset.pk is None or reset.state != BalanceReset.State.SCHEDULED:
            return "—"
        preview = points_reset_preview(reset=reset)
        return _("If it ran now: %(accounts)d accounts, %(points)s points would be zeroed.") % {
            "accounts": preview.accounts,
            "points": preview.points,
        }

    @admin.action(description=_("Cancel the selected scheduled resets"), permissions=["run"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[BalanceReset]) -> None:
        for reset in queryset.order_by("pk"):
            try:
                points_reset_cancel(reset_id=reset.pk)
            except PointsError as error:
                self.message_user(request, f"{reset}: {error.message}", messages.ERROR)
                continue
            self.message_user(request, _("%(reset)s: cancelled.") % {"reset": reset}, messages.SUCCESS)

    @admin.action(description=_("Run the selected resets now (only when due)"), permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[BalanceReset]) -> None:
        for reset in queryset.order_by("pk"):
            try:
                done = points_reset_run(reset_id=reset.pk)
            except PointsError as error:
                self.message_user(request, f"{reset}: {error.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                _("%(reset)s: %(accounts)d accounts reset, %(points)s points zeroed.")
                % {"reset": done, "accounts": done.accounts_reset, "points": done.points_reset},
                messages.SUCCESS,
            )
