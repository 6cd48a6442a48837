"""Joining the programme, blocking and unblocking (F-ID-4, F-CMP-1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import SYSTEM, Actor
from customers.exceptions import MembershipChangeInvalid
from customers.models import Customer
from customers.services.history import record_change
from customers.services.profile import customer_lock
from integrations.models import Store
from points.models import Lot, LotKind
from points.services import points_accrue, points_lift_restriction
from programmes.exceptions import ProgrammeNotFound
from programmes.selectors import customer_tier

BALANCE_TYPE_BY_KIND = {Customer.Kind.RETAIL: "retail", Customer.Kind.B2B: "b2b"}


def customer_balance_type(customer: Customer) -> str:
    """The balance type a customer's programme points go to (retail or B2B, F-LED-11)."""
    return BALANCE_TYPE_BY_KIND.get(customer.kind, settings.POINTS_DEFAULT_BALANCE_TYPE)


def welcome_bonus_amount(customer: Customer) -> Decimal | int:
    """The welcome bonus on joining (F-CMP-1, F-TIER-1): the customer's tier's (the entry tier's for a new
    member); ``LOYALTY_WELCOME_BONUS_POINTS`` where the customer's kind has no programme."""
    try:
        return customer_tier(customer=customer).tier.welcome_bonus
    except ProgrammeNotFound:
        return settings.LOYALTY_WELCOME_BONUS_POINTS


def customer_join(
    *,
    customer: Customer,
    actor: Actor = SYSTEM,
    store: Store | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> tuple[Customer, bool]:
    """Make a non-member a member: points accrued while a non-member become spendable (the members-only
    restriction is lifted through the ledger) and the welcome bonus is granted — its own lifetime, spendable
    on the first order only. Returns (customer, joined now). A member joining again changes nothing; blocked
    and anonymised customers cannot join. One transaction: all of it happens or none."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = customer_lock(customer.pk)
        if locked.membership == Customer.Membership.MEMBER:
            return locked, False
        if locked.membership != Customer.Membership.NON_MEMBER:
            raise MembershipChangeInvalid(extra={"membership": locked.membership})
        locked.membership = Customer.Membership.MEMBER
        locked.joined_at = now
        changes = {"membership": [Customer.Membership.NON_MEMBER, Customer.Membership.MEMBER]}
        if actor.channel is not None and locked.join_channel_id != actor.channel.pk:
            changes["join_channel"] = [locked.join_channel_id, actor.channel.pk]
            locked.join_channel = actor.channel
        if store is not None and locked.registration_store_id != store.pk:
            changes["registration_store"] = [locked.registration_store_id, store.pk]
            locked.registration_store = store
        locked.save()
        record_change(locked, action="join", actor=actor, now=now, changes=changes, reason=reason)
        points_lift_restriction(
            customer=locked,
            restriction=Lot.Restriction.MEMBERS_ONLY,
            operation_key=f"join:{locked.pk}:unrestrict",
            actor=actor,
            reason="joined the programme",
            now=now,
        )
        amount = welcome_bonus_amount(locked)
        if amount > 0:
            points_accrue(
                customer=locked,
                amount=amount,
                kind=LotKind.WELCOME,
                balance_type=customer_balance_type(locked),
                restriction=Lot.Restriction.FIRST_ORDER,
                operation_key=f"welcome:{locked.pk}",
                source_type="customer",
                source_id=str(locked.pk),
                actor=actor,
                reason="welcome bonus",
                now=now,
            )
    return locked, True


def customer_block(*, customer: Customer, actor: Actor, reason: str, now: datetime | None = None) -> Customer:
    """Stop a customer spending points (fraud, a dispute); the points stay. Reason required."""
    return _set_membership(customer, Customer.Membership.BLOCKED, actor, reason, now, action="block")


def customer_unblock(*, customer: Customer, actor: Actor, reason: str, now: datetime | None = None) -> Customer:
    """Back to member (or non-member, if the customer never joined)."""
    return _set_membership(customer, None, actor, reason, now, action="unblock")


def _set_membership(customer, membership, actor, reason, now, *, action) -> Customer:
    from points.services.journal import require_reason

    require_reason(actor, reason)
    now = now or timezone.now()
    with transaction.atomic():
        locked = customer_lock(customer.pk)
        if action == "unblock":
            if locked.membership != Customer.Membership.BLOCKED:
                raise MembershipChangeInvalid(extra={"membership": locked.membership})
            membership = Customer.Membership.MEMBER if locked.joined_at else Customer.Membership.NON_MEMBER
        elif locked.membership == Customer.Membership.BLOCKED:
            return locked
        before, locked.membership = locked.membership, membership
        locked.save(update_fields=["membership", "updated_at"])
        record_change(
            locked, action=action, actor=actor, now=now, changes={"membership": [before, membership]}, reason=reason
        )
    return locked
