"""The cart calculator against the case studies, table by table (SPEC F-RED-1 … 4, F-EARN-1 … 3, F-ORD-2): tier
caps, the discount-bracket matrix, the new-arrival cap, category and product exclusions, promotions, channel, store
and operation-type earning, rounding, priorities, welcome and members-only points, redemption, invalid carts, "as of"
recalculations and the number of queries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from catalog.models import Category
from catalog.services import catalog_upsert
from core.actors import Actor
from customers.models import Customer
from customers.tests.factories import B2bCustomerFactory, CustomerFactory, NonMemberFactory, StoreFactory
from integrations.models import Channel
from integrations.tests.factories import ChannelFactory
from points.services import points_accrue
from programmes.calculator import CartLine, RuleRef, cart_calculate
from programmes.exceptions import CartInvalid, RedemptionAboveMaximum
from programmes.models import EarningRule, RedemptionRule, Tier
from programmes.services import purchase_record, tier_assign_manual, tiers_recalculate
from programmes.tests.factories import (
    EarningRuleFactory,
    PromotionFactory,
    RedemptionRuleFactory,
    RuleSetFactory,
)

pytestmark = pytest.mark.django_db

D = Decimal
_keys = count()


# --- helpers ---------------------------------------------------------------------------------------------------


def line(sku: str = "ITEM", price: str = "1000", quantity: str = "1", discount: str = "0", **kwargs) -> CartLine:
    return CartLine(sku=sku, quantity=D(quantity), price=D(price), discount_percent=D(discount), **kwargs)


def calc(customer, *lines: CartLine, **kwargs):
    return cart_calculate(customer=customer, lines=list(lines), **kwargs)


def staff() -> Actor:
    user, _ = get_user_model().objects.get_or_create(username="rules-manager")
    return Actor(user=user)


def accrue(customer: Customer, amount, restriction: str = "") -> None:
    points_accrue(
        customer=customer, amount=amount, kind="manual", operation_key=f"calc-{next(_keys)}", restriction=restriction
    )


def member(tier: Tier | None = None, balance=None, *, factory=CustomerFactory, now=None) -> Customer:
    """A customer put in ``tier`` by staff (no tier row without one) holding ``balance`` plain points."""
    customer = factory()
    if tier is not None:
        tier_assign_manual(customer=customer, tier=tier, actor=staff(), reason="test", now=now)
    if balance:
        accrue(customer, balance)
    return customer


def codes(explanations) -> list[str]:
    return [explanation.code for explanation in explanations]


def rule_ref(rule) -> RuleRef:
    kind = {EarningRule: "earning_rule", RedemptionRule: "redemption_rule"}.get(type(rule), "promotion")
    return RuleRef(kind, rule.pk, rule.name)


@pytest.fixture
def catalogue(db) -> dict[str, Category]:
    """furniture/{sofas,chairs}, jewellery/rings, services; a product in each, a new ring, an excluded gift card."""
    catalog_upsert(
        categories=[
            {"code": "furniture", "name": "Furniture"},
            {"code": "sofas", "name": "Sofas", "parent": "furniture"},
            {"code": "chairs", "name": "Chairs", "parent": "furniture"},
            {"code": "jewellery", "name": "Jewellery"},
            {"code": "rings", "name": "Rings", "parent": "jewellery"},
            {"code": "services", "name": "Delivery and assembly"},
        ],
        products=[
            {"sku": "SOFA", "name": "Sofa", "category": "sofas"},
            {"sku": "CHAIR", "name": "Chair", "category": "chairs"},
            {"sku": "RING", "name": "Ring", "category": "rings"},
            {"sku": "RING-NEW", "name": "New ring", "category": "rings", "new_arrival": True,
             "arrival_date": "2026-01-01"},
            {"sku": "DELIVERY", "name": "Delivery", "category": "services"},
            {"sku": "GIFT-CARD", "name": "Gift card", "excluded_from_earning": True,
             "excluded_from_redemption": True},
            {"sku": "PLAIN", "name": "Uncategorised product"},
        ],
    )  # fmt: skip
    return {category.code: category for category in Category.objects.all()}


# --- tier caps (F-RED-1) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "cap", "earn"),
    [("basic", "2000", "500"), ("silver", "2000", "700"), ("gold", "2500", "1000"), ("platinum", "3000", "1200")],
    ids=["basic-20", "silver-20", "gold-25", "platinum-30"],
)
def test_the_tier_caps_the_share_of_the_price(tiers, tier, cap, earn):
    customer = member(tiers[tier], balance=100_000)

    result = calc(customer, line(price="10000"))

    (only,) = result.lines
    assert (result.tier, result.spendable_balance) == (tier, D("100000"))
    assert (only.amount, only.max_redeemable, only.earn_points) == (D("10000"), D(cap), D(earn))
    assert only.redemption_limit.code == "tier_cap"
    assert only.redemption_limit.rule == RuleRef("tier", tiers[tier].pk, tiers[tier].name)
    assert codes(only.earning) == ["tier_rate"]
    assert (result.total_price, result.total_amount, result.max_redeemable, result.earn_points) == (
        D("10000"),
        D("10000"),
        D(cap),
        D(earn),
    )
    assert result.max_redeemable_limit is None


def test_a_customer_without_a_tier_row_is_in_the_entry_tier(tiers):
    result = calc(member(balance=100_000), line(price="999.99"))

    assert result.tier == "basic"
    assert result.lines[0].max_redeemable == D("199")  # 199.998 rounds down to whole points
    assert result.lines[0].earn_points == D("49")  # 49.9995


def test_a_purchase_that_qualifies_for_gold_raises_the_cap_at_once(tiers):
    customer = member(balance=100_000)
    purchase_record(
        customer=customer, amount="300000", occurred_at=timezone.now(), source_type="order", source_id="o-1"
    )

    result = calc(customer, line(price="10000"))

    assert (result.tier, result.lines[0].max_redeemable, result.lines[0].earn_points) == ("gold", D("2500"), D("1000"))


def test_a_manual_tier_ends_with_the_recalculation_after_its_end_date_and_stays_in_the_history(retail, tiers):
    now = timezone.now()
    customer = member(balance=100_000)
    tier_assign_manual(
        customer=customer,
        tier=tiers["gold"],
        actor=staff(),
        reason="a month of gold",
        until=now - timedelta(days=1),
        now=now - timedelta(days=31),
    )

    before = calc(customer, line(price="10000"))
    tiers_recalculate(programme=retail, now=now)
    after = calc(customer, line(price="10000"))
    then = calc(customer, line(price="10000"), at=now - SECOND)

    assert (before.tier, before.lines[0].max_redeemable) == ("gold", D("2500"))  # until the recalculation runs
    assert (after.tier, after.lines[0].max_redeemable, after.lines[0].earn_points) == ("basic", D("2000"), D("500"))
    assert (then.tier, then.lines[0].max_redeemable) == ("gold", D("2500"))


def test_a_line_names_the_catalogue_product_not_what_the_line_says(tiers, catalogue):
    result = calc(member(), line("SOFA", name="Chair?", category="rings"), line("NEW", name="Lamp", category="lamps"))

    assert [(lr.sku, lr.name, lr.product_known, lr.category) for lr in result.lines] == [
        ("SOFA", "Sofa", True, "sofas"),
        ("NEW", "Lamp", False, "lamps"),
    ]


# --- the discount-bracket matrix (F-RED-2) -------------------------------------------------------------------------

MATRIX = [  # discount from (incl.), to (excl.), kind, percent of the balance
    ("20", "30", "balance_share", "45"),
    ("30", "40", "balance_share", "40"),
    ("40", "50", "balance_share", "30"),
    ("50", "60", "balance_share", "50"),
    ("60", None, "forbidden", None),
]


@pytest.fixture
def brackets(retail) -> dict[str, RedemptionRule]:
    rule_set = RuleSetFactory(code="discount-brackets")
    return {
        start: RedemptionRuleFactory(
            rule_set=rule_set,
            name=f"Shelf discount from {start}%",
            discount_from=D(start),
            discount_to=D(end) if end else None,
            kind=kind,
            percent=D(percent) if percent else None,
        )
        for start, end, kind, percent in MATRIX
    }


@pytest.mark.parametrize(
    ("discount", "code", "bracket", "maximum"),
    [
        ("0", "spendable_balance", None, "1000"),
        ("19.99", "spendable_balance", None, "1000"),
        ("20", "rule_balance_share", "20", "450"),
        ("29.99", "rule_balance_share", "20", "450"),
        ("30", "rule_balance_share", "30", "400"),
        ("39.99", "rule_balance_share", "30", "400"),
        ("40", "rule_balance_share", "40", "300"),
        ("49.99", "rule_balance_share", "40", "300"),
        ("50", "rule_balance_share", "50", "500"),
        ("59.99", "rule_balance_share", "50", "500"),
        ("60", "rule_forbidden", "60", "0"),
        ("70", "rule_forbidden", "60", "0"),
        ("99.99", "rule_forbidden", "60", "0"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-",
)
def test_a_small_balance_on_a_big_line_is_capped_by_the_bracket_share_of_the_balance(
    tiers, brackets, discount, code, bracket, maximum
):
    customer = member(balance=1000)

    result = calc(customer, line(price="100000", discount=discount))

    (only,) = result.lines
    amount = D("100000") * (100 - D(discount)) / 100
    assert only.amount == amount
    assert only.discount == D("100000") - amount
    assert (only.max_redeemable, only.redemption_limit.code) == (D(maximum), code)
    if bracket is not None:
        assert only.redemption_limit.rule == rule_ref(brackets[bracket])
    # the tier's 20 % of the price is always a cap too; below 20 % it is the only rule
    assert codes(only.redemption_caps)[-2:] == ["tier_cap", "spendable_balance"]
    assert len(only.redemption_caps) == (2 if bracket is None else 3)
    assert only.earn_points == (amount * 5 / 100).quantize(D("1"), "ROUND_DOWN")
    assert (result.total_price, result.total_discount, result.total_amount) == (
        D("100000"),
        D("100000") - amount,
        amount,
    )
    assert result.max_redeemable == D(maximum)


@pytest.mark.parametrize(
    ("tier", "balance", "discount", "code", "maximum"),
    [
        ("basic", 1_000_000, "0", "tier_cap", "200"),
        ("basic", 1_000_000, "19.99", "tier_cap", "160"),  # 20 % of 800.10
        ("basic", 1_000_000, "20", "tier_cap", "160"),  # 45 % of the balance is far more
        ("basic", 1_000_000, "50", "tier_cap", "100"),
        ("basic", 1_000_000, "60", "rule_forbidden", "0"),
        ("gold", 300, "30", "rule_balance_share", "120"),  # 40 % of 300 < 25 % of 700
        ("gold", 1000, "30", "tier_cap", "175"),  # 25 % of 700 < 40 % of 1000
        ("platinum", 1000, "40", "tier_cap", "180"),  # 30 % of 600 < 30 % of 1000
        ("platinum", 500, "40", "rule_balance_share", "150"),  # 30 % of 500 < 30 % of 600
    ],
    ids=lambda value: str(value),
)
def test_the_smallest_cap_wins(tiers, brackets, tier, balance, discount, code, maximum):
    customer = member(tiers[tier], balance=balance)

    result = calc(customer, line(price="1000", discount=discount))

    assert (result.lines[0].max_redeemable, result.lines[0].redemption_limit.code) == (D(maximum), code)
    assert result.lines[0].max_redeemable == min(cap.value for cap in result.lines[0].redemption_caps).quantize(
        D("1"), "ROUND_DOWN"
    )


def test_the_matrix_caps_each_line_by_its_own_bracket(tiers, brackets):
    customer = member(tiers["platinum"], balance=1000)

    result = calc(
        customer,
        line("A", price="100000", discount="20"),
        line("B", price="100000", discount="25"),
        line("C", price="100000", discount="45"),
        line("D", price="100000", discount="65"),
        line("E", price="100", discount="10"),
    )

    assert [(lr.max_redeemable, lr.redemption_limit.code) for lr in result.lines] == [
        (D("450"), "rule_balance_share"),
        (D("450"), "rule_balance_share"),
        (D("300"), "rule_balance_share"),
        (D("0"), "rule_forbidden"),
        (D("27"), "tier_cap"),
    ]
    # each line may take its share of the balance; together they may not take more than the balance
    assert (result.max_redeemable, result.max_redeemable_limit.code) == (D("1000"), "spendable_balance")


# --- new arrivals (F-RED-2) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cart_line", "limited_by_rule"),
    [
        (line("RING-NEW", price="10000"), True),
        (line("RING", price="10000"), False),
        (line("UNKNOWN", price="10000", new_arrival=True), True),
        (line("UNKNOWN", price="10000", new_arrival=False), False),
        (line("UNKNOWN", price="10000"), False),
        (line("RING", price="10000", new_arrival=True), False),  # the catalogue knows better
        (line("RING-NEW", price="10000", new_arrival=False), True),
    ],
    ids=["known-new", "known-old", "inline-new", "inline-old", "inline-unsaid", "catalogue-wins", "catalogue-wins-2"],
)
def test_new_arrivals_are_capped_lower_than_the_tier(tiers, catalogue, cart_line, limited_by_rule):
    rule = RedemptionRuleFactory(name="New arrivals: up to 10%", new_arrival=True, percent=D("10"))
    customer = member(tiers["gold"], balance=100_000)

    (result,) = calc(customer, cart_line).lines

    if limited_by_rule:
        assert (result.max_redeemable, result.redemption_limit.code) == (D("1000"), "rule_price_share")
        assert result.redemption_limit.rule == rule_ref(rule)
    else:
        assert (result.max_redeemable, result.redemption_limit.code) == (D("2500"), "tier_cap")
        assert "rule_price_share" not in codes(result.redemption_caps)


def test_a_new_arrival_rule_above_the_tier_cap_does_not_raise_it(tiers, catalogue):
    RedemptionRuleFactory(new_arrival=True, percent=D("40"))

    (result,) = calc(member(balance=100_000), line("RING-NEW", price="10000")).lines

    assert (result.max_redeemable, result.redemption_limit.code) == (D("2000"), "tier_cap")


def test_a_rule_for_everything_but_new_arrivals(tiers, catalogue):
    RedemptionRuleFactory(new_arrival=False, percent=D("5"))

    result = calc(member(balance=100_000), line("RING-NEW", price="10000"), line("RING", price="10000"))

    assert [lr.max_redeemable for lr in result.lines] == [D("2000"), D("500")]


# --- categories and product flags (F-EARN-2, F-RED-2, F-INT-4) -------------------------------------------------


@pytest.mark.parametrize(
    ("cart_line", "earns"),
    [
        (line("SOFA"), False),  # sofas are below furniture
        (line("CHAIR"), False),
        (line("RING"), True),
        (line("UNKNOWN", category="sofas"), False),  # an unknown SKU of a known sub-category
        (line("UNKNOWN", category="furniture"), False),
        (line("UNKNOWN", category="garden"), True),  # a category the catalogue does not know
        (line("UNKNOWN"), True),
        (line("SOFA", category="rings"), False),  # the catalogue's category wins
        (line("RING", category="sofas"), True),
        (line("PLAIN", category="sofas"), True),  # known without a category: the line's is not used
    ],
    ids=["sofa", "chair", "ring", "inline-sofas", "inline-furniture", "inline-unknown", "no-category",
         "known-sofa-says-rings", "known-ring-says-sofas", "known-uncategorised-says-sofas"],
)  # fmt: skip
def test_a_no_earning_rule_on_a_category_covers_its_sub_categories(tiers, catalogue, cart_line, earns):
    rule = EarningRuleFactory(
        name="Furniture earns nothing", kind="no_earning", rate_percent=None, categories=[catalogue["furniture"]]
    )

    (result,) = calc(member(), cart_line).lines

    if earns:
        assert (result.earn_points, codes(result.earning)) == (D("50"), ["tier_rate"])
    else:
        assert (result.earn_points, result.earn_rate_percent) == (D("0"), D("0"))
        assert codes(result.earning) == ["earning_rule_no_points"]
        assert result.earning[0].rule == rule_ref(rule)


@pytest.mark.parametrize(
    ("cart_line", "forbidden"),
    [
        (line("DELIVERY"), True),
        (line("UNKNOWN", category="services"), True),
        (line("RING"), False),
        (line("UNKNOWN", category="rings"), False),
        (line("DELIVERY", category="rings"), True),
    ],
    ids=["delivery", "inline-services", "ring", "inline-rings", "catalogue-wins"],
)
def test_a_prohibition_on_a_category(tiers, catalogue, cart_line, forbidden):
    rule = RedemptionRuleFactory(
        name="Services: no points", kind="forbidden", percent=None, categories=[catalogue["services"]]
    )

    (result,) = calc(member(balance=100_000), cart_line).lines

    if forbidden:
        assert (result.max_redeemable, result.redemption_limit.code) == (D("0"), "rule_forbidden")
        assert result.redemption_limit.rule == rule_ref(rule)
        assert result.earn_points == D("50")  # a prohibition on spending says nothing about earning
    else:
        assert (result.max_redeemable, result.redemption_limit.code) == (D("200"), "tier_cap")


@pytest.mark.parametrize(
    ("cart_line", "earns", "redeemable"),
    [
        (line("GIFT-CARD"), False, False),
        (line("GIFT-CARD", excluded_from_earning=False, excluded_from_redemption=False), False, False),
        (line("RING", excluded_from_earning=True, excluded_from_redemption=True), True, True),
        (line("UNKNOWN", excluded_from_earning=True), False, True),
        (line("UNKNOWN", excluded_from_redemption=True), True, False),
        (line("UNKNOWN", excluded_from_earning=True, excluded_from_redemption=True), False, False),
        (line("UNKNOWN", excluded_from_earning=False, excluded_from_redemption=False), True, True),
    ],
    ids=["known-excluded", "known-excluded-inline-not", "known-not-inline-excluded", "inline-earning",
         "inline-redemption", "inline-both", "inline-neither"],
)  # fmt: skip
def test_product_flags_exclude_from_earning_or_redemption(tiers, catalogue, cart_line, earns, redeemable):
    PromotionFactory(multiplier=D("2"))  # not even a promotion makes an excluded product earn

    (result,) = calc(member(balance=100_000), cart_line).lines

    if earns:
        assert (result.earn_points, codes(result.earning)) == (D("100"), ["tier_rate", "promotion"])
    else:
        assert (result.earn_points, codes(result.earning)) == (D("0"), ["product_excluded_from_earning"])
    if redeemable:
        assert (result.max_redeemable, result.redemption_limit.code) == (D("200"), "tier_cap")
    else:
        assert (result.max_redeemable, result.redemption_limit.code) == (D("0"), "product_excluded_from_redemption")


# --- promotions (F-EARN-3) -----------------------------------------------------------------------------------------

PROMO_FROM = datetime(2025, 11, 24, 21, 0, tzinfo=UTC)
PROMO_UNTIL = datetime(2025, 12, 1, 21, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("at", "multiplier"),
    [
        (PROMO_FROM - TICK, "1"),
        (PROMO_FROM, "2"),
        (PROMO_FROM + timedelta(days=3), "2"),
        (PROMO_UNTIL - TICK, "2"),
        (PROMO_UNTIL, "1"),
    ],
    ids=["just-before", "first-moment", "inside", "last-moment", "end-exclusive"],
)
def test_double_points_only_within_the_promotion_window(tiers, at, multiplier):
    promotion = PromotionFactory(name="Black Friday", valid_from=PROMO_FROM, valid_until=PROMO_UNTIL)

    (result,) = calc(member(), line(price="1000"), at=at).lines

    assert (result.earn_multiplier, result.earn_points) == (D(multiplier), 50 * D(multiplier))
    if multiplier == "2":
        assert codes(result.earning) == ["tier_rate", "promotion"]
        assert result.earning[1].rule == rule_ref(promotion)
    else:
        assert codes(result.earning) == ["tier_rate"]


def test_a_promotion_now_doubles_and_an_ended_one_does_not(tiers):
    now = timezone.now()
    PromotionFactory(valid_from=now - timedelta(days=10), valid_until=now - timedelta(days=3), multiplier=D("5"))
    PromotionFactory(valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=6))
    PromotionFactory(valid_from=now + timedelta(days=1), valid_until=now + timedelta(days=6), multiplier=D("4"))

    assert calc(member(), line()).lines[0].earn_points == D("100")


@pytest.mark.parametrize(
    ("kind", "multiplier"),
    [(Channel.Kind.SITE, "2"), (Channel.Kind.SHOWROOM_POS, "2"), (Channel.Kind.CALL_CENTRE, "1"), (None, "1")],
    ids=["site", "showroom", "call-centre", "no-channel"],
)
def test_a_promotion_for_some_channel_kinds(tiers, kind, multiplier):
    PromotionFactory(channel_kinds=["site", "showroom_pos"])
    channel = ChannelFactory(kind=kind) if kind else None

    (result,) = calc(member(), line(), channel=channel).lines

    assert (result.earn_multiplier, result.earn_points) == (D(multiplier), 50 * D(multiplier))


@pytest.mark.parametrize(("tier", "points"), [("basic", "50"), ("gold", "200"), ("platinum", "240")])
def test_a_promotion_for_some_tiers(tiers, tier, points):
    PromotionFactory(tiers=[tiers["gold"], tiers["platinum"]])

    assert calc(member(tiers[tier]), line()).lines[0].earn_points == D(points)


def test_of_two_promotions_the_larger_multiplier_applies_without_stacking(tiers):
    triple = PromotionFactory(name="Triple", multiplier=D("3"))
    PromotionFactory(name="Double", multiplier=D("2"))
    PromotionFactory(name="Inactive, ten times", multiplier=D("10"), is_active=False)

    (result,) = calc(member(), line()).lines

    assert (result.earn_multiplier, result.earn_points) == (D("3"), D("150"))
    assert [explanation.rule for explanation in result.earning if explanation.code == "promotion"] == [rule_ref(triple)]


def test_a_promotion_multiplies_a_rules_rate_and_nothing_multiplies_no_points(tiers, catalogue):
    EarningRuleFactory(rate_percent=D("8"), categories=[catalogue["rings"]])
    EarningRuleFactory(kind="no_earning", rate_percent=None, categories=[catalogue["services"]])
    PromotionFactory()

    result = calc(member(), line("RING"), line("DELIVERY"))

    assert [lr.earn_points for lr in result.lines] == [D("160"), D("0")]
    assert codes(result.lines[1].earning) == ["earning_rule_no_points"]


# --- channels, stores, operation types (F-EARN-1, F-EARN-2) ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "tier", "rate", "code"),
    [
        ("mobile_app", "basic", "8", "earning_rule"),
        ("mobile_app", "silver", "8", "earning_rule"),
        ("mobile_app", "gold", "10", "tier_rate"),  # the rule is for basic and silver only
        ("showroom_pos", "basic", "6", "earning_rule"),
        ("site", "basic", "5", "tier_rate"),
        (None, "silver", "7", "tier_rate"),
    ],
    ids=lambda value: str(value),
)
def test_channel_specific_earning(tiers, kind, tier, rate, code):
    EarningRuleFactory(rate_percent=D("8"), channel_kinds=["mobile_app"], tiers=[tiers["basic"], tiers["silver"]])
    EarningRuleFactory(rate_percent=D("6"), channel_kinds=["showroom_pos"])
    channel = ChannelFactory(kind=kind) if kind else None

    (result,) = calc(member(tiers[tier]), line(price="1000"), channel=channel).lines

    assert (result.earn_rate_percent, result.earn_points, codes(result.earning)) == (D(rate), D(rate) * 10, [code])


@pytest.mark.parametrize(("store", "points"), [("A", "90"), ("B", "50"), (None, "50")])
def test_store_specific_earning(tiers, store, points):
    stores = {"A": StoreFactory(code="a"), "B": StoreFactory(code="b")}
    EarningRuleFactory(rate_percent=D("9"), stores=[stores["A"]])

    result = calc(member(), line(), store=stores.get(store), channel=ChannelFactory(kind="showroom_pos"))

    assert result.lines[0].earn_points == D(points)


def test_loan_interest_earns_its_own_cashback_and_purchases_the_tier_rate(tiers):
    rule = EarningRuleFactory(name="Loan interest: 3%", rate_percent=D("3"), operation_types=["loan_interest"])

    result = calc(
        member(tiers["gold"]),
        line("INTEREST", price="1000", operation_type="loan_interest"),
        line("SOFA", price="1000"),
        line("INSURANCE", price="1000", operation_type="paid_service"),
    )

    assert [(lr.operation_type, lr.earn_points) for lr in result.lines] == [
        ("loan_interest", D("30")),
        ("purchase", D("100")),
        ("paid_service", D("100")),
    ]
    assert result.lines[0].earning[0].rule == rule_ref(rule)
    assert result.earn_points == D("230")


# --- rounding (per line) -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rounding", "prices", "points", "total"),
    [
        ("down", ["19.80"], ["0"], "0"),  # 0.99 points
        ("half_up", ["19.80"], ["1"], "1"),
        ("cents", ["19.80"], ["0.99"], "0.99"),
        ("half_up", ["9.80"], ["0"], "0"),  # 0.49
        ("half_up", ["10.00"], ["1"], "1"),  # 0.5
        ("down", ["12.00", "12.00"], ["0", "0"], "0"),  # 0.6 + 0.6: per line, not 1 for the cart
        ("half_up", ["12.00", "12.00"], ["1", "1"], "2"),
        ("cents", ["12.00", "12.00"], ["0.60", "0.60"], "1.20"),
        ("down", ["20.00"], ["1"], "1"),  # exact: no rounding note
    ],
    ids=lambda value: "+".join(value) if isinstance(value, list) else str(value),
)
def test_points_are_rounded_per_line_by_the_programmes_policy(retail, tiers, rounding, prices, points, total):
    retail.rounding = rounding
    retail.save()

    result = calc(member(), *(line(f"L{index}", price=price) for index, price in enumerate(prices)))

    assert [lr.earn_points for lr in result.lines] == [D(p) for p in points]
    assert result.earn_points == D(total)
    exact = [D(price) * 5 / 100 for price in prices]
    assert ["rounding" in codes(lr.earning) for lr in result.lines] == [
        D(p) != value for p, value in zip(points, exact, strict=True)
    ]


# --- priorities ----------------------------------------------------------------------------------------------------


def test_of_two_matching_earning_rules_the_higher_priority_decides(tiers, catalogue):
    EarningRuleFactory(name="Rings 8%", priority=1, rate_percent=D("8"), categories=[catalogue["rings"]])
    winner = EarningRuleFactory(
        name="Jewellery 12%", priority=5, rate_percent=D("12"), categories=[catalogue["jewellery"]]
    )
    EarningRuleFactory(name="App 30%", priority=50, rate_percent=D("30"), channel_kinds=["mobile_app"])

    (result,) = calc(member(), line("RING")).lines

    assert (result.earn_points, result.earning[0].rule) == (D("120"), rule_ref(winner))


def test_a_no_points_rule_of_higher_priority_beats_a_rate(tiers, catalogue):
    EarningRuleFactory(priority=1, rate_percent=D("8"))
    EarningRuleFactory(priority=2, kind="no_earning", rate_percent=None, categories=[catalogue["rings"]])

    result = calc(member(), line("RING"), line("SOFA"))

    assert [lr.earn_points for lr in result.lines] == [D("0"), D("80")]


def test_of_equal_priority_the_rule_that_started_last_decides(tiers):
    EarningRuleFactory(rate_percent=D("8"), valid_from=datetime(2024, 1, 1, tzinfo=UTC))
    later = EarningRuleFactory(rate_percent=D("6"), valid_from=datetime(2025, 1, 1, tzinfo=UTC))
    EarningRuleFactory(rate_percent=D("7"), valid_from=datetime(2023, 1, 1, tzinfo=UTC))

    (result,) = calc(member(), line()).lines

    assert (result.earn_points, result.earning[0].rule) == (D("60"), rule_ref(later))


# --- who may spend what (F-RED-3, F-ID-4) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_order", "purchased_before", "spendable", "is_first"),
    [
        (None, False, "1500", True),
        (None, True, "1000", False),
        (True, True, "1500", True),
        (False, False, "1000", False),
    ],
    ids=["auto-first", "auto-not-first", "explicit-first", "explicit-not-first"],
)
def test_welcome_points_only_on_the_first_order(tiers, first_order, purchased_before, spendable, is_first):
    customer = member(balance=1000)
    accrue(customer, 500, restriction="first_order")
    if purchased_before:
        purchase_record(customer=customer, amount="10", occurred_at=timezone.now(), source_type="order", source_id="1")

    result = calc(customer, line(price="100000"), first_order=first_order)

    assert (result.spendable_balance, result.first_order) == (D(spendable), is_first)
    assert (result.max_redeemable, result.lines[0].redemption_limit.code) == (D(spendable), "spendable_balance")


def test_members_only_points_are_invisible_to_non_members(tiers):
    non_member = NonMemberFactory()
    accrue(non_member, 300)  # restricted to members automatically
    a_member = member(balance=100)
    accrue(a_member, 300, restriction="members_only")

    stranger = calc(non_member, line(price="100000"))
    joined = calc(a_member, line(price="100000"))

    assert (stranger.spendable_balance, stranger.max_redeemable) == (D("0"), D("0"))
    assert stranger.lines[0].redemption_limit.code == "not_a_member"
    assert (joined.spendable_balance, joined.max_redeemable) == (D("400"), D("400"))


def test_a_non_member_spends_welcome_points_on_the_first_order(tiers):
    non_member = NonMemberFactory()
    accrue(non_member, 200, restriction="first_order")

    result = calc(non_member, line(price="100000"))

    assert (result.spendable_balance, result.max_redeemable, result.first_order) == (D("200"), D("200"), True)


def test_a_blocked_customer_can_spend_nothing(tiers, catalogue):
    customer = member(tiers["gold"], balance=10_000)
    Customer.objects.filter(pk=customer.pk).update(membership=Customer.Membership.BLOCKED)
    customer.refresh_from_db()

    result = calc(customer, line("RING"), line("GIFT-CARD"), spendable_balance=D("10000"))

    assert (result.spendable_balance, result.max_redeemable) == (D("0"), D("0"))
    assert [(lr.max_redeemable, lr.redemption_limit.code) for lr in result.lines] == [
        (D("0"), "customer_blocked"),
        (D("0"), "customer_blocked"),
    ]
    with pytest.raises(RedemptionAboveMaximum) as raised:
        calc(customer, line("RING"), redeem=1)
    assert raised.value.extra == {"maximum": "0", "requested": "1"}


def test_an_anonymous_cart_earns_at_the_entry_rate_and_redeems_nothing(tiers, catalogue):
    PromotionFactory(tiers=[tiers["basic"]])

    result = calc(None, line("RING", price="1000"), line("GIFT-CARD", price="5000"))

    assert (result.customer_id, result.tier, result.spendable_balance, result.max_redeemable) == (
        None,
        "basic",
        D("0"),
        D("0"),
    )
    assert [(lr.max_redeemable, lr.redemption_limit.code) for lr in result.lines] == [
        (D("0"), "anonymous"),
        (D("0"), "anonymous"),
    ]
    assert [lr.earn_points for lr in result.lines] == [D("100"), D("0")]
    with pytest.raises(RedemptionAboveMaximum):
        calc(None, line(), redeem="0.01")


def test_a_member_with_no_points_is_limited_by_the_balance(tiers):
    (result,) = calc(member(tiers["gold"]), line()).lines

    assert (result.max_redeemable, result.redemption_limit.code, result.redemption_limit.value) == (
        D("0"),
        "spendable_balance",
        D("0"),
    )


def test_a_given_spendable_balance_replaces_the_ledgers(tiers):
    result = calc(member(balance=10), line(price="10000"), spendable_balance=D("1234.56"))

    assert (result.spendable_balance, result.max_redeemable) == (D("1234.56"), D("1234"))


def test_a_b2b_customer_is_calculated_by_the_b2b_programme_and_its_balance(tiers):
    EarningRuleFactory(rate_percent=D("50"))  # retail rules
    PromotionFactory(multiplier=D("3"))
    designer = B2bCustomerFactory()
    accrue(designer, 100)  # retail points
    points_accrue(customer=designer, amount=700, kind="manual", operation_key="b2b-1", balance_type="b2b")

    result = calc(designer, line(price="10000"))

    assert (result.programme, result.balance_type, result.tier, result.spendable_balance) == (
        "b2b",
        "b2b",
        "partner",
        D("700"),
    )
    assert (result.lines[0].earn_points, result.lines[0].max_redeemable) == (D("500"), D("700"))


# --- spending points on the cart (F-RED-4) -------------------------------------------------------------------------


def test_points_spread_over_the_lines_in_order_and_earn_only_on_the_money_part(tiers):
    customer = member(balance=10_000)

    result = calc(customer, line("A", price="1000"), line("B", price="1500"), line("C", price="500"), redeem=450)

    assert [lr.max_redeemable for lr in result.lines] == [D("200"), D("300"), D("100")]
    assert [lr.redeem for lr in result.lines] == [D("200"), D("250"), D("0")]
    assert result.redeem == D("450")
    # 5 % of 800, of 1250 (62.5 rounded down) and of 500
    assert [lr.earn_points for lr in result.lines] == [D("40"), D("62"), D("25")]
    assert result.earn_points == D("127")
    assert codes(result.lines[0].earning) == ["tier_rate", "paid_in_points_not_earning"]
    assert codes(result.lines[1].earning) == ["tier_rate", "paid_in_points_not_earning", "rounding"]
    assert codes(result.lines[2].earning) == ["tier_rate"]


def test_with_earning_on_points_paid_the_whole_amount_earns(retail, tiers):
    retail.earn_on_points_paid = True
    retail.save()

    result = calc(member(balance=10_000), line("A", price="1000"), line("B", price="1500"), redeem="450.50")

    assert [lr.redeem for lr in result.lines] == [D("200"), D("250.50")]
    assert [lr.earn_points for lr in result.lines] == [D("50"), D("75")]


@pytest.mark.parametrize(("balance", "maximum"), [(10_000, "600"), (250, "250")])
def test_more_than_the_maximum_is_refused_with_the_maximum(tiers, balance, maximum):
    customer = member(balance=balance)
    cart = [line("A", price="1000"), line("B", price="1500"), line("C", price="500")]

    with pytest.raises(RedemptionAboveMaximum) as raised:
        calc(customer, *cart, redeem=D(maximum) + D("0.01"))

    assert raised.value.code == "redemption_above_maximum"
    assert raised.value.extra == {"maximum": maximum, "requested": str(D(maximum) + D("0.01"))}
    result = calc(customer, *cart, redeem=D(maximum))
    assert (result.max_redeemable, result.redeem, sum(lr.redeem for lr in result.lines)) == (D(maximum),) * 3


# --- invalid carts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "fields"),
    [
        ([], {"lines": ["empty"]}),
        ([line(sku="")], {"lines.0.sku": ["required"]}),
        ([line(), line(quantity="0")], {"lines.1.quantity": ["not_positive"]}),
        ([line(quantity="-1")], {"lines.0.quantity": ["not_positive"]}),
        ([line(price="-0.01")], {"lines.0.price": ["negative"]}),
        ([line(discount="100")], {"lines.0.discount_percent": ["out_of_range"]}),
        ([line(discount="-1")], {"lines.0.discount_percent": ["out_of_range"]}),
        ([line(operation_type="gift")], {"lines.0.operation_type": ["invalid_choice"]}),
        ([line(quantity="NaN")], {"lines.0.quantity": ["not_a_number"]}),
        ([line(price="Infinity")], {"lines.0.price": ["not_a_number"]}),
        ([line(discount="-Infinity")], {"lines.0.discount_percent": ["not_a_number"]}),
        (
            [line(sku="", price="-1"), line(), line(quantity="0", discount="120")],
            {
                "lines.0.sku": ["required"],
                "lines.0.price": ["negative"],
                "lines.2.quantity": ["not_positive"],
                "lines.2.discount_percent": ["out_of_range"],
            },
        ),
        ([line(sku=f"S{n}") for n in range(201)], {"lines": ["too_many"]}),
    ],
    ids=["empty", "sku", "quantity-zero", "quantity-negative", "price", "discount-100", "discount-negative",
         "operation", "quantity-nan", "price-infinite", "discount-infinite", "several", "too-many"],
)  # fmt: skip
def test_invalid_lines_are_named_by_line_and_field(tiers, lines, fields):
    with pytest.raises(CartInvalid) as raised:
        cart_calculate(customer=member(), lines=lines)

    assert raised.value.code == "cart_invalid"
    assert {key: [problem["code"] for problem in problems] for key, problems in raised.value.fields.items()} == fields
    assert all(problem["message"] for problems in raised.value.fields.values() for problem in problems)


def test_a_free_line_is_valid_and_caps_nothing(tiers):
    (result,) = calc(member(balance=100), line(price="0")).lines

    assert (result.amount, result.max_redeemable, result.earn_points) == (D("0"), D("0"), D("0"))


def test_quantities_and_discounts_round_to_the_cent(tiers):
    (result,) = calc(member(balance=100_000), line(price="333.33", quantity="3", discount="12.5")).lines

    # 999.99 less 12.5 % = 874.99125 → 874.99
    assert (result.amount, result.discount, result.max_redeemable, result.earn_points) == (
        D("874.99"),
        D("125.00"),
        D("174"),
        D("43"),
    )


# --- explanations in the active language -------------------------------------------------------------------------


def test_explanations_have_the_same_codes_and_rules_in_russian(tiers, catalogue, brackets):
    EarningRuleFactory(rate_percent=D("3"), operation_types=["loan_interest"])
    PromotionFactory()
    customer = member(tiers["gold"], balance=1000)
    accrue(customer, 100, restriction="first_order")
    cart = [
        line("RING", price="1000", discount="30"),
        line("GIFT-CARD"),
        line("INTEREST", price="333", operation_type="loan_interest"),
        line("UNKNOWN", price="19.99", discount="65"),
    ]

    def explained():
        result = calc(customer, *cart, redeem=100)
        return [
            [(e.code, e.value, e.rule) for e in [lr.redemption_limit, *lr.redemption_caps, *lr.earning]]
            for lr in result.lines
        ], [e.text for lr in result.lines for e in [lr.redemption_limit, *lr.redemption_caps, *lr.earning]]

    english, english_texts = explained()
    with translation.override("ru"):
        russian, russian_texts = explained()

    assert russian == english
    assert all(russian_texts)
    assert all(english_texts)


# --- "as of" recalculation (F-EARN-3: rules are data with validity dates) -------------------------------------------

CHANGE = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(("at", "old"), [(CHANGE - SECOND, True), (CHANGE, False), (None, False)], ids=str)
def test_a_rule_ended_and_replaced_gives_the_old_result_before_the_change(tiers, at, old):
    rule_set = RuleSetFactory()
    old_earning = EarningRuleFactory(rule_set=rule_set, rate_percent=D("8"), valid_until=CHANGE)
    new_earning = EarningRuleFactory(rule_set=rule_set, rate_percent=D("12"), valid_from=CHANGE)
    old_cap = RedemptionRuleFactory(rule_set=rule_set, percent=D("10"), valid_until=CHANGE)
    new_cap = RedemptionRuleFactory(rule_set=rule_set, percent=D("15"), valid_from=CHANGE)
    customer = member(tiers["gold"], balance=100_000)

    result = calc(customer, line(price="1000"), at=at)

    (only,) = result.lines
    if old:
        assert (only.earn_points, only.earning[0].rule) == (D("80"), rule_ref(old_earning))
        assert (only.max_redeemable, only.redemption_limit.rule) == (D("100"), rule_ref(old_cap))
    else:
        assert (only.earn_points, only.earning[0].rule) == (D("120"), rule_ref(new_earning))
        assert (only.max_redeemable, only.redemption_limit.rule) == (D("150"), rule_ref(new_cap))
    if at is not None:
        assert result.at == at


def test_a_tiers_changed_terms_apply_from_the_change_on(tiers):
    customer = member(balance=100_000)
    before = timezone.now() - SECOND
    basic = tiers["basic"]
    basic.earn_rate_percent, basic.max_redemption_percent = D("6"), D("30")
    basic.save()
    between = timezone.now()
    basic.earn_rate_percent = D("6.5")
    basic.save()

    then = calc(customer, line(price="1000"), at=before).lines[0]
    middle = calc(customer, line(price="1000"), at=between).lines[0]
    now = calc(customer, line(price="1000")).lines[0]

    assert (then.earn_rate_percent, then.earn_points, then.max_redeemable) == (D("5"), D("50"), D("200"))
    assert (middle.earn_rate_percent, middle.earn_points, middle.max_redeemable) == (D("6"), D("60"), D("300"))
    assert (now.earn_rate_percent, now.earn_points, now.max_redeemable) == (D("6.5"), D("65"), D("300"))
    assert then.redemption_limit.value == D("200")


def test_the_tier_as_of_a_past_date_comes_from_the_tier_history(tiers):
    now = timezone.now()
    silver_since, gold_since = now - timedelta(days=10), now - timedelta(days=5)
    customer = member(tiers["silver"], balance=100_000, now=silver_since)
    purchase_record(
        customer=customer, amount="300000", occurred_at=gold_since, source_type="order", source_id="1", now=gold_since
    )

    def at(moment):
        result = calc(customer, line(price="1000"), at=moment)
        return result.tier, result.lines[0].earn_points, result.lines[0].max_redeemable

    assert at(silver_since - SECOND) == ("basic", D("50"), D("200"))
    assert at(silver_since) == ("silver", D("70"), D("200"))
    assert at(gold_since - SECOND) == ("silver", D("70"), D("200"))
    assert at(gold_since) == ("gold", D("100"), D("250"))
    assert at(None) == ("gold", D("100"), D("250"))


# --- queries ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def big_cart(tiers, catalogue) -> tuple[Customer, list[CartLine]]:
    customer = member(tiers["gold"], balance=5000)
    accrue(customer, 500, restriction="first_order")  # makes the calculator ask whether this is the first order
    accrue(customer, 70, restriction="members_only")
    skus = ["SOFA", "CHAIR", "RING", "RING-NEW", "DELIVERY", "GIFT-CARD"]
    categories = ["sofas", "chairs", "rings", "services", "furniture", "garden"]
    lines = [line(skus[n % 6], price=str(1000 + n), discount=str(n * 3)) for n in range(10)]
    lines += [
        line(f"NEW-{n}", price=str(500 + n), category=categories[n % 6], new_arrival=n % 2 == 0) for n in range(10)
    ]
    return customer, lines


@pytest.fixture
def many_rules(tiers, catalogue, brackets) -> None:
    EarningRuleFactory(kind="no_earning", rate_percent=None, categories=[catalogue["services"]])
    EarningRuleFactory(rate_percent=D("8"), channel_kinds=["site"], tiers=[tiers["gold"]])
    EarningRuleFactory(rate_percent=D("3"), operation_types=["loan_interest"], stores=[StoreFactory()])
    RedemptionRuleFactory(new_arrival=True, percent=D("10"))
    RedemptionRuleFactory(kind="forbidden", percent=None, categories=[catalogue["services"]])
    PromotionFactory(channel_kinds=["site"])


def queries_of(function) -> int:
    with CaptureQueriesContext(connection) as captured:
        function()
    return len(captured)


WARM = 2  # the customer's state (programme, tier, lots, first order) and the catalogue (products, categories)
RULEBOOK = 13  # three kinds of rules, each with three kinds of condition, and the tiers


@pytest.mark.parametrize("historical", [False, True], ids=["now", "as-of"])
def test_a_20_line_cart_takes_a_bounded_number_of_queries(
    many_rules, big_cart, historical, django_assert_max_num_queries
):
    customer, lines = big_cart
    channel = ChannelFactory(kind="site")
    at = timezone.now() - timedelta(hours=1) if historical else None
    extra = 2 if historical else 0  # the tier history and the tier's past terms

    def run():
        return cart_calculate(customer=customer, lines=lines, channel=channel, at=at)

    EarningRuleFactory(rate_percent=D("1"), channel_kinds=["erp"])  # a rule change: the rulebook is reloaded
    with django_assert_max_num_queries(WARM + extra + RULEBOOK):
        cold = run()
    with django_assert_max_num_queries(WARM + extra):
        warm = run()

    assert len(warm.lines) == 20
    assert warm.max_redeemable > 0
    assert warm.earn_points > 0
    assert warm == replace(cold, at=warm.at)
    # and not one query more for 20 lines than for one; and nothing written
    assert queries_of(lambda: cart_calculate(customer=customer, lines=lines[:1] + lines[10:11], at=at)) == queries_of(
        run
    )
    with CaptureQueriesContext(connection) as captured:
        run()
    assert {query["sql"].split()[0] for query in captured} == {"SELECT"}


def test_a_cart_of_catalogue_products_takes_two_queries(tiers, catalogue, django_assert_num_queries):
    customer = member(tiers["gold"], balance=5000)
    customer_with_welcome_points = member(tiers["gold"], balance=5000)
    points_accrue(
        customer=customer_with_welcome_points, amount=500, kind="welcome", operation_key="w", restriction="first_order"
    )
    cart = [line("SOFA"), line("SOFA", quantity="2")]
    calc(customer, *cart)  # warm the rulebook

    with django_assert_num_queries(WARM):
        calc(customer, *cart)
    with django_assert_num_queries(WARM):  # deciding on the welcome points costs nothing more
        result = calc(customer_with_welcome_points, *cart)
    assert result.first_order is True
