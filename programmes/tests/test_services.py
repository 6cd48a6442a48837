"""Tier engine: upgrade on a qualifying purchase, returns, downgrade by the recalculation after the grace period,
manual tiers with an end date, history, idempotency and chunking (SPEC F-TIER-1, F-TIER-2, F-TIER-5)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.actors import Actor
from customers.tests.factories import B2bCustomerFactory, CustomerFactory
from points.exceptions import ReasonRequired
from programmes.exceptions import ProgrammeNotFound, PurchaseRecordConflict, TierAssignmentInvalid
from programmes.models import CustomerTier, Programme, PurchaseRecord, TierChange
from programmes.selectors import customer_tier
from programmes.services import purchase_record, tier_assign_manual, tiers_recalculate
from programmes.tasks import tiers_recalculate_task

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
DAY = timedelta(days=1)


def buy(customer, amount, source_id, at=NOW, **kwargs):
    return purchase_record(
        customer=customer,
        amount=amount,
        occurred_at=at,
        source_type="order",
        source_id=source_id,
        now=kwargs.pop("now", at),
        **kwargs,
    )


def tier_of(customer) -> str:
    return CustomerTier.objects.select_related("tier").get(customer=customer).tier.code


def changes(customer) -> list[tuple]:
    return [
        (change.from_tier.code if change.from_tier else None, change.to_tier.code, change.reason)
        for change in TierChange.objects.filter(customer=customer).order_by("created_at", "pk")
    ]


@pytest.fixture
def staff(django_user_model) -> Actor:
    return Actor(user=django_user_model.objects.create_user(username="manager", password="x"))


@pytest.mark.smoke
def test_demo_programmes_are_the_case_studies(retail):
    rows = list(
        retail.tiers.order_by("rank").values_list(
            "code", "qualification_threshold", "max_redemption_percent", "welcome_bonus", "reservation_item_limit"
        )
    )

    assert rows == [
        ("basic", Decimal("0"), Decimal("20"), Decimal("500"), 5),
        ("silver", Decimal("100000"), Decimal("20"), Decimal("500"), 5),
        ("gold", Decimal("300000"), Decimal("25"), Decimal("1000"), 7),
        ("platinum", Decimal("1000000"), Decimal("30"), Decimal("5000"), 7),
    ]
    assert retail.balance_type.code == "retail"
    assert list(retail.tiers.filter(early_access_hours=48).values_list("code", flat=True)) == ["gold", "platinum"]


@pytest.mark.smoke
def test_a_qualifying_purchase_upgrades_at_once_and_a_repeat_changes_nothing(tiers):
    customer = CustomerFactory()

    buy(customer, "120000", "o-1")
    buy(customer, "120000", "o-1")

    assert tier_of(customer) == "silver"
    assert PurchaseRecord.objects.filter(customer=customer).count() == 1
    assert changes(customer) == [(None, "basic", "initial"), ("basic", "silver", "upgrade")]


def test_a_purchase_may_skip_tiers(tiers):
    customer = CustomerFactory()

    buy(customer, "350000", "o-1")

    assert tier_of(customer) == "gold"
    assert CustomerTier.objects.get(customer=customer).since == NOW


def test_the_same_source_with_another_amount_is_a_conflict_and_changes_nothing(tiers):
    customer = CustomerFactory()
    buy(customer, "1000", "o-1")

    with pytest.raises(PurchaseRecordConflict):
        buy(customer, "2000", "o-1")

    assert list(PurchaseRecord.objects.values_list("amount", flat=True)) == [Decimal("1000.00")]


def test_a_purchase_of_a_customer_whose_kind_has_no_programme_is_refused_and_recorded_nowhere(tiers):
    Programme.objects.filter(customer_kind=Programme.CustomerKind.B2B).delete()
    customer = B2bCustomerFactory()

    with pytest.raises(ProgrammeNotFound):
        buy(customer, "1000", "o-1")

    assert not PurchaseRecord.objects.exists()


def test_returns_reduce_the_qualifying_sum(tiers):
    customer = CustomerFactory()
    buy(customer, "80000", "o-1", at=NOW - 3 * DAY)
    buy(customer, "-10000", "r-1", at=NOW - 2 * DAY)

    buy(customer, "25000", "o-2")  # 95 000 net: not yet silver

    assert tier_of(customer) == "basic"
    buy(customer, "5000", "o-3")
    assert tier_of(customer) == "silver"


def test_a_return_does_not_downgrade_until_the_recalculation_after_the_grace_period(retail, tiers):
    customer = CustomerFactory()
    buy(customer, "150000", "o-1", at=NOW)
    buy(customer, "-60000", "r-1", at=NOW + DAY)
    assert tier_of(customer) == "silver"

    first = tiers_recalculate(programme=retail, now=NOW + 2 * DAY)
    before_grace = tiers_recalculate(programme=retail, now=NOW + 31 * DAY)
    assert tier_of(customer) == "silver"
    assert CustomerTier.objects.get(customer=customer).below_threshold_since == NOW + 2 * DAY

    after_grace = tiers_recalculate(programme=retail, now=NOW + 32 * DAY)

    assert (first.outcomes["grace_started"], before_grace.changed, after_grace.outcomes["downgraded"]) == (1, 0, 1)
    row = CustomerTier.objects.get(customer=customer)
    assert (row.tier.code, row.since, row.below_threshold_since) == ("basic", NOW + 32 * DAY, None)
    assert changes(customer) == [
        (None, "basic", "initial"),
        ("basic", "silver", "upgrade"),
        ("silver", "basic", "downgrade"),
    ]


def test_back_above_the_threshold_within_the_grace_period_clears_it(retail, tiers):
    customer = CustomerFactory()
    buy(customer, "150000", "o-1")
    buy(customer, "-60000", "r-1", at=NOW + DAY)
    tiers_recalculate(programme=retail, now=NOW + 2 * DAY)

    buy(customer, "20000", "o-2", at=NOW + 3 * DAY)

    row = CustomerTier.objects.get(customer=customer)
    assert (row.tier.code, row.below_threshold_since) == ("silver", None)
    assert tiers_recalculate(programme=retail, now=NOW + 60 * DAY).changed == 0
    assert tier_of(customer) == "silver"


def test_purchases_leave_the_window_and_the_customer_drops_to_the_tier_still_qualified(retail, tiers):
    customer = CustomerFactory()
    buy(customer, "350000", "o-1", at=NOW - 400 * DAY)  # gold then
    buy(customer, "120000", "o-2", at=NOW - 100 * DAY, now=NOW - 100 * DAY)
    assert tier_of(customer) == "gold"

    tiers_recalculate(programme=retail, now=NOW)
    tiers_recalculate(programme=retail, now=NOW + 30 * DAY)

    assert tier_of(customer) == "silver"


def test_a_manual_tier_with_an_end_date_survives_the_recalculation_until_it_expires(retail, tiers, staff):
    customer = CustomerFactory()
    buy(customer, "1000", "o-1")
    until = NOW + 60 * DAY

    tier_assign_manual(customer=customer, tier=tiers["gold"], actor=staff, reason="VIP guest", until=until, now=NOW)
    for day in (1, 31, 59):
        assert tiers_recalculate(programme=retail, now=NOW + day * DAY).changed == 0
    assert tier_of(customer) == "gold"

    result = tiers_recalculate(programme=retail, now=until)

    assert result.outcomes["manual_expired"] == 1
    row = CustomerTier.objects.get(customer=customer)
    assert (row.tier.code, row.manual, row.manual_until) == ("basic", False, None)
    assert changes(customer) == [
        (None, "basic", "initial"),
        ("basic", "gold", "manual"),
        ("gold", "basic", "manual_expired"),
    ]
    manual = TierChange.objects.get(customer=customer, reason="manual")
    assert (manual.note, manual.actor_user) == ("VIP guest", staff.user)
    assert tiers_recalculate(programme=retail, now=until).changed == 0


def test_a_manual_tier_without_end_stays_and_a_qualifying_purchase_still_upgrades(retail, tiers, staff):
    customer = CustomerFactory()
    tier_assign_manual(customer=customer, tier=tiers["silver"], actor=staff, reason="goodwill", now=NOW)
    tiers_recalculate(programme=retail, now=NOW + 400 * DAY)
    assert tier_of(customer) == "silver"

    buy(customer, "400000", "o-1", at=NOW + 401 * DAY)

    row = CustomerTier.objects.get(customer=customer)
    assert (row.tier.code, row.manual) == ("gold", False)


@pytest.mark.parametrize(
    ("actor", "reason", "until_days", "error"),
    [
        ("staff", " ", None, ReasonRequired),
        ("system", "why", None, ReasonRequired),
        ("staff", "why", 0, TierAssignmentInvalid),
    ],
)
def test_a_manual_assignment_is_refused_without_reason_or_with_a_past_end(
    tiers, staff, actor, reason, until_days, error
):
    customer = CustomerFactory()
    until = None if until_days is None else NOW + until_days * DAY

    with pytest.raises(error):
        tier_assign_manual(
            customer=customer,
            tier=tiers["gold"],
            actor=staff if actor == "staff" else Actor(),
            reason=reason,
            until=until,
            now=NOW,
        )

    assert not CustomerTier.objects.filter(customer=customer).exists()
    assert not TierChange.objects.filter(customer=customer).exists()


def test_a_tier_of_another_programme_cannot_be_assigned(tiers, staff):
    customer = B2bCustomerFactory()

    with pytest.raises(TierAssignmentInvalid):
        tier_assign_manual(customer=customer, tier=tiers["gold"], actor=staff, reason="why", now=NOW)

    assert not CustomerTier.objects.filter(customer=customer).exists()


def test_the_recalculation_works_in_chunks_and_a_second_run_changes_nothing(retail, tiers):
    customers = CustomerFactory.create_batch(5)
    for index, customer in enumerate(customers):
        buy(customer, "150000", f"o-{index}")
        buy(customer, "-100000", f"r-{index}", at=NOW + DAY)
    tiers_recalculate(programme=retail, now=NOW + 2 * DAY)  # below the threshold from now on
    # One customer has purchases recorded while no tier row was written (an inactive programme at the time).
    late = CustomerFactory()
    PurchaseRecord.objects.create(
        customer=late, programme=retail, amount=400000, occurred_at=NOW, source_type="order", source_id="late"
    )
    history = TierChange.objects.count()

    first = tiers_recalculate(programme=retail, now=NOW + 40 * DAY, chunk_size=2)
    again = tiers_recalculate(programme=retail, now=NOW + 40 * DAY, chunk_size=2)

    assert (first.customers, first.chunks) == (6, 3)
    assert (first.outcomes["downgraded"], first.outcomes["upgraded"]) == (5, 1)
    assert again.changed == 0
    assert TierChange.objects.count() == history + 5 + 2  # downgrades; initial + upgrade of the late customer
    assert sorted(CustomerTier.objects.values_list("tier__code", flat=True)) == ["basic"] * 5 + ["gold"]


def test_customer_tier_is_the_entry_tier_without_writing(tiers):
    customer = CustomerFactory()

    row = customer_tier(customer=customer)

    assert (row.pk, row.tier.code, row.since) == (None, "basic", None)
    assert not CustomerTier.objects.exists()


def test_the_task_recalculates_every_active_programme(retail, tiers):
    customer = CustomerFactory()
    PurchaseRecord.objects.create(
        customer=customer, programme=retail, amount=150000, occurred_at=timezone.now(), source_type="o", source_id="1"
    )

    counts = tiers_recalculate_task.delay().get()

    assert counts["retail"]["customers"] == 1
    assert counts["retail"]["upgraded"] == 1
    assert counts["b2b"]["customers"] == 0
    assert tier_of(customer) == "silver"


def test_a_merge_brings_the_duplicates_purchases_and_can_upgrade_the_survivor(staff):
    from customers.services import customer_merge

    duplicate, survivor = CustomerFactory(), CustomerFactory()
    buy(duplicate, 200_000, "d-1")
    buy(survivor, 150_000, "s-1")
    assert (tier_of(duplicate), tier_of(survivor)) == ("silver", "silver")

    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    assert tier_of(survivor) == "gold"  # 350,000 together
    assert set(PurchaseRecord.objects.values_list("customer", flat=True)) == {survivor.pk}
    assert not CustomerTier.objects.filter(customer=duplicate).exists()
    assert changes(survivor)[-1] == ("silver", "gold", "upgrade")


def test_the_tier_code_is_the_rows_or_the_entry_tiers():
    from programmes.selectors import customer_tier_code

    gold, newcomer, partner = CustomerFactory(), CustomerFactory(), B2bCustomerFactory()
    buy(gold, 300_000, "g-1")

    assert [customer_tier_code(customer=c) for c in (gold, newcomer, partner)] == ["gold", "basic", "partner"]
