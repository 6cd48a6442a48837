"""Contradictory rules are found (``programmes.conflicts``): a table of pairs that conflict and pairs that do not."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from catalog.models import Category
from catalog.services import catalog_upsert
from customers.tests.factories import StoreFactory
from programmes.conflicts import (
    BRACKET_CAPS,
    EARNING_CONTRADICTION,
    INFO,
    PROHIBITION_AND_CAP,
    PROMOTIONS_OVERLAP,
    WARNING,
    rule_conflicts,
    rules_conflicts,
)
from programmes.models import Programme
from programmes.tests.factories import EarningRuleFactory, PromotionFactory, RedemptionRuleFactory, RuleSetFactory

pytestmark = pytest.mark.django_db

D = Decimal
AT = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def categories(db) -> dict[str, Category]:
    catalog_upsert(
        categories=[
            {"code": "furniture", "name": "Furniture"},
            {"code": "sofas", "name": "Sofas", "parent": "furniture"},
            {"code": "chairs", "name": "Chairs", "parent": "furniture"},
            {"code": "jewellery", "name": "Jewellery"},
        ],
        products=[],
    )
    return {category.code: category for category in Category.objects.all()}


@pytest.fixture
def context(retail, tiers, categories):
    """What the cases name: tiers, categories, two stores and rule sets, by short names."""
    stores = {"north": StoreFactory(code="north"), "south": StoreFactory(code="south")}
    return {
        "tiers": tiers,
        "categories": categories,
        "stores": stores,
        "main": RuleSetFactory(programme=retail, code="main"),
        "extra": RuleSetFactory(programme=retail, code="extra"),
        "off": RuleSetFactory(programme=retail, code="off", is_active=False),
    }


def _resolve(context, spec: dict) -> dict:
    """A case's rule: names of tiers, stores, categories and the rule set resolved; days relative to ``AT``."""
    values = {"valid_from": AT - 10 * DAY, **spec}
    for key in ("valid_from", "valid_until"):
        if isinstance(values.get(key), int):
            values[key] = AT + values[key] * DAY
    if "tiers" in values:
        values["tiers"] = [context["tiers"][code] for code in values["tiers"]]
    if "stores" in values:
        values["stores"] = [context["stores"][code] for code in values["stores"]]
    if "categories" in values:
        values["categories"] = [context["categories"][code] for code in values["categories"]]
    if "rule_set" in values:
        values["rule_set"] = context[values["rule_set"]]
    return values


def _codes(programme) -> list[str]:
    return [conflict.code for conflict in rules_conflicts(programme=programme, at=AT)]


EARNING_CASES = [
    # (first, second, conflict expected)
    ({"rate_percent": D("5")}, {"rate_percent": D("8")}, True),
    ({"rate_percent": D("5")}, {"rate_percent": D("5")}, False),
    ({"rate_percent": D("5")}, {"kind": "no_earning", "rate_percent": None}, True),
    ({"rate_percent": D("5"), "priority": 1}, {"rate_percent": D("8")}, False),
    ({"rate_percent": D("5"), "channel_kinds": ["site"]}, {"rate_percent": D("8"), "channel_kinds": ["erp"]}, False),
    (
        {"rate_percent": D("5"), "channel_kinds": ["site", "erp"]},
        {"rate_percent": D("8"), "channel_kinds": ["erp"]},
        True,
    ),
    ({"rate_percent": D("5"), "channel_kinds": ["site"]}, {"rate_percent": D("8")}, True),
    ({"rate_percent": D("5"), "tiers": ["gold"]}, {"rate_percent": D("8"), "tiers": ["basic", "silver"]}, False),
    ({"rate_percent": D("5"), "tiers": ["gold"]}, {"rate_percent": D("8"), "tiers": ["silver", "gold"]}, True),
    ({"rate_percent": D("5"), "stores": ["north"]}, {"rate_percent": D("8"), "stores": ["south"]}, False),
    ({"rate_percent": D("5"), "stores": ["north"]}, {"rate_percent": D("8"), "stores": ["north"]}, True),
    ({"rate_percent": D("5"), "new_arrival": True}, {"rate_percent": D("8"), "new_arrival": False}, False),
    ({"rate_percent": D("5"), "new_arrival": True}, {"rate_percent": D("8"), "new_arrival": None}, True),
    ({"rate_percent": D("5"), "new_arrival": True}, {"rate_percent": D("8"), "new_arrival": True}, True),
    ({"rate_percent": D("5"), "categories": ["furniture"]}, {"rate_percent": D("8"), "categories": ["sofas"]}, True),
    ({"rate_percent": D("5"), "categories": ["sofas"]}, {"rate_percent": D("8"), "categories": ["sofas"]}, True),
    ({"rate_percent": D("5"), "categories": ["sofas"]}, {"rate_percent": D("8"), "categories": ["chairs"]}, False),
    (
        {"rate_percent": D("5"), "categories": ["sofas", "jewellery"]},
        {"rate_percent": D("8"), "categories": ["chairs", "jewellery"]},
        True,
    ),
    (
        {"rate_percent": D("5"), "operation_types": ["purchase"]},
        {"rate_percent": D("8"), "operation_types": ["loan_interest"]},
        False,
    ),
    ({"rate_percent": D("5"), "valid_until": 5}, {"rate_percent": D("8"), "valid_from": 5}, False),  # adjoining
    ({"rate_percent": D("5"), "valid_until": 6}, {"rate_percent": D("8"), "valid_from": 5}, True),
    ({"rate_percent": D("5"), "valid_from": 3}, {"rate_percent": D("8"), "valid_from": 30}, True),  # both to come
    ({"rate_percent": D("5"), "valid_until": -1}, {"rate_percent": D("8")}, False),  # ended before AT
    ({"rate_percent": D("5"), "rule_set": "off"}, {"rate_percent": D("8")}, False),  # inactive rule set
    ({"rate_percent": D("5"), "rule_set": "extra"}, {"rate_percent": D("8")}, True),  # across active sets
]


@pytest.mark.parametrize(("first", "second", "expected"), EARNING_CASES)
def test_earning_rule_conflicts(retail, context, first, second, expected):
    one = EarningRuleFactory(**{"rule_set": context["main"], **_resolve(context, first)})
    two = EarningRuleFactory(**{"rule_set": context["main"], **_resolve(context, second)})

    conflicts = rules_conflicts(programme=retail, at=AT)

    assert [conflict.code for conflict in conflicts] == ([EARNING_CONTRADICTION] if expected else [])
    if expected:
        conflict = conflicts[0]
        assert (conflict.severity, conflict.first, conflict.second) == (WARNING, one, two)
        assert one.name in conflict.message
        assert two.name in conflict.message


REDEMPTION_CASES = [
    # prohibition and cap
    ({"kind": "forbidden", "percent": None}, {"percent": D("10")}, [PROHIBITION_AND_CAP]),
    (
        {"kind": "forbidden", "percent": None, "categories": ["chairs"]},
        {"percent": D("10"), "categories": ["sofas"]},
        [],
    ),
    (
        {"kind": "forbidden", "percent": None, "discount_from": D("60")},
        {"percent": D("10"), "discount_from": D("20"), "discount_to": D("30")},
        [],
    ),
    (
        {"kind": "forbidden", "percent": None, "discount_from": D("60"), "rule_set": "extra"},
        {"percent": D("10"), "discount_from": D("50")},
        [PROHIBITION_AND_CAP],
    ),
    ({"kind": "forbidden", "percent": None}, {"kind": "forbidden", "percent": None}, []),
    # a bracket matrix
    (
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("20"), "discount_to": D("30")},
        {"kind": "balance_share", "percent": D("40"), "discount_from": D("30"), "discount_to": D("40")},
        [],
    ),
    (
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("20"), "discount_to": D("35")},
        {"kind": "balance_share", "percent": D("40"), "discount_from": D("30"), "discount_to": D("40")},
        [BRACKET_CAPS],
    ),
    (
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("20"), "discount_to": D("35")},
        {"kind": "price_share", "percent": D("45"), "discount_from": D("30"), "discount_to": D("40")},
        [BRACKET_CAPS],
    ),
    (
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("20"), "discount_to": D("35")},
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("30"), "discount_to": D("40")},
        [],
    ),
    (
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("20"), "discount_to": D("35")},
        {"kind": "balance_share", "percent": D("40"), "discount_from": D("30"), "rule_set": "extra"},
        [],
    ),
    (
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("20"), "discount_to": D("35")},
        {"kind": "balance_share", "percent": D("40"), "discount_from": D("30"), "new_arrival": True},
        [BRACKET_CAPS],
    ),
    ({"percent": D("10"), "new_arrival": True}, {"percent": D("15"), "categories": ["sofas"]}, []),  # no bracket
    (
        {"kind": "balance_share", "percent": D("45"), "discount_from": D("20"), "discount_to": D("35")},
        {"kind": "balance_share", "percent": D("40"), "discount_from": D("30"), "valid_from": 40},
        [BRACKET_CAPS],
    ),
    (
        {
            "kind": "balance_share",
            "percent": D("45"),
            "discount_from": D("20"),
            "discount_to": D("35"),
            "rule_set": "off",
        },
        {"kind": "balance_share", "percent": D("40"), "discount_from": D("30"), "rule_set": "off"},
        [],
    ),
]


@pytest.mark.parametrize(("first", "second", "expected"), REDEMPTION_CASES)
def test_redemption_rule_conflicts(retail, context, first, second, expected):
    RedemptionRuleFactory(**{"rule_set": context["main"], **_resolve(context, first)})
    RedemptionRuleFactory(**{"rule_set": context["main"], **_resolve(context, second)})

    assert _codes(retail) == expected


PROMOTION_CASES = [
    ({}, {"multiplier": D("3")}, [PROMOTIONS_OVERLAP]),
    ({}, {}, [PROMOTIONS_OVERLAP]),
    ({"valid_until": 2}, {"valid_from": 2, "valid_until": 9}, []),
    ({"channel_kinds": ["site"]}, {"channel_kinds": ["showroom_pos"]}, []),
    ({}, {"is_active": False}, []),
    ({"valid_from": -20, "valid_until": -1}, {}, []),
]


@pytest.mark.parametrize(("first", "second", "expected"), PROMOTION_CASES)
def test_promotion_overlaps_are_information(retail, context, first, second, expected):
    PromotionFactory(**_resolve(context, {"valid_until": 100, **first}))
    PromotionFactory(**_resolve(context, {"valid_until": 100, **second}))

    conflicts = rules_conflicts(programme=retail, at=AT)

    assert [conflict.code for conflict in conflicts] == expected
    assert all(conflict.severity == INFO for conflict in conflicts)


def test_the_promotion_message_names_the_largest_multiplier(retail):
    PromotionFactory(name="Double", valid_from=AT - DAY, valid_until=AT + DAY, multiplier=D("2"))
    PromotionFactory(name="Triple", valid_from=AT - DAY, valid_until=AT + DAY, multiplier=D("3"))

    [conflict] = rules_conflicts(programme=retail, at=AT)

    times = "\u00d7"  # the multiplication sign
    assert conflict.message == (
        f"Promotions “Double” ({times}2) and “Triple” ({times}3) can apply to the same line at the same time: they do "
        f"not add up, the largest multiplier ({times}3) applies."
    )


def test_the_conflicts_of_one_rule_and_of_another_programme(retail, context):
    one = EarningRuleFactory(rule_set=context["main"], rate_percent=D("5"), valid_from=AT - DAY)
    two = EarningRuleFactory(rule_set=context["main"], rate_percent=D("8"), valid_from=AT - DAY)
    apart = EarningRuleFactory(rule_set=context["main"], rate_percent=D("8"), priority=9, valid_from=AT - DAY)
    b2b = Programme.objects.get(code="b2b")
    b2b_set = RuleSetFactory(programme=b2b)
    EarningRuleFactory(rule_set=b2b_set, rate_percent=D("1"), valid_from=AT - DAY)

    assert [(c.first, c.second) for c in rule_conflicts(rule=one, at=AT)] == [(one, two)]
    assert rule_conflicts(rule=apart, at=AT) == []
    assert rules_conflicts(programme=b2b, at=AT) == []


def test_warnings_come_before_information_in_a_bounded_number_of_queries(
    retail, context, django_assert_max_num_queries
):
    for index in range(10):
        EarningRuleFactory(
            rule_set=context["main"], rate_percent=D(index), tiers=[context["tiers"]["gold"]], valid_from=AT - DAY
        )
    PromotionFactory(valid_from=AT - DAY, valid_until=AT + DAY)
    PromotionFactory(valid_from=AT - DAY, valid_until=AT + DAY)

    with django_assert_max_num_queries(12):
        conflicts = rules_conflicts(programme=retail, at=AT)

    assert [conflict.severity for conflict in conflicts] == [WARNING] * 45 + [INFO]
