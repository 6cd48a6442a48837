"""The customer page's "Adjust points" form (SPEC F-STAFF-3): a manual correction through ``points_adjust``,
audited in the journal with the staff user and the reason."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from core.actors import Actor
from customers.admin.common import form_page
from points.exceptions import PointsError
from points.forms import ADJUST_PERMISSION, PointsAdjustForm
from points.services import points_adjust


class AdjustPointsMixin:
    """``<customer>/adjust-points/`` in ``CustomerAdmin``, for staff holding ``ADJUST_PERMISSION``."""

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

        return form_page(
            self,
            request,
            form,
            [(None, {"fields": ["amount", "reason", "balance_type", "expires_at"]})],
            template="admin/customers/customer/adjust_points.html",
            title=_("Adjust points: %(customer)s") % {"customer": customer},
            original=customer,
            change_url=change_url,
        )
