"""Property-based proof of the cart calculator: random carts against random rule sets, checked against a plain-Python
model of the rules written here from the rules' definitions (SPEC F-RED-1 … 4, F-EARN-1 … 3), not from the engine.

Each example builds its own programme rules (redemption caps of every kind with random shelf-discount brackets and
conditions, earning rules with random priorities, promotions; some in an inactive rule set or out of their dates)
and a cart of one to eight lines (catalogue products and unknown SKUs carrying their own attributes, any shelf
discount, quantity and operation type), in a savepoint rolled back at its end. Every customer of a fixed pool
(member, non-member, blocked or none; any tier; lots of every spend restriction) calculates it, with or without a
first-order flag and a given balance, spending a random share of what the model says is the maximum.

Then, per line: the maximum redeemable is at most every cap that applies (computed here) and at most the spendable
balance — and exactly the smallest of them, rounded down; points spent go to the lines in order, never above a
line's maximum; the points earned are never negative and are exactly what the deciding rule, the largest promotion
and the rounding policy give on the part paid with money. For the cart: the maximum is at most the balance and the
sum of the lines; asking for more is refused with the maximum. ``pytest --slow`` runs ten times as many examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from itertools import count

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Category
from catalog.services import catalog_upsert
from core.actors import Actor
from customers.models import Customer
from customers.tests.factories import CustomerFactory, NonMemberFactory, StoreFactory
from integrations.models import Channel
from integrations.tests.factories import ChannelFactory
from points.services import points_accrue
from programmes.calculator import CartLine, cart_calculate
from programmes.exceptions import RedemptionAboveMaximum
from programmes.models import EarningRule, OperationType, Programme, Promotion, RedemptionRule, Tier, rules_changed
from programmes.services import purchase_record, tier_assign_manual
from programmes.tests.factories import EarningRuleFactory, PromotionFactory, RedemptionRuleFactory, RuleSetFactory

ZERO = Decimal("0")
CENT = Decimal("0.01")
WHOLE = Decimal("1")
TICK = timedelta(microseconds=1)

CATEGORIES = [
    {"code": "home", "name": "Home"},
    {"code": "sofas", "name": "Sofas", "parent": "home"},
    {"code": "corner-sofas", "name": "Corner sofas", "parent": "sofas"},
    {"code": "tables", "name": "Tables", "parent": "home"},
    {"code": "jewels", "name": "Jewels"},
    {"code": "rings", "name": "Rings", "parent": "jewels"},
    {"code": "services", "name": "Services"},
]
PATHS = {
    "home": "home",
    "sofas": "home/sofas",
    "corner-sofas": "home/sofas/corner-sofas",
    "tables": "home/tables",
    "jewels": "jewels",
    "rings": "jewels/rings",
    "services": "services",
}


@dataclass(frozen=True)
class Product:
    category: str | None
    new_arrival: bool = False
    excluded_from_earning: bool = False
    excluded_from_redemption: bool = False


PRODUCTS = {
    "P-CORNER": Product("corner-sofas"),
    "P-TABLE": Product("tables", new_arrival=True),
    "P-RING": Product("rings", excluded_from_earning=True),
    "P-GIFT": Product(None, excluded_from_earning=True, excluded_from_redemption=True),
    "P-DELIVERY": Product("services", excluded_from_redemption=True),
    "P-RING-NEW": Product("rings", new_arrival=True),
}
TIER_CODES = ["basic", "silver", "gold", "platinum"]
CHANNEL_KINDS = [Channel.Kind.SITE, Channel.Kind.MOBILE_APP, Channel.Kind.SHOWROOM_POS, Channel.Kind.CALL_CENTRE]
STORES = ["s1", "s2"]
OPERATIONS = list(OperationType.values)
EDGES = ["0", "20", "30", "50", "60"]  # the table tests have the cents either side of each


# --- what the examples are made of ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    valid_from: timedelta  # from the calculation's reference moment
    valid_until: timedelta | None
    tiers: frozenset[str]
    channel_kinds: frozenset[str]
    stores: frozenset[str]
    categories: frozenset[str]
    new_arrival: bool | None
    operation_types: frozenset[str]


@dataclass(frozen=True)
class RedemptionSpec:
    conditions: Conditions
    active_set: bool
    kind: str
    percent: Decimal | None
    discount_from: Decimal | None
    discount_to: Decimal | None


@dataclass(frozen=True)
class EarningSpec:
    conditions: Conditions
    active_set: bool
    priority: int
    kind: str
    rate: Decimal | None


@dataclass(frozen=True)
class PromotionSpec:
    conditions: Conditions
    is_active: bool
    multiplier: Decimal


@dataclass(frozen=True)
class LineSpec:
    sku: str
    price: Decimal
    quantity: Decimal
    discount: Decimal
    operation_type: str
    category: str | None
    new_arrival: bool | None
    excluded_from_earning: bool | None
    excluded_from_redemption: bool | None


@dataclass(frozen=True)
class CustomerSpec:
    kind: str  # member, non_member, blocked, anonymous
    tier: str | None  # None: no tier row (the entry tier)
    lots: tuple[tuple[str, str], ...]  # amount, spend restriction as asked of the ledger
    purchased_before: bool


# Built once per test (the ledger and the tier services are proven elsewhere); each example picks one.
CUSTOMERS = [
    CustomerSpec("member", "gold", (("1000", ""), ("300", "members_only"), ("500", "first_order")), False),
    CustomerSpec("member", None, (("250.50", ""),), True),
    CustomerSpec("member", "platinum", (("40000", ""), ("500", "first_order")), True),
    CustomerSpec("member", "silver", (("5", ""),), False),
    CustomerSpec("member", "basic", (("99999.99", ""), ("0.01", "first_order")), False),
    CustomerSpec("non_member", None, (("700", ""), ("200", "first_order")), False),
    CustomerSpec("non_member", "basic", (("100", "first_order"),), True),
    CustomerSpec("blocked", "gold", (("10000", ""),), False),
    CustomerSpec("anonymous", None, (), False),
]


@st.composite
def _subset(draw, values, max_size=2):
    """Mostly empty (every value matches), so that rules often apply to a line."""
    if draw(st.integers(0, 5)):
        return frozenset()
    return draw(st.frozensets(st.sampled_from(values), min_size=1, max_size=max_size))


# Few distinct moments, so that a calculation "as of" the reference moment falls exactly on rules' boundaries.
MOMENTS = [-timedelta(days=400), -TICK, timedelta(0), TICK, timedelta(days=30)]


@st.composite
def conditions(draw, *, open_ended=True):
    start = draw(st.sampled_from([MOMENTS[0], *MOMENTS[:-1]]))  # mostly in force
    later = [moment for moment in MOMENTS if moment > start] + [timedelta(days=800)]
    end = draw(st.sampled_from([None, None, *later] if open_ended else later))
    return Conditions(
        valid_from=start,
        valid_until=end,
        tiers=draw(_subset(TIER_CODES)),
        channel_kinds=draw(_subset(CHANNEL_KINDS)),
        stores=draw(_subset(STORES, 1)),
        categories=draw(_subset(list(PATHS))),
        new_arrival=draw(st.sampled_from([None, None, None, None, None, True, False])),
        operation_types=draw(_subset(OPERATIONS)),
    )


_percent = st.one_of(
    st.sampled_from([Decimal(p) for p in ("0", "5", "10", "15", "45", "50", "100")]),  # mostly below the tier caps
    st.decimals(min_value=0, max_value=100, places=2),
)
# Lines' discounts and brackets' bounds drawn mostly from the same few values, so that they meet.
_edge = st.sampled_from([Decimal(e) for e in EDGES])
_discount = st.one_of(*[_edge] * 5, st.decimals(min_value=0, max_value="99.99", places=2))


_bound = st.one_of(st.none(), _discount, _discount)


@st.composite
def redemption_rules(draw):
    kind = draw(st.sampled_from(["price_share", "balance_share", "forbidden"]))
    start, end = draw(_bound), draw(_bound)
    if start is not None and end is not None and end <= start:
        start, end = (end, start) if end < start else (start, None)
    return RedemptionSpec(
        conditions=draw(conditions()),
        active_set=draw(st.sampled_from([True] * 5 + [False])),
        kind=kind,
        percent=None if kind == "forbidden" else draw(_percent),
        discount_from=start,
        discount_to=end,
    )


@st.composite
def earning_rules(draw):
    kind = draw(st.sampled_from(["rate", "rate", "no_earning"]))
    return EarningSpec(
        conditions=draw(conditions()),
        active_set=draw(st.sampled_from([True] * 5 + [False])),
        priority=draw(st.integers(0, 1)),
        kind=kind,
        rate=None if kind == "no_earning" else draw(st.decimals(min_value=0, max_value=30, places=2)),
    )


@st.composite
def promotions(draw):
    return PromotionSpec(
        conditions=draw(conditions(open_ended=False)),
        is_active=draw(st.sampled_from([True] * 5 + [False])),
        multiplier=draw(st.sampled_from([Decimal(m) for m in ("0.5", "1", "1.5", "2", "3")])),
    )


_flag = st.sampled_from([None, False, True])


@st.composite
def cart_lines(draw):
    return LineSpec(
        sku=draw(st.sampled_from([*PRODUCTS, "U-1", "U-2", "U-3"])),
        price=draw(
            st.one_of(
                st.sampled_from([Decimal(price) for price in ("12", "999.99", "25000", "150000")]),
                st.decimals(min_value=0, max_value=200_000, places=2),
            )
        ),
        quantity=draw(st.one_of(st.sampled_from([WHOLE, Decimal(2), Decimal(3)]), st.decimals("0.001", 10, places=3))),
        discount=draw(_discount),
        operation_type=draw(st.sampled_from(OPERATIONS)),
        category=draw(st.sampled_from([None, *PATHS, "garden"])),
        new_arrival=draw(_flag),
        excluded_from_earning=draw(st.sampled_from([None, None, False, True])),
        excluded_from_redemption=draw(st.sampled_from([None, None, False, True])),
    )


_first_order = st.sampled_from([None, True, False])
_override = st.one_of(
    st.sampled_from([None, None, None, None, *(Decimal(b) for b in ("0", "300", "5000", "1000000"))]),
    st.decimals(min_value=0, max_value=100_000, places=2),
)


# --- the model -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    tier: str
    channel_kind: str | None
    store: str | None
    categories: frozenset[str]
    new_arrival: bool
    operation_type: str
    discount: Decimal
    excluded_from_earning: bool
    excluded_from_redemption: bool


def product_facts(spec: LineSpec, tier: str, channel_kind: str | None, store: str | None) -> Facts:
    """The catalogue's attributes for a known SKU, the line's own for an unknown one."""
    if spec.sku in PRODUCTS:
        product = PRODUCTS[spec.sku]
        category, new_arrival = product.category, product.new_arrival
        no_earning, no_redemption = product.excluded_from_earning, product.excluded_from_redemption
    else:
        category, new_arrival = spec.category, bool(spec.new_arrival)
        no_earning, no_redemption = bool(spec.excluded_from_earning), bool(spec.excluded_from_redemption)
    # a category is inside each of its ancestors; an unknown category code is just itself
    ancestors = frozenset(PATHS.get(category, category).split("/")) if category else frozenset()
    return Facts(
        tier, channel_kind, store, ancestors, new_arrival, spec.operation_type, spec.discount, no_earning, no_redemption
    )


def in_force(c: Conditions, reference: datetime, at: datetime) -> bool:
    return reference + c.valid_from <= at and (c.valid_until is None or at < reference + c.valid_until)


def applies(c: Conditions, facts: Facts) -> bool:
    return (
        (not c.tiers or facts.tier in c.tiers)
        and (not c.channel_kinds or facts.channel_kind in c.channel_kinds)
        and (not c.stores or facts.store in c.stores)
        and (not c.categories or bool(c.categories & facts.categories))
        and (c.new_arrival is None or c.new_arrival == facts.new_arrival)
        and (not c.operation_types or facts.operation_type in c.operation_types)
    )


def line_amount(spec: LineSpec) -> Decimal:
    gross = (spec.price * spec.quantity).quantize(CENT, ROUND_HALF_UP)
    return (gross - gross * spec.discount / 100).quantize(CENT, ROUND_HALF_UP)


def caps_of(facts, amount, rules, tier: Tier, balance, reference, at) -> list[tuple[str, Decimal]]:
    """Every cap on spending points on one line, named, in points."""
    caps = [("balance", balance), ("tier", amount * tier.max_redemption_percent / 100)]
    if facts.excluded_from_redemption:
        caps.append(("product", ZERO))
    for pk, rule in rules:
        in_bracket = (rule.discount_from is None or facts.discount >= rule.discount_from) and (
            rule.discount_to is None or facts.discount < rule.discount_to
        )
        if not (rule.active_set and in_bracket and in_force(rule.conditions, reference, at)):
            continue
        if not applies(rule.conditions, facts):
            continue
        value = {"forbidden": ZERO, "price_share": amount * (rule.percent or 0) / 100}.get(rule.kind)
        caps.append((f"rule {pk}", balance * rule.percent / 100 if value is None else value))
    return caps


def expected_earning(facts, base, earning, promos, tier: Tier, programme: Programme, sale) -> Decimal:
    if facts.excluded_from_earning:
        return ZERO
    deciding = [
        (rule.priority, rule.conditions.valid_from, pk, rule)
        for pk, rule in earning
        if rule.active_set and in_force(rule.conditions, sale.reference, sale.at) and applies(rule.conditions, facts)
    ]
    rate = tier.earn_rate_percent
    if deciding:
        rule = max(deciding, key=lambda row: row[:3])[3]
        rate = ZERO if rule.kind == "no_earning" else rule.rate
    multipliers = [
        promo.multiplier
        for _pk, promo in promos
        if promo.is_active and in_force(promo.conditions, sale.reference, sale.at) and applies(promo.conditions, facts)
    ]
    exact = base * rate / 100 * (max(multipliers) if multipliers and rate > 0 else 1)
    if programme.rounding == "half_up":
        return exact.quantize(WHOLE, ROUND_HALF_UP)
    return exact.quantize(CENT if programme.rounding == "cents" else WHOLE, ROUND_DOWN)


def expected_balance(spec: CustomerSpec, first_order: bool | None, override: Decimal | None) -> Decimal:
    """The ledger's spending rules: nothing blocked or anonymous; members-only points for members; welcome points on
    the first order (by default: no purchase recorded yet)."""
    if spec.kind in ("anonymous", "blocked"):
        return ZERO
    first_order = (not spec.purchased_before) if first_order is None else first_order
    total = ZERO
    for amount, restriction in spec.lots:
        if restriction == "" and spec.kind == "non_member":
            restriction = "members_only"  # what the ledger does with a non-member's points
        if (
            restriction == ""
            or (restriction == "members_only" and spec.kind == "member")
            or (restriction == "first_order" and first_order)
        ):
            total += Decimal(amount)
    return total if override is None else override


# --- building an example in the database ------------------------------------------------------------------------

_keys = count()


def _fields(c: Conditions, reference: datetime) -> dict:
    return {
        "valid_from": reference + c.valid_from,
        "valid_until": None if c.valid_until is None else reference + c.valid_until,
        "channel_kinds": sorted(c.channel_kinds),
        "new_arrival": c.new_arrival,
        "operation_types": sorted(c.operation_types),
    }


def _bulk(model, objects: list, specs: list, world) -> list[tuple[int, object]]:
    """Insert the rules and their many-to-many conditions in a few queries (saving them one by one costs a
    dozen queries each, which would make every example slow)."""
    model.objects.bulk_create(objects)
    for field, key in (("tiers", "tier"), ("stores", "store"), ("categories", "category")):
        through = getattr(model, field).through
        owner = f"{model._meta.model_name}_id"
        through.objects.bulk_create(
            through(**{owner: obj.pk, f"{key}_id": world[field][code].pk})
            for obj, spec in zip(objects, specs, strict=True)
            for code in getattr(spec.conditions, field)
        )
    return [(obj.pk, spec) for obj, spec in zip(objects, specs, strict=True)]


def build_rules(world, reference, redemption, earning, promos):
    sets = world["rule_sets"]
    built = (
        _bulk(
            RedemptionRule,
            [
                RedemptionRuleFactory.build(
                    rule_set=sets[spec.active_set],
                    kind=spec.kind,
                    percent=spec.percent,
                    discount_from=spec.discount_from,
                    discount_to=spec.discount_to,
                    **_fields(spec.conditions, reference),
                )
                for spec in redemption
            ],
            redemption,
            world,
        ),
        _bulk(
            EarningRule,
            [
                EarningRuleFactory.build(
                    rule_set=sets[spec.active_set],
                    kind=spec.kind,
                    rate_percent=spec.rate,
                    priority=spec.priority,
                    **_fields(spec.conditions, reference),
                )
                for spec in earning
            ],
            earning,
            world,
        ),
        _bulk(
            Promotion,
            [
                PromotionFactory.build(
                    is_active=spec.is_active, multiplier=spec.multiplier, **_fields(spec.conditions, reference)
                )
                for spec in promos
            ],
            promos,
            world,
        ),
    )
    rules_changed(world["tiers"]["basic"].programme_id)  # what every save does (bulk inserts do not save)
    return built


def build_customer(tiers, staff, spec: CustomerSpec, reference: datetime) -> Customer | None:
    if spec.kind == "anonymous":
        return None
    customer = (NonMemberFactory if spec.kind == "non_member" else CustomerFactory)()
    if spec.tier is not None:
        # long before the reference moment, so the tier history has it for "as of" calculations too
        tier_assign_manual(
            customer=customer,
            tier=tiers[spec.tier],
            actor=staff,
            reason="property test",
            now=reference - timedelta(days=60),
        )
    for amount, restriction in spec.lots:
        points_accrue(
            customer=customer,
            amount=amount,
            kind="manual",
            operation_key=f"prop-{next(_keys)}",
            restriction=restriction,
        )
    if spec.purchased_before:
        purchase_record(
            customer=customer,
            amount="1",
            occurred_at=reference - timedelta(days=1),
            source_type="order",
            source_id=f"prop-{next(_keys)}",
        )
    if spec.kind == "blocked":
        Customer.objects.filter(pk=customer.pk).update(membership=Customer.Membership.BLOCKED)
        customer.refresh_from_db()
    return customer


@pytest.fixture
def world(tiers) -> dict:
    """What every example shares: the catalogue, stores, channels of each kind, a staff user."""
    catalog_upsert(
        categories=CATEGORIES,
        products=[
            {
                "sku": sku,
                "name": sku,
                "category": product.category,
                "new_arrival": product.new_arrival,
                "arrival_date": "2026-01-01" if product.new_arrival else None,
                "excluded_from_earning": product.excluded_from_earning,
                "excluded_from_redemption": product.excluded_from_redemption,
            }
            for sku, product in PRODUCTS.items()
        ],
    )
    assert dict(Category.objects.values_list("code", "path")) == PATHS
    staff = Actor(user=get_user_model().objects.create(username="property-staff"))
    return {
        "tiers": tiers,
        "categories": {category.code: category for category in Category.objects.all()},
        "stores": {code: StoreFactory(code=code) for code in STORES},
        "channels": {kind: ChannelFactory(kind=kind) for kind in CHANNEL_KINDS},
        "customers": [build_customer(tiers, staff, spec, timezone.now()) for spec in CUSTOMERS],
        "rule_sets": {True: RuleSetFactory(is_active=True), False: RuleSetFactory(is_active=False)},
    }


def _settings(request, examples: int):
    slow = request.config.getoption("--slow")
    return settings(
        max_examples=examples * 10 if slow else examples,
        derandomize=not slow,  # CI runs the same examples every time; --slow explores new ones
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# --- the properties -------------------------------------------------------------------------------------------------

# Every customer of the pool buys the cart, each with a first-order flag, a balance override and a share of what the
# model says is the maximum to spend (101: more than the maximum).
_buyers = st.tuples(
    *[
        st.tuples(st.just(who), _first_order, _override, st.none() | st.integers(0, 101))
        for who in range(len(CUSTOMERS))
    ]
)


@pytest.mark.django_db
def test_no_line_ever_exceeds_a_cap_or_the_balance_and_earning_is_never_negative(request, world):
    @_settings(request, 40)
    @given(
        redemption=st.lists(redemption_rules(), max_size=5),
        earning=st.lists(earning_rules(), max_size=4),
        promos=st.lists(promotions(), max_size=3),
        lines=st.lists(cart_lines(), min_size=1, max_size=8),
        buyers=_buyers,
        sale=st.tuples(st.sampled_from([None, *CHANNEL_KINDS]), st.sampled_from([None, *STORES]), st.booleans()),
        policy=st.tuples(st.sampled_from(["down", "half_up", "cents"]), st.booleans()),
    )
    def check(redemption, earning, promos, lines, buyers, sale, policy):
        with transaction.atomic():  # each example rolls back
            reference = timezone.now()
            programme = Programme.objects.get(code="retail")
            programme.rounding, programme.earn_on_points_paid = policy
            programme.save()
            rules = build_rules(world, reference, redemption, earning, promos)
            for buyer in buyers:
                check_cart(world, programme, rules, lines, buyer, sale, reference)
            transaction.set_rollback(True)

    check()


@dataclass(frozen=True)
class Sale:
    channel_kind: str | None
    store: str | None
    reference: datetime
    at: datetime  # the moment the model evaluates the rules at


def check_cart(world, programme, rules, lines, buyer, sale, reference) -> None:
    who, first_order, override, share = buyer
    channel_kind, store, historical = sale
    customer, customer_spec = world["customers"][who], CUSTOMERS[who]
    tier = world["tiers"][(customer_spec.tier if customer else None) or "basic"]
    balance = expected_balance(customer_spec, first_order, override)
    # Without ``at`` the calculator works at its own "now", a few milliseconds on: no rule boundary lies in between.
    moment = Sale(channel_kind, store, reference, reference if historical else reference + timedelta(milliseconds=1))
    expected = expected_lines(lines, rules, tier, balance, moment)
    maximum = min(sum((line_max for _facts, _amount, _caps, line_max in expected), ZERO), _whole(balance))
    arguments = {
        "customer": customer,
        "lines": [
            CartLine(
                sku=spec.sku,
                quantity=spec.quantity,
                price=spec.price,
                discount_percent=spec.discount,
                operation_type=spec.operation_type,
                category=spec.category,
                new_arrival=spec.new_arrival,
                excluded_from_earning=spec.excluded_from_earning,
                excluded_from_redemption=spec.excluded_from_redemption,
            )
            for spec in lines
        ],
        "channel": world["channels"][channel_kind] if channel_kind else None,
        "store": world["stores"][store] if store else None,
        "at": reference if historical else None,
        "first_order": first_order,
        "spendable_balance": override,
    }
    redeem = None if share is None else (maximum * min(share, 100) / 100).quantize(CENT, ROUND_DOWN)
    if share == 101:
        with pytest.raises(RedemptionAboveMaximum) as raised:
            cart_calculate(**arguments, redeem=maximum + CENT)
        assert raised.value.extra == {"maximum": str(maximum), "requested": str(maximum + CENT)}
        redeem = None

    result = cart_calculate(**arguments, redeem=redeem)

    assert result.at == reference if historical else reference + TICK < result.at < reference + timedelta(days=30)
    assert (result.tier, result.spendable_balance) == (tier.code, balance)
    redeem = redeem or ZERO
    left = redeem
    for (facts, amount, caps, line_max), line in zip(expected, result.lines, strict=True):
        assert line.amount == amount
        # the line's maximum: at most every cap that applies, and the balance; exactly the smallest, in whole points
        for name, cap in caps:
            assert line.max_redeemable <= _whole(cap), (name, cap, line)
        assert line.max_redeemable == line_max, (caps, line)
        assert line.redemption_limit.value == min(cap for _name, cap in caps)
        # points spent: in order, each line up to its maximum
        assert line.redeem == min(line_max, left)
        left -= line.redeem
        # points earned: never negative; what the deciding rule, the largest promotion and the rounding give
        base = amount if programme.earn_on_points_paid else amount - line.redeem
        earned = expected_earning(facts, base, rules[1], rules[2], tier, programme, moment)
        assert line.earn_points == earned >= 0, (line.earning, earned)
    assert (left, result.redeem) == (ZERO, redeem)
    lines_total = sum((line.max_redeemable for line in result.lines), ZERO)
    assert result.max_redeemable == maximum
    assert result.max_redeemable <= balance
    assert result.max_redeemable <= lines_total
    assert result.earn_points == sum((line.earn_points for line in result.lines), ZERO) >= 0


def _whole(value: Decimal) -> Decimal:
    return max(value, ZERO).quantize(WHOLE, ROUND_DOWN)


def expected_lines(lines, rules, tier, balance, sale: Sale) -> list[tuple[Facts, Decimal, list, Decimal]]:
    """Per line: its facts, amount, caps and the maximum redeemable (the smallest cap, rounded down)."""
    expected = []
    for spec in lines:
        facts = product_facts(spec, tier.code, sale.channel_kind, sale.store)
        amount = line_amount(spec)
        caps = caps_of(facts, amount, rules[0], tier, balance, sale.reference, sale.at)
        expected.append((facts, amount, caps, _whole(min(cap for _name, cap in caps))))
    return expected
