"""The customer list's actions (SPEC F-ID-4, F-ID-7, F-ID-8): join, block, unblock, anonymise and merge.

Each asks for a confirmation with a reason on its own page, then calls a service per customer; a customer the
service refuses is reported and left as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.actors import Actor
from core.exceptions import ApplicationError
from customers.admin.common import customer_link, form_page
from customers.forms import JoinForm, MergeForm, ReasonForm
from customers.models import Customer
from customers.services import customer_anonymise, customer_block, customer_join, customer_merge, customer_unblock
from points.models import Account

ACTION_BATCH_LIMIT = 100  # customers one admin action may change at once

Apply = Callable[[Customer, Actor, dict[str, Any]], bool]


@dataclass(frozen=True)
class BatchAction:
    """An action applied to each selected customer by one service call. ``apply`` returns False when the
    customer was already in the wanted state (nothing was done). ``done`` and ``unchanged`` are plural-aware
    messages taking ``count`` and ``names``."""

    name: str
    title: Any
    question: Any
    done: Any
    apply: Apply
    unchanged: Any = ""
    form_class: type[forms.Form] = ReasonForm
    warning: Any = ""
    personal_in_messages: bool = True  # False: messages name customers by id only


def _join(customer: Customer, actor: Actor, data: dict[str, Any]) -> bool:
    _customer, joined = customer_join(customer=customer, actor=actor, store=data.get("store"), reason=data["reason"])
    return joined


def _unblock(customer: Customer, actor: Actor, data: dict[str, Any]) -> bool:
    customer_unblock(customer=customer, actor=actor, reason=data["reason"])
    return True


def _moving_to(membership: str, service: Callable[..., Any]) -> Apply:
    """``apply`` for a service that moves the customer to ``membership``: False if the customer was there."""

    def apply(customer: Customer, actor: Actor, data: dict[str, Any]) -> bool:
        there_before = customer.membership == membership
        service(customer=customer, actor=actor, reason=data["reason"])
        return not there_before

    return apply


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
            done=ngettext_lazy(
                "%(count)d customer joined the programme: %(names)s.",
                "%(count)d customers joined the programme: %(names)s.",
                "count",
            ),
            unchanged=ngettext_lazy(
                "%(count)d customer was a member already: %(names)s.",
                "%(count)d customers were members already: %(names)s.",
                "count",
            ),
            apply=_join,
            form_class=JoinForm,
        ),
        BatchAction(
            name="block_customers",
            title=_("Block the selected customers"),
            question=_("Block these customers? They keep their points but cannot spend them until unblocked."),
            done=ngettext_lazy(
                "%(count)d customer blocked: %(names)s.", "%(count)d customers blocked: %(names)s.", "count"
            ),
            unchanged=ngettext_lazy(
                "%(count)d customer was blocked already: %(names)s.",
                "%(count)d customers were blocked already: %(names)s.",
                "count",
            ),
            apply=_moving_to(Customer.Membership.BLOCKED, customer_block),
        ),
        BatchAction(
            name="unblock_customers",
            title=_("Unblock the selected customers"),
            question=_("Unblock these customers? Members become members again, non-members non-members."),
            done=ngettext_lazy(
                "%(count)d customer unblocked: %(names)s.", "%(count)d customers unblocked: %(names)s.", "count"
            ),
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
            done=ngettext_lazy(
                "%(count)d customer anonymised: %(names)s.", "%(count)d customers anonymised: %(names)s.", "count"
            ),
            unchanged=ngettext_lazy(
                "%(count)d customer was anonymised already: %(names)s.",
                "%(count)d customers were anonymised already: %(names)s.",
                "count",
            ),
            apply=_moving_to(Customer.Membership.ANONYMISED, customer_anonymise),
            personal_in_messages=False,
        ),
    )
}


def names(customers: list[Customer], *, personal: bool = True, limit: int = 10) -> str:
    listed = ", ".join(
        f"#{customer.pk} {customer}" if personal else f"#{customer.pk}" for customer in customers[:limit]
    )
    return listed + (" …" if len(customers) > limit else "")


class CustomerActionsMixin:
    """The actions of ``CustomerAdmin``, each gated by its own permission."""

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
            compared=[(customer, balances[customer.pk]) for customer in customers],
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
                question=action.question,
                warning=action.warning,
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
        for some, message, level in (
            (changed, action.done, messages.SUCCESS),
            (unchanged, action.unchanged, messages.WARNING),
        ):
            if some:
                listed = names(some, personal=action.personal_in_messages)
                self.message_user(request, message % {"count": len(some), "names": listed}, level)
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
        **extra: Any,
    ) -> TemplateResponse:
        return form_page(
            self,
            request,
            form,
            [(None, {"fields": list(form.fields)})],
            template=template,
            title=title,
            customers=customers,
            action=action,
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            **extra,
        )
