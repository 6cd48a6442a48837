"""Reads of the till screen: the stores a seller works for, the customer behind what was typed in the search box,
what the seller tells the customer about them (tier, perks, balances) and the receipt of a placed order."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from catalog.models import Product
from customers.exceptions import CustomerNotFound
from customers.models import Customer
from customers.phones import phone_or_none
from customers.selectors import customer_identify_match
from integrations.models import Store
from orders.models import Order, OrderLine
from points.selectors import Balance, points_balance
from programmes.exceptions import ProgrammeNotFound
from programmes.models import Programme
from programmes.selectors import TierStatus, customer_tier_status
from staff.services import staff_store_ids

ZERO = Decimal("0")


def till_stores(*, user: AbstractBaseUser) -> QuerySet[Store]:
    """The active stores the user may sell in: their store memberships, or every store for a user who is not
    confined to stores (a CRM manager)."""
    stores = Store.objects.filter(is_active=True).order_by("name", "pk")
    allowed = staff_store_ids(user)
    return stores if allowed is None else stores.filter(pk__in=allowed)


def till_store(*, user: AbstractBaseUser, store_id: int | None) -> Store | None:
    """The store the session remembers, if the user still may sell there; else their only store; else None."""
    stores = till_stores(user=user)
    if store_id is not None:
        store = stores.filter(pk=store_id).first()
        if store is not None:
            return store
    only = list(stores[:2])
    return only[0] if len(only) == 1 else None


@dataclass(frozen=True)
class Found:
    customer: Customer | None
    by: str  # "phone" or "card"; "" when nothing was found
    phone: str  # the typed term as an E.164 phone, "" when it is not a phone
    redirected_from: int | None = None  # the merged duplicate the phone or card belonged to


def till_customer_find(*, term: str) -> Found:
    """The customer whose phone (typed in any format: ``8 916 123 45 67``, ``+7 (916) 123-45-67``) or card number
    was typed — any customer, whichever store registered them: identifying is not seeing a store's data. A merged
    duplicate's phone or card leads to the survivor. Two queries when found (the match, the customer), by the
    indexed phone or card."""
    term = term.strip()
    phone = phone_or_none(term) if term else None
    phone_e164 = phone.as_e164 if phone is not None else ""
    attempts = ([("phone", {"phone": phone})] if phone is not None else []) + [("card", {"card": term})]
    for by, identifier in attempts:
        if not term:
            break
        try:
            match = customer_identify_match(**identifier)
        except CustomerNotFound:
            continue
        customer = Customer.objects.select_related("registration_store").get(pk=match.customer_id)
        return Found(customer=customer, by=by, phone=phone_e164, redirected_from=match.redirected_from)
    return Found(customer=None, by="", phone=phone_e164)


def till_customer(*, customer_id: int) -> Customer | None:
    """The sale's customer (the survivor if it was merged meanwhile), or None if it is gone."""
    customer = Customer.objects.select_related("registration_store").filter(pk=customer_id).first()
    if customer is not None and customer.merged_into_id is not None:
        return till_customer(customer_id=customer.merged_into_id)
    return customer


@dataclass(frozen=True)
class CustomerSummary:
    customer: Customer
    tier: TierStatus | None  # None: no programme for the customer's kind
    balance: Balance


def till_customer_summary(*, customer: Customer) -> CustomerSummary:
    """Membership, tier with its perks, and the balances (available, pending, held, debt) of the programme's
    balance type. Six queries."""
    try:
        tier = customer_tier_status(customer=customer)
    except ProgrammeNotFound:
        tier = None
    balance_type = tier.programme.balance_type.code if tier is not None else None
    return CustomerSummary(
        customer=customer, tier=tier, balance=points_balance(customer=customer, balance_type=balance_type)
    )


def till_product(*, sku: str) -> Product | None:
    return Product.objects.filter(sku=sku).only("sku", "name", "is_active").first()


@dataclass(frozen=True)
class Receipt:
    order: Order
    lines: list[OrderLine]
    to_pay: Decimal  # in money: the total less the points spent
    points_earned: Decimal
    points_active: bool  # the earned points are spendable now (a sale handed over at the till)
    balance: Balance | None  # the customer's balances after the order; None for an anonymous sale


def till_receipt(*, order_id: int) -> Receipt | None:
    order = (
        Order.objects.select_related("customer", "store")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_number", "part")))
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        return None
    lines = list(order.lines.all())
    earned = sum((line.points_to_earn for line in lines), ZERO)
    balance = None
    if order.customer is not None:
        balance_type = (
            Programme.objects.filter(customer_kind=order.customer.kind)
            .values_list("balance_type__code", flat=True)
            .first()
        )
        balance = points_balance(customer=order.customer, balance_type=balance_type)
    return Receipt(
        order=order,
        lines=lines,
        to_pay=order.total_amount - order.points_redeemed,
        points_earned=earned,
        points_active=all(line.points_unlocked for line in lines if line.points_to_earn > 0),
        balance=balance,
    )
