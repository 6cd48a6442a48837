from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from points.exceptions import PointsError
from points.forms import ADJUST_PERMISSION, PointsAdjustForm
from points.models import Account
from points.selectors import points_balance
from points.services import Actor, points_adjust

EXPIRING_WITHIN_DAYS = 30


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["phone", "name", "membership", "joined_at", "created_at"]
    list_filter = ["membership"]
    search_fields = ["=phone", "name"]
    readonly_fields = ["created_at", "updated_at", "points_balances"]
    show_full_result_count = False  # no COUNT(*) over millions of customers (F-STAFF-4)
    sortable_by = ["phone", "joined_at", "created_at"]
    fieldsets = [
        (None, {"fields": ["phone", "name", "membership", "joined_at", "created_at", "updated_at"]}),
        (_("Points"), {"fields": ["points_balances"]}),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None):
        return self.fieldsets if obj is not None else self.fieldsets[:1]

    def get_urls(self):
        adjust = path(
            "<path:object_id>/adjust-points/",
            self.admin_site.admin_view(self.adjust_points_view),
            name="customers_customer_adjust_points",
        )
        return [adjust, *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "can_adjust_points": request.user.has_perm(ADJUST_PERMISSION)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("balances"))
    def points_balances(self, customer: Customer) -> str:
        """Per balance type: available / pending / held / debt / expiring within 30 days (F-STAFF-2)."""
        if customer.pk is None:
            return "—"
        accounts = Account.objects.filter(customer=customer).select_related("balance_type").order_by("balance_type")
        balances = [
            (account.balance_type, points_balance(customer=customer, balance_type=account.balance_type.code))
            for account in accounts
        ]
        search = urlencode({"q": customer.phone.as_e164}) if customer.phone else ""
        links = format_html(
            '<p><a href="{}?{}">{}</a> · <a href="{}?{}">{}</a> · <a href="{}?{}">{}</a></p>',
            reverse("admin:points_lot_changelist"),
            search,
            _("Lots"),
            reverse("admin:points_entry_changelist"),
            search,
            _("Journal"),
            reverse("admin:points_hold_changelist"),
            search,
            _("Holds"),
        )
        if not balances:
            return format_html("<p>{}</p>{}", _("No points yet."), links)
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
