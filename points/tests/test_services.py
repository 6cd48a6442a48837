"""Ledger services through their public functions, with the issue's edge cases (PostgreSQL)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.services import customer_anonymise, customer_block
from points.exceptions import (
    HoldNotOpen,
    InsufficientPoints,
    InvalidAmount,
    OperationKeyConflict,
    ReasonRequired,
    RefundExceedsRedemption,
    ResetNotDue,
    UnknownBalanceType,
)
from points.models import BalanceType, Entry, Lot
from points.services import (
    Actor,
    points_accrue,
    points_adjust,
    points_cancel_accrual,
    points_clawback,
    points_expire_due,
    points_hold,
    points_hold_commit,
    points_hold_release,
    points_holds_release_expired,
    points_redeem,
    points_refund,
    points_reset_cancel,
    points_reset_preview,
    points_reset_schedule,
    points_resets_run_due,
    points_unlock,
    points_unlock_due,
)
from points.tests.helpers import D, assert_consistent, buckets, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def end_of_business_day(moment):
    """Midnight in Europe/Moscow that ends the Moscow day ``moment`` falls on."""
    moscow = ZoneInfo("Europe/Moscow")
    return datetime.combine(moment.astimezone(moscow).date() + timedelta(days=1), time.min, tzinfo=moscow)


def accrue(customer, amount, *, days=365, **kwargs):
    return points_accrue(
        customer=customer,
        amount=amount,
        kind="purchase",
        operation_key=key("accrue"),
        expires_at=kwargs.pop("expires_at", NOW + timedelta(days=days)),
        now=kwargs.pop("now", NOW),
        **kwargs,
    )


def test_accrue_active_points_are_available_at_once(customer):
    operation = accrue(customer, 100)

    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    assert operation.lot.state == Lot.State.ACTIVE
    assert operation.lot.remaining == D(100)
    assert_consistent()


def test_same_key_returns_the_first_result_and_changes_nothing(customer):
    first = points_accrue(customer=customer, amount=100, kind="purchase", operation_key="erp:1042:1", now=NOW)
    again = points_accrue(customer=customer, amount=100, kind="purchase", operation_key="erp:1042:1", now=NOW)

    assert again.replayed is True
    assert again.lot.pk == first.lot.pk
    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    assert Entry.objects.count() == 1


def test_same_key_with_other_arguments_is_a_conflict(customer):
    points_accrue(customer=customer, amount=100, kind="purchase", operation_key="erp:1042:1", now=NOW)

    with pytest.raises(OperationKeyConflict):
        points_accrue(customer=customer, amount=101, kind="purchase", operation_key="erp:1042:1", now=NOW)
    assert buckets(customer) == (D(100), D(0), D(0), D(0))


@pytest.mark.parametrize("amount", [0, -5, "1.001", "nan", "abc"])
def test_bad_amounts_are_refused(customer, amount):
    with pytest.raises(InvalidAmount):
        accrue(customer, amount)


def test_pending_accrual_unlocks_on_its_event_with_lifetime_from_then(customer):
    operation = points_accrue(
        customer=customer,
        amount=300,
        kind="purchase",
        operation_key=key(),
        pending=True,
        source_type="order_line",
        source_id="1042/3",
        now=NOW,
    )
    assert buckets(customer) == (D(0), D(300), D(0), D(0))

    later = NOW + timedelta(days=90)
    points_unlock(operation_key=key(), source_type="order_line", source_id="1042/3", now=later)

    lot = Lot.objects.get(pk=operation.lot.pk)
    assert buckets(customer) == (D(300), D(0), D(0), D(0))
    assert lot.expires_at == end_of_business_day(later + timedelta(days=365))
    assert_consistent()


def test_pending_points_cannot_be_spent(customer):
    points_accrue(customer=customer, amount=300, kind="purchase", operation_key=key(), pending=True, now=NOW)

    with pytest.raises(InsufficientPoints):
        points_redeem(customer=customer, amount=1, operation_key=key(), now=NOW)


def test_cancel_pending_accrual(customer):
    operation = points_accrue(
        customer=customer, amount=300, kind="purchase", operation_key=key(), pending=True, now=NOW
    )

    points_cancel_accrual(operation_key=key(), lot_ids=[operation.lot.pk], now=NOW)

    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert Lot.objects.get().state == Lot.State.CANCELLED
    assert_consistent()


def test_redeem_exactly_the_balance(customer):
    accrue(customer, 100)

    points_redeem(customer=customer, amount=100, operation_key=key(), now=NOW)

    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert Lot.objects.get().state == Lot.State.SPENT
    assert_consistent()


@pytest.mark.smoke
def test_redeem_across_three_lots_takes_soonest_expiring_first(customer):
    late = accrue(customer, 100, days=300).lot
    soon = accrue(customer, 100, days=10).lot
    middle = accrue(customer, 100, days=100).lot

    operation = points_redeem(customer=customer, amount=250, operation_key=key(), now=NOW)

    assert operation.allocations == {soon.pk: D(100), middle.pk: D(100), late.pk: D(50)}
    assert Lot.objects.get(pk=late.pk).remaining == D(50)
    assert buckets(customer) == (D(50), D(0), D(0), D(0))
    assert_consistent()


def test_redeem_more_than_spendable_changes_nothing(customer):
    accrue(customer, 100)

    with pytest.raises(InsufficientPoints) as error:
        points_redeem(customer=customer, amount="100.01", operation_key=key(), now=NOW)

    assert error.value.extra["spendable"] == "100.00"
    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    assert Entry.objects.count() == 1


def test_non_member_points_are_spendable_only_after_joining(customer):
    customer.membership, customer.joined_at = "non_member", None
    customer.save()
    accrue(customer, 100)

    with pytest.raises(InsufficientPoints):
        points_redeem(customer=customer, amount=10, operation_key=key(), now=NOW)
    customer.membership, customer.joined_at = "member", NOW
    customer.save()
    points_redeem(customer=customer, amount=10, operation_key=key(), now=NOW)

    assert buckets(customer)[0] == D(90)


def test_welcome_points_only_on_the_first_order(customer):
    points_accrue(
        customer=customer, amount=500, kind="welcome", restriction="first_order", operation_key=key(), now=NOW
    )

    with pytest.raises(InsufficientPoints):
        points_redeem(customer=customer, amount=100, operation_key=key(), now=NOW)
    points_redeem(customer=customer, amount=100, operation_key=key(), first_order=True, now=NOW)


def test_welcome_points_live_three_months(customer):
    operation = points_accrue(customer=customer, amount=500, kind="welcome", operation_key=key(), now=NOW)

    assert operation.lot.expires_at == end_of_business_day(NOW + timedelta(days=90))


@pytest.mark.smoke
def test_refund_restores_the_very_lots_even_one_that_expired_meanwhile(customer, settings):
    settings.POINTS_REFUND_GRACE_DAYS = 30
    soon = accrue(customer, 100, days=5).lot
    late = accrue(customer, 100, days=300).lot
    redemption = points_redeem(customer=customer, amount=150, operation_key=key(), now=NOW)
    later = NOW + timedelta(days=6)
    points_expire_due(now=later)  # `soon` expired while spent: nothing left in it to expire

    points_refund(redemption_id=redemption.entries[0].pk, operation_key=key(), now=later)

    soon.refresh_from_db()
    late.refresh_from_db()
    assert (soon.remaining, soon.state, soon.expires_at) == (D(100), Lot.State.ACTIVE, later + timedelta(days=30))
    assert late.remaining == D(100)
    assert buckets(customer) == (D(200), D(0), D(0), D(0))
    assert_consistent()


def test_partial_refunds_never_exceed_the_redemption(customer):
    accrue(customer, 100)
    redemption = points_redeem(customer=customer, amount=80, operation_key=key(), now=NOW).entries[0]

    points_refund(redemption_id=redemption.pk, amount=50, operation_key=key(), now=NOW)
    with pytest.raises(RefundExceedsRedemption):
        points_refund(redemption_id=redemption.pk, amount="30.01", operation_key=key(), now=NOW)
    points_refund(redemption_id=redemption.pk, operation_key=key(), now=NOW)

    assert buckets(customer)[0] == D(100)
    assert_consistent()


@pytest.mark.smoke
def test_clawback_after_partial_spend_creates_debt_that_the_next_accrual_settles(customer):
    returned = accrue(customer, 100, source_type="order_line", source_id="7/1").lot
    points_redeem(customer=customer, amount=70, operation_key=key(), now=NOW)

    points_clawback(operation_key=key(), source_type="order_line", source_id="7/1", now=NOW)
    assert buckets(customer) == (D(0), D(0), D(0), D(70))

    accrue(customer, 50)
    assert buckets(customer) == (D(0), D(0), D(0), D(20))
    accrue(customer, 50)
    assert buckets(customer) == (D(30), D(0), D(0), D(0))
    assert Lot.objects.get(pk=returned.pk).remaining == D(0)
    assert_consistent()


def test_clawback_of_a_pending_line_cancels_it(customer):
    points_accrue(
        customer=customer,
        amount=100,
        kind="purchase",
        operation_key=key(),
        pending=True,
        source_type="order_line",
        source_id="9/1",
        now=NOW,
    )

    points_clawback(operation_key=key(), source_type="order_line", source_id="9/1", now=NOW)

    assert buckets(customer) == (D(0), D(0), D(0), D(0))


def test_clawback_twice_takes_nothing_more(customer):
    lot = accrue(customer, 100).lot
    points_clawback(operation_key=key(), lot_ids=[lot.pk], now=NOW)

    points_clawback(operation_key=key(), lot_ids=[lot.pk], now=NOW)

    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert_consistent()


@pytest.mark.smoke
def test_expiry_at_the_boundary_second(customer):
    expires = NOW + timedelta(days=1)
    accrue(customer, 100, expires_at=expires)

    assert points_expire_due(now=expires - timedelta(seconds=1)).lots == 0
    assert points_expire_due(now=expires).lots == 1
    assert points_expire_due(now=expires).lots == 0
    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert_consistent()


def test_expired_but_not_yet_swept_points_are_not_spendable(customer):
    expires = NOW + timedelta(days=1)
    accrue(customer, 100, expires_at=expires)

    with pytest.raises(InsufficientPoints):
        points_redeem(customer=customer, amount=1, operation_key=key(), now=expires)


@pytest.mark.smoke
def test_hold_commit_and_release(customer):
    accrue(customer, 100)

    hold = points_hold(customer=customer, amount=60, operation_key=key(), now=NOW).hold
    assert buckets(customer) == (D(40), D(0), D(60), D(0))
    points_hold_commit(hold_id=hold.pk, amount=45, operation_key=key(), now=NOW)

    assert buckets(customer) == (D(55), D(0), D(0), D(0))
    with pytest.raises(HoldNotOpen):
        points_hold_release(hold_id=hold.pk, operation_key=key(), now=NOW)
    assert_consistent()


def test_hold_timeout_releases_it_and_a_late_commit_is_refused(customer):
    accrue(customer, 100)
    hold = points_hold(customer=customer, amount=60, timeout=timedelta(minutes=15), operation_key=key(), now=NOW).hold

    assert points_holds_release_expired(now=NOW + timedelta(minutes=14)) == 0
    assert points_holds_release_expired(now=NOW + timedelta(minutes=15)) == 1
    assert points_holds_release_expired(now=NOW + timedelta(minutes=16)) == 0

    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    with pytest.raises(HoldNotOpen):
        points_hold_commit(hold_id=hold.pk, operation_key=key(), now=NOW + timedelta(minutes=20))


def test_held_points_of_a_lot_that_expires_can_still_be_committed(customer):
    expires = NOW + timedelta(hours=1)
    accrue(customer, 100, expires_at=expires)
    # the hold outlives the lot (a timed-out hold cannot be committed)
    hold = points_hold(customer=customer, amount=60, timeout=timedelta(hours=2), operation_key=key(), now=NOW).hold

    points_expire_due(now=expires)
    assert buckets(customer) == (D(0), D(0), D(60), D(0))
    points_hold_commit(hold_id=hold.pk, operation_key=key(), now=expires)

    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert_consistent()


def test_released_points_of_an_expired_lot_expire(customer):
    expires = NOW + timedelta(hours=1)
    accrue(customer, 100, expires_at=expires)
    hold = points_hold(customer=customer, amount=60, operation_key=key(), now=NOW).hold
    points_expire_due(now=expires)

    points_hold_release(hold_id=hold.pk, operation_key=key(), now=expires)

    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert_consistent()


def test_adjust_needs_actor_and_reason(customer, admin_user):
    with pytest.raises(ReasonRequired):
        points_adjust(customer=customer, amount=100, operation_key=key(), actor=Actor(user=admin_user), reason=" ")

    points_adjust(
        customer=customer, amount=100, operation_key=key(), actor=Actor(user=admin_user), reason="goodwill", now=NOW
    )
    points_adjust(
        customer=customer,
        amount=-30,
        operation_key=key(),
        actor=Actor(user=admin_user),
        reason="duplicate accrual",
        now=NOW,
    )

    entry = Entry.objects.filter(kind="adjust").order_by("pk").last()
    assert (entry.actor_user, entry.reason, entry.available_delta) == (admin_user, "duplicate accrual", D(-30))
    assert buckets(customer)[0] == D(70)
    assert_consistent()


@pytest.mark.parametrize("amount", ["abc", "0", "nan", "1.001", None])
def test_adjust_refuses_amounts_that_are_not_points(customer, admin_user, amount):
    with pytest.raises(InvalidAmount):
        points_adjust(
            customer=customer, amount=amount, operation_key=key(), actor=Actor(user=admin_user), reason="typo"
        )
    assert not Entry.objects.exists()


def test_unknown_balance_type_is_a_clear_error(customer):
    with pytest.raises(UnknownBalanceType):
        points_accrue(customer=customer, amount=10, kind="purchase", balance_type="gold", operation_key=key())
    assert not Lot.objects.exists()


def test_hold_and_release_report_the_points_they_moved_per_lot(customer):
    lot = accrue(customer, 100).lot

    held = points_hold(customer=customer, amount=60, operation_key=key(), now=NOW)
    released = points_hold_release(hold_id=held.hold.pk, operation_key=key(), now=NOW)

    assert held.allocations == {lot.pk: D(60)}
    assert released.allocations == {lot.pk: D(60)}


def test_due_resets_run_once_and_cancelled_ones_never(customer, admin_user):
    accrue(customer, 100)
    balance_type = BalanceType.objects.get(code="retail")
    due = points_reset_schedule(balance_type=balance_type, run_at=NOW, reason="programme ends", created_by=admin_user)
    called_off = points_reset_schedule(balance_type=balance_type, run_at=NOW, reason="x", created_by=admin_user)
    points_reset_cancel(reset_id=called_off.pk)

    assert points_reset_preview(reset=due).points == D(100)
    assert points_resets_run_due(now=NOW - timedelta(seconds=1)) == 0
    assert points_resets_run_due(now=NOW) == 1
    assert points_resets_run_due(now=NOW) == 0

    due.refresh_from_db()
    assert (due.state, due.accounts_reset, due.points_reset) == ("done", 1, D(100))
    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    with pytest.raises(ResetNotDue):
        points_reset_cancel(reset_id=due.pk)
    assert_consistent()


def test_lifetime_ends_at_the_end_of_the_business_day_not_the_utc_one(customer):
    # 23:30 in Moscow is 20:30 UTC: the Moscow date, not the UTC one, decides where the last day ends.
    accrued_at = datetime(2026, 1, 1, 23, 30, tzinfo=ZoneInfo("Europe/Moscow"))
    points_accrue(customer=customer, amount=100, kind="purchase", operation_key=key(), now=accrued_at)
    last_moment = datetime(2027, 1, 1, 23, 59, 59, tzinfo=ZoneInfo("Europe/Moscow"))

    lot = Lot.objects.get()
    assert lot.expires_at == datetime(2027, 1, 2, 0, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    assert points_expire_due(now=last_moment).lots == 0
    points_redeem(customer=customer, amount=1, operation_key=key(), now=last_moment)
    assert points_expire_due(now=last_moment + timedelta(seconds=1)).lots == 1
    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert_consistent()


@pytest.mark.parametrize("membership", ["blocked", "anonymised"])
def test_a_blocked_customer_cannot_spend_but_keeps_the_points(customer, membership):
    accrue(customer, 100)
    staff = Actor(user=get_user_model().objects.create_user("manager"))
    if membership == "blocked":
        customer_block(customer=customer, actor=staff, reason="fraud check")
    else:
        customer_anonymise(customer=customer, actor=staff, reason="personal data request")
    customer.refresh_from_db()

    with pytest.raises(InsufficientPoints):
        points_redeem(customer=customer, amount=10, operation_key=key(), now=NOW)
    with pytest.raises(InsufficientPoints):
        points_hold(customer=customer, amount=10, operation_key=key(), now=NOW)
    assert buckets(customer) == (D(100), D(0), D(0), D(0))


def test_the_unlock_job_skips_a_lot_cancelled_meanwhile_and_unlocks_the_rest(customer, monkeypatch):
    dated = [
        points_accrue(
            customer=customer,
            amount=10,
            kind="purchase",
            operation_key=key(),
            now=NOW,
            available_from=NOW + timedelta(days=1),
        ).lot
        for _ in range(2)
    ]
    real_unlock = points_unlock

    def cancel_first_then_unlock(**kwargs):
        if kwargs["lot_ids"] == [dated[0].pk]:
            points_cancel_accrual(operation_key=key(), lot_ids=[dated[0].pk], now=NOW)
        return real_unlock(**kwargs)

    monkeypatch.setattr("points.services.accrual.points_unlock", cancel_first_then_unlock)

    assert points_unlock_due(now=NOW + timedelta(days=1)) == 1
    assert [Lot.objects.get(pk=lot.pk).state for lot in dated] == ["cancelled", "active"]
    assert buckets(customer) == (D(10), D(0), D(0), D(0))
    assert_consistent()
