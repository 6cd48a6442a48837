"""Orders in the admin (SPEC F-ORD, F-STAFF-4): the list, the order page with its lines, deliveries, payments,
events and the points ledger entries each line caused, and the staff actions — deliver, cancel or return lines,
attach an anonymous order to a customer.

Orders are never added or edited by hand: the page is read-only and every change goes through ``orders.services``
(the same services as the API) from a small form, as the staff user, with a reason. The orders table is big: the
list joins what it shows, sorts only by the indexed creation time, searches by exact values (number, phone, card)
and does not count the whole table.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.db.models.lookups import Exact
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.actors import Actor
from core.admin import PlannerEstimatePaginator, ReadOnlyAdmin, YesNoFilter
from core.exceptions import ApplicationError
from customers.models import Customer
from customers.phones import phone_or_none
from orders.forms import AttachCustomerForm, DeliverForm, LineChoice, LinesForm, StaffOperationForm, operation_key
from orders.models import Order, OrderEvent, OrderLine, Payment
from orders.services import order_attach_customer, order_cancel, order_deliver, order_return
from points.models import Allocation, Entry, Lot
from staff.admin_scoping import StoreScopedAdminMixin

OPERATE_PERMISSION = "orders.change_order"
ACTION_TEMPLATE = "admin/orders/order/action_form.html"


# --- the list ------------------------------------------------------------------------------------------------------


class KindFilter(admin.SimpleListFilter):
    """Orders by default; their deliveries (sub-orders) on demand."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return [("delivery", _("deliveries")), ("all", _("orders and deliveries"))]

    def choices(self, changelist):
        choices = list(super().choices(changelist))
        choices[0]["display"] = _("orders")  # no value: the default, orders only
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "all":
            return queryset
        if self.value() == "delivery":
            return queryset.filter(kind=Order.Kind.DELIVERY)
        return queryset.filter(kind=Order.Kind.ORDER)


class AnonymousFilter(YesNoFilter):
    title = _("customer known")
    parameter_name = "has_customer"
    field = "customer"


class OrderPaginator(PlannerEstimatePaginator):
    """The default list (orders, without their deliveries) of a big table shows the table's row estimate, like an
    unfiltered one: counting the orders among tens of millions of rows would scan them all. A filter PostgreSQL's
    planner expects to match many rows (a big store over a year) shows the planner's estimate; other filters, and
    small tables, count exactly."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and len(query.where.children) == 1 and _is_kind_order(query.where.children[0]):
            estimate = _table_estimate(query.model._meta.db_table)
            if estimate >= self.exact_below:
                return estimate
        return super().count


def _is_kind_order(condition) -> bool:
    target = getattr(getattr(condition, "lhs", None), "target", None)
    return isinstance(condition, Exact) and getattr(target, "name", "") == "kind" and condition.rhs == "order"


def _table_estimate(table: str) -> int:
    """The planner's row estimate of ``table`` on PostgreSQL; -1 elsewhere or when never analysed."""
    if connection.vendor != "postgresql":
        return -1
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return row[0] if row else -1


def customer_ids_with_phone(phone: str) -> list[int]:
    return list(Customer.objects.filter(phone=phone).values_list("pk", flat=True))


# --- the order's page: inlines ---------------------------------------------------------------------------------------


class OrderPartInline(admin.TabularInline):
    """Read-only rows of the order page, shown to whoever may see the order."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return list(self.fields)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("orders.view_order") or request.user.has_perm(OPERATE_PERMISSION)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class LineInline(OrderPartInline):
    model = OrderLine
    fk_name = "order"
    verbose_name_plural = _("lines")
    fields = [
        "line_number",
        "part",
        "sku",
        "name",
        "quantity",
        "price",
        "discount_percent",
        "amount",
        "points_redeemed",
        "points_to_earn",
        "status",
        "points_state",
        "delivery",
        "delivered_at",
        "closed_at",
        "reason",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderLine]:
        return super().get_queryset(request).select_related("lot", "delivery")

    @admin.display(description=_("points"))
    def points_state(self, line: OrderLine) -> str:
        if line.lot is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:points_lot_change", args=[line.lot_id]), line.lot.get_state_display()
        )


class DeliveredLineInline(LineInline):
    """On a delivery's page: the lines of its parent order it delivered."""

    fk_name = "delivery"
    verbose_name_plural = _("delivered lines")


class DeliveryInline(OrderPartInline):
    model = Order
    fk_name = "parent"
    verbose_name = _("delivery")
    verbose_name_plural = _("deliveries")
    fields = ["number", "created_at", "status", "total_amount", "points_redeemed", "points_to_earn"]
    show_change_link = True
    ordering = ["created_at", "pk"]


class PaymentInline(OrderPartInline):
    model = Payment
    fields = ["external_id", "method", "amount", "status", "paid_at"]


class EventInline(OrderPartInline):
    model = OrderEvent
    fk_name = "order"
    verbose_name_plural = _("history")
    fields = ["created_at", "kind", "who", "reason", "lines", "result", "operation_key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderEvent]:
        return super().get_queryset(request).select_related("actor_user", "actor_channel", "result")

    @admin.display(description=_("by"))
    def who(self, event: OrderEvent) -> str:
        return str(event.actor_user or event.actor_channel or _("system"))


# --- the order's page: the ledger entries its lines caused -----------------------------------------------------------


@dataclass
class LedgerGroup:
    """Journal lines that touched one lot (the points a line earns) or one redemption and its refunds."""

    title: str
    lines: list[OrderLine]
    rows: list[tuple[Entry, Decimal | None]] = field(default_factory=list)  # (entry, change of the lot)


def _line_label(line: OrderLine) -> str:
    return f"{line.line_number}.{line.part} {line.sku}"


def order_ledger(lines: list[OrderLine]) -> list[LedgerGroup]:
    """For each lot of ``lines`` the journal lines that changed it (accrual, unlock, split, cancellation, clawback,
    and, after a merge, those of its copy), then each redemption spent on them with its refunds. Three queries
    whatever the number of lines."""
    lots: dict[int, Lot] = {line.lot_id: line.lot for line in lines if line.lot_id is not None}
    lot_ids = {*lots, *(lot.moved_to_id for lot in lots.values() if lot.moved_to_id is not None)}
    allocations: dict[int, list[Allocation]] = defaultdict(list)
    if lot_ids:
        for allocation in (
            Allocation.objects.filter(lot_id__in=lot_ids)
            .select_related("entry__actor_user", "entry__actor_channel")
            .order_by("entry_id", "pk")  # the journal's order (an entry's time is its operation's, not always later)
        ):
            allocations[allocation.lot_id].append(allocation)
    groups = []
    for lot_id, lot in lots.items():
        lot_lines = [line for line in lines if line.lot_id == lot_id]
        group = LedgerGroup(
            title=_("Lot #%(lot)s (%(state)s) of line %(lines)s")
            % {"lot": lot_id, "state": lot.get_state_display(), "lines": ", ".join(map(_line_label, lot_lines))},
            lines=lot_lines,
        )
        touching = [*allocations[lot_id], *(allocations[lot.moved_to_id] if lot.moved_to_id else [])]
        group.rows = [(allocation.entry, allocation.remaining_delta) for allocation in touching]
        groups.append(group)

    redemption_ids = sorted({line.redemption_id for line in lines if line.redemption_id is not None})
    if redemption_ids:
        by_redemption: dict[int, list[Entry]] = defaultdict(list)
        for entry in (
            Entry.objects.filter(Q(pk__in=redemption_ids) | Q(reverses_id__in=redemption_ids))
            .select_related("actor_user", "actor_channel")
            .order_by("pk")
        ):
            by_redemption[entry.reverses_id or entry.pk].append(entry)
        for redemption_id in redemption_ids:
            spent_on = [line for line in lines if line.redemption_id == redemption_id]
            groups.append(
                LedgerGroup(
                    title=_("Points redeemed on lines %(lines)s and their refunds")
                    % {"lines": ", ".join(map(_line_label, spent_on))},
                    lines=spent_on,
                    rows=[(entry, None) for entry in by_redemption[redemption_id]],
                )
            )
    return groups


# --- the staff actions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinesAction:
    """One of the staff actions on lines: which lines it takes and which service it calls."""

    name: str
    title: Any
    submit: Any
    statuses: tuple[str, ...]
    form_class: type[LinesForm]
    run: Callable[[Order, LinesForm, Actor], Any]
    done: Any


def _deliver(order: Order, form: DeliverForm, actor: Actor) -> Order:
    return order_deliver(
        order=order,
        lines=form.requests,
        operation_key=form.operation_key,
        number=form.cleaned_data["number"],
        delivered_at=form.cleaned_data["delivered_at"],
        reason=form.cleaned_data["reason"],
        actor=actor,
    )


def _cancel(order: Order, form: LinesForm, actor: Actor) -> Order:
    return order_cancel(
        order=order,
        lines=form.requests,
        operation_key=form.operation_key,
        reason=form.cleaned_data["reason"],
        actor=actor,
    )


def _return(order: Order, form: LinesForm, actor: Actor) -> Order:
    return order_return(
        order=order,
        lines=form.requests,
        operation_key=form.operation_key,
        reason=form.cleaned_data["reason"],
        actor=actor,
    )


LINES_ACTIONS = {
    action.name: action
    for action in (
        LinesAction(
            name="deliver",
            title=_("Deliver lines"),
            submit=_("Deliver"),
            statuses=(OrderLine.Status.PLACED,),
            form_class=DeliverForm,
            run=_deliver,
            done=_("Lines %(lines)s delivered."),
        ),
        LinesAction(
            name="cancel",
            title=_("Cancel lines"),
            submit=_("Cancel the lines"),
            statuses=(OrderLine.Status.PLACED,),
            form_class=LinesForm,
            run=_cancel,
            done=_("Lines %(lines)s cancelled."),
        ),
        LinesAction(
            name="return",
            title=_("Return lines"),
            submit=_("Return"),
            statuses=(OrderLine.Status.DELIVERED,),
            form_class=LinesForm,
            run=_return,
            done=_("Lines %(lines)s returned."),
        ),
    )
}


def line_choices(order: Order, statuses: tuple[str, ...]) -> list[LineChoice]:
    """The order's line numbers with something in ``statuses``, with the quantity they have in them (the parts
    of a line share its SKU and name). One query."""
    rows = (
        order.lines.filter(status__in=statuses)
        .values("line_number", "sku", "name")
        .annotate(available=Sum("quantity"))
        .order_by("line_number")
    )
    return [LineChoice(**row) for row in rows]


# --- the admin -------------------------------------------------------------------------------------------------------


@admin.register(Order)
class OrderAdmin(StoreScopedAdminMixin, ReadOnlyAdmin):
    list_display = [
        "number",
        "kind",
        "channel",
        "customer_or_phone",
        "store",
        "status",
        "total_amount",
        "points_redeemed",
        "points_to_earn",
        "created_at",
        "offline",
    ]
    list_select_related = ["channel", "customer", "store"]
    list_filter = [
        KindFilter,
        "channel",
        "store",
        "status",
        ("created_at", admin.DateFieldListFilter),
        "offline",
        "unlocks_on",
        AnonymousFilter,
    ]
    search_fields = ["=number"]  # shows the search box; the search itself is below
    search_help_text = _("Order number, phone (any format) or card number: exact.")
    sortable_by = ["created_at"]
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice would scan the table
    paginator = OrderPaginator
    change_form_template = "admin/orders/order/change_form.html"
    fieldsets = [
        (None, {"fields": [("number", "kind", "parent"), ("channel", "store", "seller"), "status", "created_at"]}),
        (_("Customer"), {"fields": ["customer", ("phone", "card_number")]}),
        (
            _("Amounts"),
            {"fields": [("total_amount", "points_redeemed", "points_to_earn"), ("unlocks_on", "hold")]},
        ),
        (_("Receipt"), {"fields": [("offline", "received_at", "updated_at")], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # The page's read-only links (channel, store, customer, parent, hold) come with the order.
        return super().get_queryset(request).select_related("channel", "store", "customer", "parent", "hold")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Order], search_term: str):
        """Exact, through indexes: the number, an anonymous order's phone or card, or its customer's phone or
        card (resolved to customer ids first: a join inside the OR would scan the orders)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(number=term)
        customer_ids = list(Customer.objects.filter(card_number=term).values_list("pk", flat=True))
        condition |= Q(card_number=term, customer__isnull=True)
        phone = phone_or_none(term)
        if phone is not None:
            condition |= Q(phone=phone.as_e164, customer__isnull=True)
            customer_ids += customer_ids_with_phone(phone.as_e164)
        if customer_ids:
            condition |= Q(customer_id__in=customer_ids)
        return queryset.filter(condition), False

    @admin.display(description=_("customer"))
    def customer_or_phone(self, order: Order) -> str:
        if order.customer is not None:
            return format_html(
                '<a href="{}">{}</a>',
                reverse("admin:customers_customer_change", args=[order.customer_id]),
                order.customer,
            )
        return str(order.phone or order.card_number or "—")

    # --- the order's page ---

    def get_inlines(self, request: HttpRequest, obj: Order | None) -> list:
        if obj is not None and obj.kind == Order.Kind.DELIVERY:
            return [DeliveredLineInline]
        return [LineInline, DeliveryInline, PaymentInline, EventInline]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        order = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if order is not None:
            lines = list(
                (order.delivered_lines if order.kind == Order.Kind.DELIVERY else order.lines)
                .select_related("lot")
                .order_by("line_number", "part")
            )
            context["ledger_groups"] = order_ledger(lines)
            context["order_actions"] = self._actions_available(request, order, lines)
        return super().change_view(request, object_id, form_url, context)

    def _actions_available(self, request: HttpRequest, order: Order, lines: list[OrderLine]) -> list[tuple]:
        if order.kind != Order.Kind.ORDER or not self.has_operate_permission(request):
            return []
        statuses = {line.status for line in lines}
        available = [
            (reverse(f"admin:orders_order_{action.name}", args=[order.pk]), action.title)
            for action in LINES_ACTIONS.values()
            if statuses & set(action.statuses)
        ]
        if order.customer_id is None:
            available.append((reverse("admin:orders_order_attach_customer", args=[order.pk]), _("Attach customer")))
        return available

    # --- the staff actions ---

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(OPERATE_PERMISSION)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        urls = [
            path(
                f"<path:object_id>/{name}/",
                wrap(self.lines_view),
                {"action": name},
                name=f"orders_order_{name}",
            )
            for name in LINES_ACTIONS
        ]
        urls.append(
            path(
                "<path:object_id>/attach-customer/",
                wrap(self.attach_customer_view),
                name="orders_order_attach_customer",
            )
        )
        return [*urls, *super().get_urls()]

    def _order_for_action(self, request: HttpRequest, object_id: str) -> Order | HttpResponse:
        if not self.has_operate_permission(request):
            raise PermissionDenied
        order = self.get_object(request, unquote(object_id))
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if order.kind != Order.Kind.ORDER:
            self.message_user(request, _("A delivery's lines are changed on its parent order."), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.parent_id]))
        return order

    def _submitted_before(self, request: HttpRequest, order: Order) -> HttpResponse | None:
        """A form posted again (a double click, the browser's back and resend) after it was carried out: the
        service would change nothing; say so rather than refuse lines that are no longer offered."""
        try:
            key = operation_key(uuid.UUID(request.POST.get("token", "")))
        except ValueError:
            return None  # the form says what is wrong with it
        if not OrderEvent.objects.filter(order=order, operation_key=key).exists():
            return None
        self.message_user(request, _("This was already done."), messages.WARNING)
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))

    def lines_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """Deliver, cancel or return lines of the order through ``orders.services``, as the staff user."""
        order = self._order_for_action(request, object_id)
        if isinstance(order, HttpResponse):
            return order
        if request.method == "POST" and (done := self._submitted_before(request, order)):
            return done
        spec = LINES_ACTIONS[action]
        choices = line_choices(order, spec.statuses)
        form = spec.form_class(request.POST if request.method == "POST" else None, lines=choices)
        if form.is_bound and form.is_valid():
            try:
                spec.run(order, form, Actor(user=request.user))
            except ApplicationError as error:
                form.add_service_error(error)
            else:
                numbers = ", ".join(str(request.line_number) for request in form.requests)
                self.log_change(request, order, f"{spec.title}: {numbers}. {form.cleaned_data['reason']}")
                self.message_user(request, spec.done % {"lines": numbers}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))
        fieldsets = [(_("Lines"), {"fields": form.line_rows()})]
        if form.extra_field_names():
            fieldsets.append((None, {"fields": form.extra_field_names()}))
        fieldsets.append((None, {"fields": ["reason"]}))
        return self._action_page(request, order, form, fieldsets, title=spec.title, submit=spec.submit)

    def attach_customer_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Give an anonymous order to a customer found by phone or card (F-ORD-10): its points follow."""
        order = self._order_for_action(request, object_id)
        if isinstance(order, HttpResponse):
            return order
        if request.method == "POST" and (done := self._submitted_before(request, order)):
            return done
        form = AttachCustomerForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                order_attach_customer(
                    order=order,
                    customer=form.customer,
                    operation_key=form.operation_key,
                    reason=form.cleaned_data["reason"],
                    actor=Actor(user=request.user),
                )
            except ApplicationError as error:
                form.add_service_error(error)
            else:
                self.log_change(
                    request, order, f"{_('Attach customer')}: #{form.customer.pk}. {form.cleaned_data['reason']}"
                )
                self.message_user(
                    request, _("The order now belongs to %(customer)s.") % {"customer": form.customer}, messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))
        fieldsets = [(None, {"fields": ["phone", "card", "reason"]})]
        return self._action_page(request, order, form, fieldsets, title=_("Attach customer"), submit=_("Attach"))

    def _action_page(
        self, request: HttpRequest, order: Order, form: StaffOperationForm, fieldsets: list, *, title, submit
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            ACTION_TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "title": f"{title}: {order.number}",
                "subtitle": None,
                "action_title": title,
                "submit_label": submit,
                "opts": self.opts,
                "original": order,
                "change_url": reverse("admin:orders_order_change", args=[order.pk]),
                "form": form,
                "adminform": helpers.AdminForm(form, fieldsets, {}),
                "media": self.media + form.media,
            },
            status=200,
        )


from orders import admin_reservations  # noqa: E402, F401 (registers the reservations admin)
