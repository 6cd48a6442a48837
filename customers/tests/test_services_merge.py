"""Merging a duplicate into a survivor: points move through the ledger, identifiers and consents follow."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import SYSTEM
from customers.exceptions import CustomerAnonymised, CustomerMerged, MergeIntoSelf
from customers.models import Consent, ConsentEvent, Customer, CustomerChange, ExternalId
from customers.selectors import customer_identify
from customers.services import (
    consent_set,
    customer_anonymise,
    customer_external_id_set,
    customer_merge,
    customer_merged,
)
from customers.tests.factories import CustomerFactory, NonMemberFactory
from integrations.tests.factories import ChannelFactory
from points.exceptions import HoldsOpen, NothingToRefund, ReasonRequired
from points.models import Account, Entry, Lot
from points.services import (
    points_accrue,
    points_clawback,
    points_hold,
    points_reconcile,
    points_redeem,
    points_refund,
    points_unlock,
)
from points.tests.helpers import D, buckets, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
COPIED = ("kind", "expires_at", "available_from", "lifetime_days", "restriction", "source_type", "source_id")


@pytest.fixture(autouse=True)
def _ledger_reconciles_after_every_test(_balance_types):
    yield
    assert points_reconcile() == []


def accrue(customer, amount, **kwargs):
    arguments = {"kind": "purchase", "operation_key": key("accrue"), "now": NOW} | kwargs
    return points_accrue(customer=customer, amount=amount, **arguments).lot


def redeem(customer, amount, **kwargs):
    return points_redeem(customer=customer, amount=amount, operation_key=key("redeem"), now=NOW, **kwargs)


def merge(duplicate, survivor, staff, **kwargs):
    return customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person", **kwargs)


def lots_of(customer):
    return list(Lot.objects.filter(account__customer=customer).order_by("pk"))


def copy_of(original: Lot, survivor) -> Lot:
    """The survivor's lot re-created from ``original`` (same source, kind and expiry)."""
    (copy,) = [lot for lot in lots_of(survivor) if all(getattr(lot, f) == getattr(original, f) for f in COPIED)]
    return copy


def test_points_move_through_move_out_and_move_in_entries_keeping_every_lot_attribute(staff):
    # given a duplicate with a partly spent lot, a fully spent one, a pending order line and a welcome bonus
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    partly = accrue(duplicate, 100, source_type="order_line", source_id="1", expires_at=NOW + timedelta(days=200))
    spent = accrue(duplicate, 10, source_type="order_line", source_id="2", expires_at=NOW + timedelta(days=100))
    pending = accrue(duplicate, 50, pending=True, source_type="order_line", source_id="3")
    welcome = accrue(duplicate, 500, kind="welcome", restriction=Lot.Restriction.FIRST_ORDER)
    redeem(duplicate, 40)  # the 10 expiring first, then 30 of the 100
    own = accrue(survivor, 20)

    # when it is merged
    assert merge(duplicate, survivor, staff, now=NOW) == survivor

    # then its account is empty and the survivor holds everything, lot by lot
    assert buckets(duplicate) == (D(0), D(0), D(0), D(0))
    assert buckets(survivor) == (D(590), D(50), D(0), D(0))
    originals = [partly, spent, pending, welcome]
    for original in originals:
        original.refresh_from_db()
    assert {(lot.state, lot.remaining) for lot in originals} == {(Lot.State.MOVED, D(0))}
    copies = {lot.pk: copy_of(lot, survivor) for lot in originals}
    assert [(copies[lot.pk].state, copies[lot.pk].amount, copies[lot.pk].remaining) for lot in originals] == [
        (Lot.State.ACTIVE, D(100), D(70)),  # amount: all of it can still be clawed back
        (Lot.State.SPENT, D(10), D(0)),  # nothing left, but a return can still claw it back
        (Lot.State.PENDING, D(50), D(50)),
        (Lot.State.ACTIVE, D(500), D(500)),
    ]
    assert len(lots_of(survivor)) == 5
    assert Lot.objects.get(pk=own.pk).state == Lot.State.ACTIVE
    out, into = Entry.objects.filter(operation_key=f"merge:{duplicate.pk}:{survivor.pk}").order_by("operation_seq")
    assert (out.kind, out.account.customer, out.amount, out.available_delta, out.pending_delta, out.debt_delta) == (
        Entry.Kind.MOVE_OUT,
        duplicate,
        D(620),
        D(-570),
        D(-50),
        D(0),
    )
    assert (into.kind, into.account.customer, into.amount, into.available_delta, into.pending_delta) == (
        Entry.Kind.MOVE_IN,
        survivor,
        D(620),
        D(570),
        D(50),
    )
    assert sorted((a.lot_id, a.remaining_delta) for a in out.allocations.all()) == [
        (partly.pk, D(-70)),
        (spent.pk, D(0)),
        (pending.pk, D(-50)),
        (welcome.pk, D(-500)),
    ]
    assert sorted((a.lot_id, a.remaining_delta) for a in into.allocations.all()) == sorted(
        [(copies[partly.pk].pk, D(70)), (copies[spent.pk].pk, D(0)), (copies[pending.pk].pk, D(50)),
         (copies[welcome.pk].pk, D(500))]
    )  # fmt: skip
    assert (out.reason, out.actor_user, into.reason) == ("same person", staff.user, "same person")
    assert points_reconcile() == []


@pytest.mark.smoke
def test_the_merged_points_are_spendable_by_the_survivor(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 100)

    merge(duplicate, survivor, staff)
    redeem(survivor, 100)

    assert buckets(survivor) == (D(0), D(0), D(0), D(0))
    duplicate.refresh_from_db()
    assert (duplicate.merged_into, duplicate.merged_at is not None) == (survivor, True)
    assert points_reconcile() == []


def test_pending_order_line_points_still_unlock_by_source_on_the_survivor(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 50, pending=True, source_type="order_line", source_id="7")
    merge(duplicate, survivor, staff)

    operations = points_unlock(operation_key=key("unlock"), source_type="order_line", source_id="7", now=NOW)

    assert [entry.account.customer for operation in operations for entry in operation.entries] == [survivor]
    assert buckets(survivor) == (D(50), D(0), D(0), D(0))
    assert Lot.objects.get(account__customer=survivor).state == Lot.State.ACTIVE
    assert points_reconcile() == []


def test_a_clawback_by_source_after_the_merge_takes_back_what_was_earned_as_debt_on_the_survivor(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 100, source_type="order_line", source_id="1", expires_at=NOW + timedelta(days=10))
    accrue(duplicate, 60, source_type="order_line", source_id="2", expires_at=NOW + timedelta(days=20))
    redeem(duplicate, 130)  # all of line 1, 30 of line 2
    merge(duplicate, survivor, staff)

    points_clawback(operation_key=key("claw"), source_type="order_line", source_id="1", now=NOW)
    points_clawback(operation_key=key("claw"), source_type="order_line", source_id="2", now=NOW)

    # Line 2: the 30 left are taken, the 30 spent become debt; line 1 was spent whole: 100 of debt.
    assert buckets(survivor) == (D(0), D(0), D(0), D(130))
    assert buckets(duplicate) == (D(0), D(0), D(0), D(0))
    assert sorted(
        Entry.objects.filter(kind=Entry.Kind.CLAWBACK).values_list("account__customer", "amount", "debt_delta")
    ) == [(survivor.pk, D(60), D(30)), (survivor.pk, D(100), D(100))]
    assert points_reconcile() == []


def test_a_clawback_after_the_merge_respects_what_was_clawed_back_before_it(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    lot = accrue(duplicate, 100, source_type="order_line", source_id="1")
    points_clawback(operation_key=key("claw"), lot_ids=[lot.pk], amount=40, now=NOW)  # a partial return
    merge(duplicate, survivor, staff)

    points_clawback(operation_key=key("claw"), source_type="order_line", source_id="1", now=NOW)

    assert buckets(survivor) == (D(0), D(0), D(0), D(0))
    assert copy_of(lot, survivor).amount == D(60)
    assert points_reconcile() == []


def test_debt_moves_and_is_paid_from_the_next_points_that_become_available(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    lot = accrue(duplicate, 100)
    redeem(duplicate, 100)
    points_clawback(operation_key=key("claw"), lot_ids=[lot.pk], now=NOW)
    accrue(duplicate, 30, pending=True, source_type="order_line", source_id="9")
    assert buckets(duplicate) == (D(0), D(30), D(0), D(100))

    merge(duplicate, survivor, staff)
    points_unlock(operation_key=key("unlock"), source_type="order_line", source_id="9", now=NOW)

    assert buckets(duplicate) == (D(0), D(0), D(0), D(0))
    assert buckets(survivor) == (D(0), D(0), D(0), D(70))
    assert points_reconcile() == []


def test_moved_debt_is_paid_at_once_from_the_duplicates_own_active_points(staff):
    # A non-member's points cannot be spent, but they pay its debt; after the merge they still do.
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    lot = accrue(duplicate, 100, pending=True, source_type="order_line", source_id="1")
    points_unlock(operation_key=key("unlock"), lot_ids=[lot.pk], now=NOW)
    redeem(duplicate, 100)
    points_clawback(operation_key=key("claw"), lot_ids=[lot.pk], now=NOW)
    survivor_lot = accrue(survivor, 40)

    merge(duplicate, survivor, staff)

    assert buckets(survivor) == (D(40), D(0), D(0), D(100))
    assert Lot.objects.get(pk=survivor_lot.pk).remaining == D(40)
    assert points_reconcile() == []


def test_open_holds_refuse_the_merge_and_nothing_changes(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 100)
    points_hold(customer=duplicate, amount=30, operation_key=key("hold"), now=NOW)
    entries, lots = Entry.objects.count(), Lot.objects.count()

    with pytest.raises(HoldsOpen) as refused:
        merge(duplicate, survivor, staff)

    assert refused.value.extra == {"customer_id": duplicate.pk, "held": "30.00"}
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None
    assert (Entry.objects.count(), Lot.objects.count()) == (entries, lots)
    assert buckets(duplicate) == (D(70), D(0), D(30), D(0))
    assert not Account.objects.filter(customer=survivor).exists()
    assert not CustomerChange.objects.exists()


def test_merging_the_same_pair_again_returns_the_survivor_and_changes_nothing(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 100)
    merge(duplicate, survivor, staff)
    entries, changes = Entry.objects.count(), CustomerChange.objects.count()

    again = merge(duplicate, survivor, staff, now=NOW + timedelta(days=1))

    assert again == survivor
    assert (Entry.objects.count(), CustomerChange.objects.count()) == (entries, changes)
    assert buckets(survivor) == (D(100), D(0), D(0), D(0))


def test_consents_and_their_history_follow_and_the_latest_decision_wins(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    t1, t2 = NOW - timedelta(days=2), NOW - timedelta(days=1)
    consent_set(customer=survivor, channel="sms", granted=False, source="api", actor=staff, now=t1)
    consent_set(customer=duplicate, channel="sms", granted=True, source="registration", actor=staff, now=t2)
    consent_set(customer=duplicate, channel="email", granted=True, source="api", actor=staff, now=t1)
    consent_set(customer=survivor, channel="email", granted=False, source="admin", actor=staff, now=t2)
    consent_set(customer=duplicate, channel="push", granted=True, source="api", actor=staff, text_version="v3", now=t1)

    merge(duplicate, survivor, staff)

    assert sorted(Consent.objects.values_list("customer", "channel", "granted", "source", "text_version")) == [
        (survivor.pk, "email", False, "admin", ""),
        (survivor.pk, "push", True, "api", "v3"),
        (survivor.pk, "sms", True, "registration", ""),
    ]
    assert set(ConsentEvent.objects.values_list("customer", flat=True)) == {survivor.pk}
    assert ConsentEvent.objects.count() == 5


def test_the_card_and_external_ids_follow_where_the_survivor_has_none(staff, site, site_actor):
    erp = ChannelFactory(code="erp")
    duplicate = CustomerFactory(phone="+79031112233", card_number="D-1")
    survivor = CustomerFactory(card_number=None)
    customer_external_id_set(customer=duplicate, channel=site, external_id="site-d", actor=site_actor)
    customer_external_id_set(customer=duplicate, channel=erp, external_id="erp-d", actor=site_actor)
    customer_external_id_set(customer=survivor, channel=erp, external_id="erp-s", actor=site_actor)

    merge(duplicate, survivor, staff)

    duplicate.refresh_from_db()
    survivor.refresh_from_db()
    assert (survivor.card_number, duplicate.card_number) == ("D-1", None)
    assert sorted(ExternalId.objects.values_list("customer", "channel__code", "external_id")) == [
        (duplicate.pk, "erp", "erp-d"),
        (survivor.pk, "erp", "erp-s"),
        (survivor.pk, "site", "site-d"),
    ]
    for identifiers in (
        {"phone": "8 903 111-22-33"},
        {"card": "D-1"},
        {"external_id": "site-d", "channel": site},
        {"external_id": "erp-d", "channel": erp},
    ):
        assert customer_identify(**identifiers) == survivor
    change = CustomerChange.objects.get(customer=survivor, action="merge")
    assert (change.changes["card_number"], change.changes[f"external_id:{site.code}"]) == (
        [None, "D-1"],
        [None, "site-d"],
    )


def test_the_duplicate_keeps_its_card_when_the_survivor_has_one(staff):
    duplicate, survivor = CustomerFactory(card_number="D-1"), CustomerFactory(card_number="S-1")

    merge(duplicate, survivor, staff)

    assert sorted(Customer.objects.values_list("pk", "card_number")) == [(duplicate.pk, "D-1"), (survivor.pk, "S-1")]
    assert customer_identify(card="D-1") == survivor


def test_profile_gaps_are_filled_from_the_duplicate_and_both_histories_record_the_merge(staff):
    duplicate = CustomerFactory(name="Anna", email="anna@example.com", email_validated_at=NOW, company="Studio")
    survivor = CustomerFactory(name="Anna P.", email="")

    merge(duplicate, survivor, staff, now=NOW)

    survivor.refresh_from_db()
    assert (survivor.name, survivor.email, survivor.email_validated_at, survivor.company) == (
        "Anna P.",
        "anna@example.com",
        NOW,
        "Studio",
    )
    merged = CustomerChange.objects.get(customer=duplicate)
    assert (merged.action, merged.changes, merged.reason, merged.actor_user) == (
        "merged",
        {"merged_into": [None, survivor.pk]},
        "same person",
        staff.user,
    )
    assert CustomerChange.objects.get(customer=survivor).changes == {
        "email": [None, "anna@example.com"],
        "company": [None, "Studio"],
        "merged_duplicate": [None, duplicate.pk],
    }


def test_a_member_duplicate_makes_a_non_member_survivor_a_member_and_lifts_its_restriction(staff):
    joined = NOW - timedelta(days=100)
    duplicate = CustomerFactory(joined_at=joined)
    survivor = NonMemberFactory()
    own = accrue(survivor, 40)
    assert own.restriction == Lot.Restriction.MEMBERS_ONLY

    merge(duplicate, survivor, staff)

    survivor.refresh_from_db()
    assert (survivor.membership, survivor.joined_at) == (Customer.Membership.MEMBER, joined)
    assert Lot.objects.get(pk=own.pk).restriction == ""
    unrestrict = Entry.objects.get(kind=Entry.Kind.UNRESTRICT)
    assert (unrestrict.operation_key, [a.lot_id for a in unrestrict.allocations.all()]) == (
        f"merge:{duplicate.pk}:{survivor.pk}:unrestrict",
        [own.pk],
    )
    redeem(survivor, 40)
    assert points_reconcile() == []


def test_a_non_member_duplicates_points_become_spendable_on_a_member_survivor(staff):
    duplicate, survivor = NonMemberFactory(), CustomerFactory()
    original = accrue(duplicate, 25)

    merge(duplicate, survivor, staff)
    redeem(survivor, 25)

    assert Lot.objects.get(account__customer=survivor).restriction == ""
    assert Lot.objects.get(pk=original.pk).restriction == Lot.Restriction.MEMBERS_ONLY  # the moved original
    assert buckets(survivor) == (D(0), D(0), D(0), D(0))


def test_between_two_non_members_the_points_stay_for_members_only(staff):
    duplicate, survivor = NonMemberFactory(), NonMemberFactory()
    accrue(duplicate, 25)

    merge(duplicate, survivor, staff)

    survivor.refresh_from_db()
    assert survivor.membership == Customer.Membership.NON_MEMBER
    assert Lot.objects.get(account__customer=survivor).restriction == Lot.Restriction.MEMBERS_ONLY
    assert not Entry.objects.filter(kind=Entry.Kind.UNRESTRICT).exists()


def test_both_balance_types_move(staff):
    duplicate, survivor = CustomerFactory(kind="b2b"), CustomerFactory()
    accrue(duplicate, 10, balance_type="retail")
    accrue(duplicate, 20, balance_type="b2b")

    merge(duplicate, survivor, staff)

    assert (buckets(survivor, "retail"), buckets(survivor, "b2b")) == (
        (D(10), D(0), D(0), D(0)),
        (D(20), D(0), D(0), D(0)),
    )
    assert list(
        Entry.objects.filter(operation_key=f"merge:{duplicate.pk}:{survivor.pk}")
        .order_by("operation_seq")
        .values_list("kind", "account__balance_type__code")
    ) == [("move_out", "retail"), ("move_in", "retail"), ("move_out", "b2b"), ("move_in", "b2b")]
    assert points_reconcile() == []


def test_what_was_merged_into_the_duplicate_now_redirects_to_the_survivor(staff):
    first, duplicate, survivor = CustomerFactory(), CustomerFactory(), CustomerFactory()
    merge(first, duplicate, staff)

    merge(duplicate, survivor, staff)

    assert list(Customer.objects.filter(merged_into=survivor).order_by("pk")) == [first, duplicate]
    assert customer_identify(phone=str(first.phone)) == survivor


def test_the_merge_signal_tells_other_apps(staff):
    received = []

    def receiver(sender, duplicate, survivor, actor, **kwargs):
        received.append((duplicate.pk, survivor.pk, actor))

    duplicate, survivor = CustomerFactory(), CustomerFactory()
    customer_merged.connect(receiver)
    try:
        merge(duplicate, survivor, staff)
    finally:
        customer_merged.disconnect(receiver)

    assert received == [(duplicate.pk, survivor.pk, staff)]


@pytest.mark.parametrize("which", ["duplicate", "survivor"])
def test_a_merged_customer_can_be_neither_side(staff, which):
    merged, target, other = CustomerFactory(), CustomerFactory(), CustomerFactory()
    merge(merged, target, staff)
    changes = CustomerChange.objects.count()

    pair = (merged, other) if which == "duplicate" else (other, merged)

    with pytest.raises(CustomerMerged) as refused:
        merge(*pair, staff)

    assert refused.value.extra == {"customer_id": merged.pk, "merged_into": target.pk}
    assert CustomerChange.objects.count() == changes


@pytest.mark.parametrize("which", ["duplicate", "survivor"])
def test_an_anonymised_customer_can_be_neither_side(staff, which):
    anonymised, other = CustomerFactory(), CustomerFactory()
    customer_anonymise(customer=anonymised, actor=staff, reason="request")

    pair = (anonymised, other) if which == "duplicate" else (other, anonymised)

    with pytest.raises(CustomerAnonymised):
        merge(*pair, staff)

    assert not Customer.objects.filter(merged_into__isnull=False).exists()


def test_merging_into_itself_is_refused(staff):
    customer = CustomerFactory()

    with pytest.raises(MergeIntoSelf):
        merge(customer, customer, staff)


@pytest.mark.parametrize(("who", "reason"), [("staff", "  "), ("system", "same person")])
def test_a_merge_needs_a_known_actor_and_a_reason(staff, who, reason):
    duplicate, survivor = CustomerFactory(), CustomerFactory()

    with pytest.raises(ReasonRequired):
        customer_merge(duplicate=duplicate, survivor=survivor, actor=staff if who == "staff" else SYSTEM, reason=reason)

    assert not Customer.objects.filter(merged_into__isnull=False).exists()


def test_a_redemption_made_on_the_duplicate_is_refunded_to_the_survivors_copies(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    lot = accrue(duplicate, 100)
    redemption = redeem(duplicate, 40).entries[0]
    merge(duplicate, survivor, staff)

    refund = points_refund(redemption_id=redemption.pk, amount=15, operation_key=key("refund"), now=NOW)
    points_refund(redemption_id=redemption.pk, operation_key=key("refund"), now=NOW)  # the remaining 25

    copy = Lot.objects.get(pk=Lot.objects.get(pk=lot.pk).moved_to_id)
    assert refund.entries[0].account.customer == survivor
    assert (copy.account.customer, copy.remaining, copy.amount) == (survivor, D(100), D(100))
    assert buckets(survivor) == (D(100), D(0), D(0), D(0))
    assert buckets(duplicate) == (D(0), D(0), D(0), D(0))
    with pytest.raises(NothingToRefund):
        points_refund(redemption_id=redemption.pk, operation_key=key("refund"), now=NOW)
    assert points_reconcile() == []


def test_a_refund_follows_a_chain_of_merges(staff):
    first, second, third = CustomerFactory(), CustomerFactory(), CustomerFactory()
    accrue(first, 100)
    redemption = redeem(first, 60).entries[0]
    merge(first, second, staff)
    merge(second, third, staff)

    points_refund(redemption_id=redemption.pk, operation_key=key("refund"), now=NOW)

    assert buckets(third) == (D(100), D(0), D(0), D(0))
    assert buckets(first) == buckets(second) == (D(0), D(0), D(0), D(0))
    assert points_reconcile() == []


def test_naming_a_moved_lot_acts_on_its_copy(staff):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    lot = points_accrue(customer=duplicate, amount=50, kind="purchase", pending=True, operation_key=key(), now=NOW).lot
    merge(duplicate, survivor, staff)

    points_unlock(lot_ids=[lot.pk], operation_key=key("unlock"), now=NOW)

    assert buckets(survivor) == (D(50), D(0), D(0), D(0))
    points_clawback(lot_ids=[lot.pk], operation_key=key("clawback"), now=NOW)
    assert buckets(survivor) == (D(0), D(0), D(0), D(0))
    assert points_reconcile() == []


# --- races (PostgreSQL, real threads) ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_same_merge_four_times_at_once_moves_the_points_once(staff, run_together):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 100)

    outcomes = run_together(*[lambda: merge(duplicate, survivor, staff)] * 4)

    assert [o.pk for o in outcomes] == [survivor.pk] * 4
    assert Entry.objects.filter(operation_key=f"merge:{duplicate.pk}:{survivor.pk}").count() == 2
    assert CustomerChange.objects.filter(action="merge").count() == 1
    assert buckets(survivor) == (D(100), D(0), D(0), D(0))


@pytest.mark.django_db(transaction=True)
def test_merging_a_pair_both_ways_at_once_merges_one_way(staff, run_together):
    first, second = CustomerFactory(), CustomerFactory()
    accrue(first, 10)
    accrue(second, 20)

    outcomes = run_together(lambda: merge(first, second, staff), lambda: merge(second, first, staff))

    merged = [o for o in outcomes if isinstance(o, Customer)]
    refused = [o for o in outcomes if not isinstance(o, Customer)]
    assert (len(merged), [o.code for o in refused]) == (1, ["customer_merged"])
    assert Customer.objects.filter(merged_into__isnull=False).count() == 1
    assert buckets(merged[0]) == (D(30), D(0), D(0), D(0))


@pytest.mark.django_db(transaction=True)
def test_a_merge_racing_a_spend_on_the_duplicate_loses_no_points(staff, run_together):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 100)

    merged, spent = run_together(lambda: merge(duplicate, survivor, staff), lambda: redeem(duplicate, 30))

    assert merged == survivor
    if isinstance(spent, BaseException):  # the merge went first: nothing is booked on the duplicate any more
        assert spent.code == "customer_merged"
        assert buckets(survivor) == (D(100), D(0), D(0), D(0))
    else:
        assert buckets(survivor) == (D(70), D(0), D(0), D(0))
    assert buckets(duplicate) == (D(0), D(0), D(0), D(0))


@pytest.mark.django_db(transaction=True)
def test_a_refund_racing_the_merge_lands_once_on_the_survivor(staff, run_together):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 100)
    redemption = redeem(duplicate, 40).entries[0]

    def refund():
        return points_refund(redemption_id=redemption.pk, operation_key="refund:race", now=NOW)

    merged, refunded = run_together(lambda: merge(duplicate, survivor, staff), refund)

    assert merged == survivor
    if isinstance(refunded, BaseException):  # the merge moved the lots while the refund waited: retry works
        assert refunded.code == "lot_moved"
        refund()
    assert buckets(survivor) == (D(100), D(0), D(0), D(0))
    assert buckets(duplicate) == (D(0), D(0), D(0), D(0))
    assert points_reconcile() == []
