"""The rule admin's "Try it" form: a sample cart calculated by ``programmes.calculator.cart_calculate`` — per line the
amount, the most that may be paid in points with the rule that limits it and every cap considered, the points earned
and why; the totals and the spendable balance. Optionally "as of" a past moment. Writes nothing.

At ``/admin/programmes/earningrule/try/``, linked from the rule changelists; for staff who may view earning rules.
A refusal of the calculator (an invalid line, more points than may be spent, no programme) is shown on the form.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from core.exceptions import ApplicationError
from integrations.models import Channel
from programmes.calculator import CartResult, cart_calculate
from programmes.exceptions import CartInvalid, RedemptionAboveMaximum
from programmes.forms import TryItForm
from programmes.models import EarningRule

TEMPLATE = "admin/programmes/rules/try_it.html"
PERMISSION = "programmes.view_earningrule"


def try_it_view(admin_site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = TryItForm(request.POST if request.method == "POST" else None)
    result = calculate(form) if form.is_bound and form.is_valid() else None
    fieldsets = [
        (None, {"fields": ["customer", ("channel_kind", "store"), "moment"]}),
        (_("Points"), {"fields": [("spendable_balance", "redeem"), "first_order"]}),
        (_("Cart"), {"fields": ["lines"]}),
    ]
    return TemplateResponse(
        request,
        TEMPLATE,
        {
            **admin_site.each_context(request),
            "title": _("Try the rules on a cart"),
            "opts": EarningRule._meta,
            "form": form,
            "adminform": helpers.AdminForm(form, fieldsets, {}),
            "media": form.media,
            "result": result,
        },
    )


def calculate(form: TryItForm) -> CartResult | None:
    """The cart of a valid form, or None with the calculator's refusal on the form."""
    data = form.cleaned_data
    kind = data["channel_kind"]
    try:
        return cart_calculate(
            customer=data["customer"],
            lines=data["lines"],
            channel=Channel(kind=kind) if kind else None,
            store=data["store"],
            at=data["moment"],
            redeem=data["redeem"],
            first_order=data["first_order"],
            spendable_balance=data["spendable_balance"],
        )
    except CartInvalid as error:
        form.add_error("lines", _line_errors(form, error))
    except RedemptionAboveMaximum as error:
        form.add_error(
            "redeem",
            _("%(message)s At most %(maximum)s.") % {"message": error.message, "maximum": error.extra["maximum"]},
        )
    except ApplicationError as error:
        form.add_error(None, error.message)
    return None


def _line_errors(form: TryItForm, error: CartInvalid) -> list[str]:
    """``lines.2.quantity`` → "Row 3: …" (the row of the text the line came from)."""
    messages = []
    for key, items in error.fields.items():
        parts = key.split(".")
        for item in items:
            if len(parts) >= 2 and parts[1].isdigit():
                row = form.row_of(int(parts[1]))
                messages.append(_("Row %(row)d: %(problem)s") % {"row": row, "problem": item["message"]})
            else:
                messages.append(item["message"])
    return messages or [error.message]
