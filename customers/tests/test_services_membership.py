"""Joining converts a non-member's restricted points and grants the welcome bonus once; block and unblock."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from core.actors import SYSTEM
from customers.exceptions import CustomerAnonymised, MembershipChangeInvalid
from customers.models import Customer, CustomerChange
from customers.services import customer_anonymise, customer_block, customer_join, customer_unblock
from customers.tests.factories import CustomerFactory, NonMemberFactory, StoreFactory
from points.exceptions import InsufficientPoints, ReasonRequired
from points.models import Entry, Lot, LotKind
from points.services import points_accrue, points_reconcile, points_redeem, points_unlock
from points.tests.helpers import D, buckets, key
from programmes.models import Tier

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def end_of_business_day(moment: datetime) -> datetime:
    """The Moscow midnight that ends the Moscow day ``moment`` falls on."""
    moscow = ZoneInfo("Europe/Moscow")
    return datetime.combine(moment.astimezone(moscow).date() + timedelta(days=1), time.min, tzinfo=moscow)


def accrue(customer, amount, **kwargs):
    return points_accrue(
        customer=customer, amount=amount, kind="purchase", operation_key=key("accrue"), now=NOW, **kwargs
    ).lot


def redeem(customer, amount, **kwargs):
    return points_redeem(customer=customer, amount=amount, operation_key=key("redeem"), now=NOW, **kwargs)


def test_joining_lifts_the_members_only_restriction_through_an_unrestrict_entry(site_actor):
    customer = NonMemberFactory()
    active = accrue(customer, 100)
    pending = accrue(customer, 50, pending=True, source_type="order_line", source_id="7")
    assert {active.restriction, pending.restriction} == {Lot.Restriction.MEMBERS_ONLY}

    joined, now_member = customer_join(customer=customer, actor=site_actor, reason="till", now=NOW)

    assert (now_member, joined.membership, joined.joined_at) == (True, Customer.Membership.MEMBER, NOW)
    entry = Entry.objects.get(kind=Entry.Kind.UNRESTRICT)
    assert (entry.amount, entry.available_delta, entry.pending_delta, entry.operation_key) == (
        D(150),
        D(0),
        D(0),
        f"join:{customer.pk}:unrestrict",
    )
    assert sorted((a.lot_id, a.remaining_delta, a.held_delta) for a in entry.allocations.all()) == [
        (active.pk, D(0), D(0)),
        (pending.pk, D(0), D(0)),
    ]
    assert set(Lot.objects.filter(pk__in=[active.pk, pending.pk]).values_list("restriction", flat=True)) == {""}
    assert points_reconcile() == []


def test_joining_grants_a_welcome_lot_for_the_first_order_expiring_in_90_days_at_day_end():
    customer = NonMemberFactory()

    customer_join(customer=customer, now=NOW)

    welcome = Lot.objects.get(kind=LotKind.WELCOME)
    assert (welcome.amount, welcome.remaining, welcome.state, welcome.restriction) == (
        D(500),
        D(500),
        Lot.State.ACTIVE,
        Lot.Restriction.FIRST_ORDER,
    )
    assert (welcome.source_type, welcome.source_id) == ("customer", str(customer.pk))
    assert welcome.expires_at == end_of_business_day(NOW + timedelta(days=90))
    assert Entry.objects.get(kind=Entry.Kind.ACCRUE).operation_key == f"welcome:{customer.pk}"
    assert buckets(customer) == (D(500), D(0), D(0), D(0))
    assert points_reconcile() == []


def test_a_non_member_cannot_spend_and_after_joining_spends_the_ex_restricted_points():
    customer = NonMemberFactory()
    accrue(customer, 100)

    with pytest.raises(InsufficientPoints) as refused:
        redeem(customer, 10)
    customer_join(customer=customer, now=NOW)
    customer.refresh_from_db()
    redeem(customer, 100)

    assert refused.value.extra == {"spendable": "0.00", "requested": "10.00"}
    # What is left is the welcome bonus: only for the first order.
    with pytest.raises(InsufficientPoints):
        redeem(customer, 1)
    redeem(customer, 500, first_order=True)
    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert points_reconcile() == []


def test_pending_points_of_a_non_member_unlock_unrestricted_after_joining():
    customer = NonMemberFactory()
    accrue(customer, 80, pending=True, source_type="order_line", source_id="9")
    customer_join(customer=customer, now=NOW)

    points_unlock(operation_key=key("unlock"), source_type="order_line", source_id="9", now=NOW)
    redeem(customer, 80)

    assert buckets(customer) == (D(500), D(0), D(0), D(0))


def test_joining_writes_history_with_the_channel_and_store(site_actor):
    customer = NonMemberFactory()
    store = StoreFactory(code="msk-2")

    customer_join(customer=customer, actor=site_actor, store=store, reason="showroom", now=NOW)

    change = CustomerChange.objects.get(customer=customer)
    assert (change.action, change.reason, change.actor_channel, change.created_at) == (
        "join",
        "showroom",
        site_actor.channel,
        NOW,
    )
    assert change.changes == {
        "membership": ["non_member", "member"],
        "join_channel": [None, site_actor.channel.pk],
        "registration_store": [None, store.pk],
    }


def test_joining_again_changes_nothing_and_grants_no_second_bonus():
    customer = NonMemberFactory()
    accrue(customer, 100)
    customer_join(customer=customer, now=NOW)
    entries = Entry.objects.count()

    again, now_member = customer_join(customer=customer, now=NOW + timedelta(days=1))

    assert (now_member, again.joined_at) == (False, NOW)
    assert Entry.objects.count() == entries
    assert Lot.objects.filter(kind=LotKind.WELCOME).count() == 1
    assert CustomerChange.objects.filter(customer=customer).count() == 1


def test_a_member_blocked_and_unblocked_does_not_join_again(staff):
    customer = NonMemberFactory()
    customer_join(customer=customer, now=NOW)
    customer_block(customer=customer, actor=staff, reason="dispute")
    customer_unblock(customer=customer, actor=staff, reason="resolved")

    _, now_member = customer_join(customer=customer, now=NOW)

    assert now_member is False
    assert Lot.objects.filter(kind=LotKind.WELCOME).count() == 1


def test_a_b2b_non_member_gets_the_welcome_bonus_in_b2b_points_and_both_accounts_unrestricted():
    customer = NonMemberFactory(kind="b2b")
    retail = accrue(customer, 10, balance_type="retail")
    b2b = accrue(customer, 20, balance_type="b2b")

    customer_join(customer=customer, now=NOW)

    assert list(Entry.objects.filter(kind=Entry.Kind.UNRESTRICT).order_by("operation_seq").values_list(
        "account__balance_type__code", "amount", "operation_seq"
    )) == [("retail", D(10), 0), ("b2b", D(20), 1)]  # fmt: skip
    assert set(Lot.objects.filter(pk__in=[retail.pk, b2b.pk]).values_list("restriction", flat=True)) == {""}
    assert Lot.objects.get(kind=LotKind.WELCOME).account.balance_type.code == "b2b"
    assert points_reconcile() == []


def test_no_welcome_lot_when_the_tiers_bonus_is_zero():
    customer = NonMemberFactory()
    Tier.objects.filter(programme__customer_kind="retail", rank=0).update(welcome_bonus=0)

    customer_join(customer=customer, now=NOW)

    assert not Lot.objects.exists()


def test_a_blocked_customer_cannot_join_and_nothing_changes(staff):
    customer = NonMemberFactory()
    accrue(customer, 100)
    customer_block(customer=customer, actor=staff, reason="fraud")

    with pytest.raises(MembershipChangeInvalid) as refused:
        customer_join(customer=customer, now=NOW)

    assert refused.value.extra == {"membership": "blocked"}
    assert Lot.objects.get().restriction == Lot.Restriction.MEMBERS_ONLY
    assert not Entry.objects.filter(kind=Entry.Kind.UNRESTRICT).exists()


def test_an_anonymised_customer_cannot_join(staff):
    customer = NonMemberFactory()
    customer_anonymise(customer=customer, actor=staff, reason="request")

    with pytest.raises(CustomerAnonymised):
        customer_join(customer=customer, now=NOW)

    assert not Lot.objects.exists()


# --- block / unblock ------------------------------------------------------------------------------------


def test_a_blocked_member_keeps_its_points_but_cannot_spend_until_unblocked(staff):
    customer = CustomerFactory()
    accrue(customer, 100)

    customer_block(customer=customer, actor=staff, reason="fraud check", now=NOW)
    with pytest.raises(InsufficientPoints):
        redeem(customer, 10)
    unblocked = customer_unblock(customer=customer, actor=staff, reason="checked", now=NOW)
    redeem(customer, 10)

    assert unblocked.membership == Customer.Membership.MEMBER
    assert buckets(customer) == (D(90), D(0), D(0), D(0))
    assert [(c.action, c.changes, c.reason, c.actor_user) for c in CustomerChange.objects.order_by("pk")] == [
        ("block", {"membership": ["member", "blocked"]}, "fraud check", staff.user),
        ("unblock", {"membership": ["blocked", "member"]}, "checked", staff.user),
    ]


def test_a_blocked_non_member_is_unblocked_back_to_non_member(staff):
    customer = NonMemberFactory()

    customer_block(customer=customer, actor=staff, reason="fraud")
    unblocked = customer_unblock(customer=customer, actor=staff, reason="ok")

    assert (unblocked.membership, unblocked.joined_at) == (Customer.Membership.NON_MEMBER, None)


def test_blocking_twice_records_one_change(staff):
    customer = CustomerFactory()

    customer_block(customer=customer, actor=staff, reason="fraud")
    customer_block(customer=customer, actor=staff, reason="fraud again")

    assert list(CustomerChange.objects.values_list("action", "reason")) == [("block", "fraud")]


def test_unblocking_a_customer_that_is_not_blocked_is_refused(staff):
    customer = CustomerFactory()

    with pytest.raises(MembershipChangeInvalid) as refused:
        customer_unblock(customer=customer, actor=staff, reason="why")

    assert refused.value.extra == {"membership": "member"}
    assert not CustomerChange.objects.exists()


@pytest.mark.parametrize(("who", "reason"), [("staff", " "), ("system", "fraud")])
def test_block_needs_a_known_actor_and_a_reason(staff, who, reason):
    customer = CustomerFactory()

    with pytest.raises(ReasonRequired):
        customer_block(customer=customer, actor=staff if who == "staff" else SYSTEM, reason=reason)

    customer.refresh_from_db()
    assert customer.membership == Customer.Membership.MEMBER
