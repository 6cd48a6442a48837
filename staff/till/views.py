"""The till screen's views: thin — each validates a form, calls a selector or service and answers the workspace.

An htmx request (``HX-Request``) gets the workspace partial, anything else the whole page, so every step also works
as a plain form post. Refusals of the services (``ApplicationError``: unknown SKU, points above the maximum, a wrong
SMS code, an order that cannot be placed) are shown in the workspace next to what caused them, never as a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import wraps

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.actors import Actor
from core.exceptions import ApplicationError
from customers.models import Customer
from customers.services import sms_code_confirm, sms_code_request
from integrations.models import Channel, Store
from orders.models import OrderEvent
from programmes.calculator import MAX_LINES, CartLine, CartResult, cart_calculate
from programmes.calculator.reference import calculation_reference
from programmes.exceptions import RedemptionAboveMaximum
from staff.till.forms import (
    CheckoutForm,
    LineForm,
    RegisterConfirmForm,
    RegisterRequestForm,
    RemoveLineForm,
    SearchForm,
    StoreForm,
)
from staff.till.selectors import (
    Found,
    till_customer,
    till_customer_find,
    till_customer_summary,
    till_receipt,
    till_store,
    till_stores,
)
from staff.till.services import (
    till_channel_get_or_create,
    till_operation_key,
    till_order_place,
    till_sale_start,
)
from staff.till.state import ZERO, Item, Sale, sale_load, sale_save

PERMISSION = "staff.use_till"
PAGE = "staff/till/page.html"
WORKSPACE = "staff/till/_workspace.html"
# The calculator reads only the channel's kind; the store's real till channel is made when an order is placed.
TILL_KIND = Channel(kind=Channel.Kind.SHOWROOM_POS)


def till_view(view: Callable) -> Callable:
    """An admin view (staff login) for holders of ``staff.use_till``; 403 for other staff."""

    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return admin.site.admin_view(checked)


@dataclass
class Step:
    """What an answer shows besides the sale: the field to focus, a notice or error, the forms as submitted (with
    their errors), and the search's outcome."""

    focus: str = ""
    notice: str = ""
    error: str = ""
    forms: dict[str, forms.Form] = field(default_factory=dict)
    found: Found | None = None
    customer: Customer | None = None  # the sale's customer when the step has just read it


# --- views ---------------------------------------------------------------------------------------------------


@till_view
def page_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    return _answer(request, sale, store, Step())


@till_view
@require_POST
def store_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    form = StoreForm(request.POST, stores=till_stores(user=request.user))
    if not form.is_valid():
        return _answer(request, sale, store, Step(forms={"store": form}, focus="store"))
    chosen = form.cleaned_data["store"]
    if store is None or chosen.pk != store.pk:
        sale = till_sale_start(sale=sale, store=chosen)  # another store is another sale
    return _answer(request, sale, chosen, Step(notice=_("Selling in %(store)s.") % {"store": chosen.name}))


@till_view
@require_POST
def search_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    if store is None:
        return _no_store(request, sale)
    form = SearchForm(request.POST)
    if not form.is_valid():
        return _answer(request, sale, store, Step(forms={"search": form}, focus="q"))
    found = till_customer_find(term=form.cleaned_data["q"])
    sale.receipt_order_id = None
    sale.registration_phone = ""
    _customer_set(sale, found.customer)
    step = Step(forms={"search": form}, found=found, customer=found.customer)
    if found.redirected_from is not None:
        step.notice = _("This belonged to customer #%(old)s, merged into the record shown.") % {
            "old": found.redirected_from
        }
    return _answer(request, sale, store, step)


@till_view
@require_POST
def customer_clear_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    _customer_set(sale, None)
    sale.registration_phone = ""
    return _answer(request, sale, store, Step(focus="q"))


@till_view
@require_POST
def register_request_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    if store is None:
        return _no_store(request, sale)
    form = RegisterRequestForm(request.POST)
    if form.is_valid():
        try:
            sent = sms_code_request(phone=form.cleaned_data["phone"], actor=_actor(request, store))
        except ApplicationError as error:
            form.add_error(None, _error_text(error))
        else:
            sale.registration_phone = sent.phone.as_e164
            return _answer(
                request,
                sale,
                store,
                Step(
                    focus="code",
                    notice=_("A code was sent by SMS to %(phone)s: ask the customer for it.")
                    % {"phone": sent.phone.as_international},
                ),
            )
    return _answer(request, sale, store, Step(forms={"register_request": form}, focus="phone"))


@till_view
@require_POST
def register_confirm_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    if store is None:
        return _no_store(request, sale)
    form = RegisterConfirmForm(request.POST)
    if form.is_valid() and not sale.registration_phone:
        form.add_error(None, _("No code was requested: send the customer a code first."))
    elif form.is_valid():
        data = form.cleaned_data
        try:
            registration = sms_code_confirm(
                phone=sale.registration_phone,
                code=data["code"],
                name=data["name"],
                accept_marketing=data["accept_marketing"],
                store=store,
                actor=_actor(request, store),
            )
        except ApplicationError as error:
            form.add_error("code", _error_text(error))
        else:
            sale.registration_phone = ""
            _customer_set(sale, registration.customer)
            notice = (
                _("Registered: %(customer)s is a member now.")
                if registration.joined
                else _("%(customer)s was already a member.")
            ) % {"customer": registration.customer}
            return _answer(request, sale, store, Step(notice=notice, focus="sku", customer=registration.customer))
    return _answer(request, sale, store, Step(forms={"register_confirm": form}, focus=_first_error(form, "code")))


@till_view
@require_POST
def line_add_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    if store is None:
        return _no_store(request, sale)
    form = LineForm(request.POST)
    if not form.is_valid():
        return _answer(request, sale, store, Step(forms={"line": form}, focus=_first_error(form, "sku")))
    data = form.cleaned_data
    sale.receipt_order_id = None
    same = next(
        (
            item
            for item in sale.items
            if (item.sku, item.price, item.discount_percent) == (data["sku"], data["price"], data["discount_percent"])
        ),
        None,
    )
    if same is not None:
        same.quantity += data["quantity"]
    elif len(sale.items) >= MAX_LINES:
        form.add_error(None, _("At most %(max)d lines in a cart.") % {"max": MAX_LINES})
        return _answer(request, sale, store, Step(forms={"line": form}, focus="sku"))
    else:
        sale.items.append(
            Item(
                sku=data["sku"],
                name=form.product.name,
                quantity=data["quantity"],
                price=data["price"],
                discount_percent=data["discount_percent"],
            )
        )
    return _answer(request, sale, store, Step(focus="sku"))


@till_view
@require_POST
def line_remove_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    form = RemoveLineForm(request.POST)
    if form.is_valid() and form.cleaned_data["index"] < len(sale.items):
        del sale.items[form.cleaned_data["index"]]
    return _answer(request, sale, store, Step(focus="sku"))


@till_view
@require_POST
def redeem_view(request: HttpRequest) -> HttpResponse:
    """Set the points to spend: checked by the calculator against the cart's maximum."""
    sale, store = _sale(request)
    if store is None:
        return _no_store(request, sale)
    form = CheckoutForm(request.POST)
    if form.is_valid():
        redeem = form.cleaned_data["redeem"]
        try:
            _calculate(sale, _customer(sale), store, redeem=redeem)
        except ApplicationError as error:
            form.add_error("redeem", _error_text(error))
        else:
            sale.redeem = redeem
            return _answer(request, sale, store, Step(focus="redeem"))
    return _answer(request, sale, store, Step(forms={"checkout": form}, focus="redeem"))


@till_view
@require_POST
def place_view(request: HttpRequest) -> HttpResponse:
    """Place the sale. The posted token names it: a second submit of a placed sale shows that order's receipt
    (and ``order_place`` replays it if both submits raced)."""
    sale, store = _sale(request)
    if store is None:
        return _no_store(request, sale)
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        return _answer(request, sale, store, Step(forms={"checkout": form}, focus="redeem"))
    token = form.cleaned_data["token"]
    placed_before = _order_placed_with(token) if token and token != sale.token else None
    if placed_before is not None:
        sale.receipt_order_id = placed_before
        return _answer(request, sale, store, Step(notice=_("This sale was already placed."), focus="q"))
    if token != sale.token:
        form.add_error(None, _("The sale was changed in another window: check the cart and place it again."))
    elif not sale.items:
        form.add_error(None, _("The cart is empty: add a product first."))
    if form.errors:
        return _answer(request, sale, store, Step(forms={"checkout": form}, focus="sku"))
    try:
        placed = till_order_place(
            store=store,
            customer=_customer(sale),
            items=sale.items,
            redeem=form.cleaned_data["redeem"],
            number=sale.number,
            token=token,
            calculation=form.cleaned_data["calculation"],
            user=request.user,
        )
    except ApplicationError as error:
        form.add_error("redeem" if isinstance(error, RedemptionAboveMaximum) else None, _error_text(error))
        return _answer(request, sale, store, Step(forms={"checkout": form}, focus="redeem"))
    sale = till_sale_start(sale=sale, store=store)
    sale.receipt_order_id, sale.placed_token = placed.order.pk, token
    return _answer(
        request, sale, store, Step(notice=_("Order %(number)s placed.") % {"number": placed.order.number}, focus="q")
    )


@till_view
@require_POST
def new_sale_view(request: HttpRequest) -> HttpResponse:
    sale, store = _sale(request)
    if store is None:
        return _no_store(request, sale)
    sale = till_sale_start(sale=sale, store=store)
    sale.receipt_order_id = None
    return _answer(request, sale, store, Step(focus="q"))


# --- the sale and the answer -----------------------------------------------------------------------------------


def _sale(request: HttpRequest) -> tuple[Sale, Store | None]:
    """The session's sale and the store it is at: the remembered store if the user still works there, else their
    only store (a new sale), else None — the seller picks one."""
    sale = sale_load(request.session)
    store = till_store(user=request.user, store_id=sale.store_id)
    if store is None:
        return Sale(), None
    if sale.store_id != store.pk or not sale.token:
        sale = till_sale_start(sale=sale, store=store)
    return sale, store


def _no_store(request: HttpRequest, sale: Sale) -> HttpResponse:
    return _answer(request, sale, None, Step(error=_("Choose the store you work in first."), focus="store"))


def _customer(sale: Sale) -> Customer | None:
    return till_customer(customer_id=sale.customer_id) if sale.customer_id else None


def _customer_set(sale: Sale, customer: Customer | None) -> None:
    if (customer.pk if customer else None) != sale.customer_id:
        sale.redeem = ZERO  # another customer's points
    sale.customer_id = customer.pk if customer else None


def _actor(request: HttpRequest, store: Store) -> Actor:
    return Actor(user=request.user, channel=till_channel_get_or_create(store=store))


def _order_placed_with(token: str) -> int | None:
    return OrderEvent.objects.filter(operation_key=till_operation_key(token)).values_list("order_id", flat=True).first()


def _calculate(sale: Sale, customer: Customer | None, store: Store, *, redeem: Decimal) -> CartResult | None:
    """The cart as the calculator sees it for this customer at this store's till; None for an empty cart."""
    if not sale.items:
        if redeem > 0:
            raise RedemptionAboveMaximum(extra={"maximum": "0", "requested": str(redeem)})
        return None
    lines = [
        CartLine(sku=item.sku, quantity=item.quantity, price=item.price, discount_percent=item.discount_percent)
        for item in sale.items
    ]
    return cart_calculate(customer=customer, lines=lines, channel=TILL_KIND, store=store, redeem=redeem)


def _answer(request: HttpRequest, sale: Sale, store: Store | None, step: Step) -> HttpResponse:
    context = _workspace(request, sale, store, step)
    sale_save(request.session, sale)
    if request.headers.get("HX-Request") == "true":
        return render(request, WORKSPACE, context)
    return TemplateResponse(
        request,
        PAGE,
        {
            **admin.site.each_context(request),
            "title": _("Till"),
            "is_nav_sidebar_enabled": False,
            **context,
        },
    )


def _workspace(request: HttpRequest, sale: Sale, store: Store | None, step: Step) -> dict:
    stores = till_stores(user=request.user)
    context = {
        "sale": sale,
        "store": store,
        "step": step,
        "store_form": step.forms.get("store") or StoreForm(stores=stores, initial={"store": store}),
    }
    if store is None:
        context["has_stores"] = stores.exists()
        _focus(context["store_form"], "store")
        return context
    customer = step.customer if step.customer is not None else _customer(sale)
    sale.customer_id = customer.pk if customer else None  # gone or merged meanwhile
    result, cart_error = None, ""
    try:
        result = _calculate(sale, customer, store, redeem=sale.redeem)
    except RedemptionAboveMaximum as error:  # the cart or the balance changed since the points were set
        cart_error = _("The points to spend were reset: %(why)s") % {"why": _error_text(error)}
        sale.redeem = ZERO
        result = _calculate(sale, customer, store, redeem=ZERO)
    except ApplicationError as error:
        cart_error = _error_text(error)
    found = step.found
    register_phone = ""
    if found is not None and found.customer is None:
        register_phone = found.phone
    elif customer is not None and customer.membership == Customer.Membership.NON_MEMBER:
        register_phone = customer.phone.as_e164 if customer.phone else ""
    context.update(
        customer=customer,
        summary=till_customer_summary(customer=customer) if customer else None,
        found=found,
        result=result,
        calculation=calculation_reference(result) if result is not None else "",
        to_pay=result.total_amount - result.redeem if result is not None else ZERO,
        cart_error=cart_error,
        receipt=till_receipt(order_id=sale.receipt_order_id) if sale.receipt_order_id else None,
        search_form=step.forms.get("search") or SearchForm(),
        line_form=step.forms.get("line") or LineForm(initial={"quantity": 1}),
        checkout_form=step.forms.get("checkout") or CheckoutForm(initial={"redeem": _points(sale.redeem)}),
        register_request_form=step.forms.get("register_request")
        or RegisterRequestForm(initial={"phone": register_phone}),
        register_confirm_form=step.forms.get("register_confirm") or RegisterConfirmForm(),
        show_register=bool(step.forms.get("register_request")) or (found is not None and found.customer is None),
    )
    focus = step.focus or _default_focus(sale, customer, found)
    for name in (
        "store_form",
        "search_form",
        "line_form",
        "checkout_form",
        "register_request_form",
        "register_confirm_form",
    ):
        if focus in context[name].fields:
            _focus(context[name], focus)
            break
    context["focus"] = focus
    return context


def _default_focus(sale: Sale, customer: Customer | None, found: Found | None) -> str:
    if sale.registration_phone:
        return "code"
    if found is not None and found.customer is None:
        return "phone"
    if customer is None and not sale.items:
        return "q"
    return "sku"


def _focus(form: forms.Form, name: str) -> None:
    """Autofocus one field: htmx focuses it after the swap, the browser on a full page."""
    form.fields[name].widget.attrs["autofocus"] = True


def _first_error(form: forms.Form, default: str) -> str:
    return next((name for name in form.fields if name in form.errors), default)


def _points(value: Decimal) -> Decimal | str:
    """Points as the seller typed them: nothing for none, 4000 rather than 4000.00."""
    if value == 0:
        return ""
    return value.quantize(Decimal("1")) if value == value.to_integral_value() else value


def _error_text(error: ApplicationError) -> str:
    """The service's message with what the seller needs to act on it: the maximum, attempts left, the wait, and
    each field's problem."""
    parts = [error.message]
    extra = error.extra
    if "maximum" in extra:
        parts.append(_("At most %(maximum)s points.") % {"maximum": extra["maximum"]})
    if "attempts_left" in extra:
        parts.append(_("Attempts left: %(count)s.") % {"count": extra["attempts_left"]})
    if "retry_after" in extra:
        parts.append(_("Try again in %(seconds)s s.") % {"seconds": extra["retry_after"]})
    for problems in error.fields.values():
        parts.extend(problem["message"] for problem in problems)
    return " ".join(str(part) for part in parts)
