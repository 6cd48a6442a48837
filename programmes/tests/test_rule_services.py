"""The rule services keep the history reproducible: rules start now or later, a rule that has taken effect is only ended
or replaced, and a calculation "as of" a moment before a replacement still gives the old result."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.tests.factories import CategoryFactory
from core.actors import SYSTEM
from customers.tests.factories import StoreFactory
from programmes.calculator import CartLine, cart_calculate
from programmes.models import EarningRule, Programme, Promotion, RedemptionRule, RuleSet
from programmes.services import (
    RuleChangeRefused,
    RuleInvalid,
    RuleNotReplaceable,
    rule_create,
    rule_delete,
    rule_end,
    rule_replace,
    rule_set_activate,
    rule_set_deactivate,
    rule_set_delete,
    rule_update,
)
from programmes.tests.factories import EarningRuleFactory, PromotionFactory, RedemptionRuleFactory, RuleSetFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def rule_set(retail):
    return RuleSetFactory(programme=retail)


def _row(rule) -> dict:
    """What is stored of a rule, its conditions included."""
    fresh = type(rule).objects.get(pk=rule.pk)
    values = {field.attname: getattr(fresh, field.attname) for field in type(rule)._meta.concrete_fields}
    values.pop("updated_at")
    return {
        **values,
        "tiers": sorted(fresh.tiers.values_list("pk", flat=True)),
        "stores": sorted(fresh.stores.values_list("pk", flat=True)),
        "categories": sorted(fresh.categories.values_list("pk", flat=True)),
    }


def _earn(customer, at=None) -> tuple[Decimal, str]:
    result = cart_calculate(customer=customer, lines=[CartLine(sku="X-1", quantity=D(1), price=D(1000))], at=at)
    return result.earn_points, result.lines[0].earning[0].text


# --- create ------------------------------------------------------------------------------------------------------


def test_a_rule_is_created_with_its_conditions_from_now(rule_set, tiers, now):
    store, category = StoreFactory(), CategoryFactory()

    rule = rule_create(
        model=EarningRule,
        values={
            "rule_set": rule_set,
            "name": "App 8%",
            "kind": "rate",
            "rate_percent": D("8"),
            "channel_kinds": ["mobile_app"],
            "tiers": [tiers["basic"], tiers["silver"]],
            "stores": [store.pk],
            "categories": [category],
        },
        actor=SYSTEM,
        at=now,
    )

    row = _row(rule)
    assert (row["valid_from"], row["valid_until"], row["rate_percent"], row["channel_kinds"]) == (
        now,
        None,
        D("8.00"),
        ["mobile_app"],
    )
    assert row["tiers"] == sorted([tiers["basic"].pk, tiers["silver"].pk])
    assert (row["stores"], row["categories"]) == ([store.pk], [category.pk])


def test_a_rule_cannot_start_in_the_past(rule_set, now):
    with pytest.raises(RuleChangeRefused) as caught:
        rule_create(
            model=EarningRule,
            values={
                "rule_set": rule_set,
                "name": "Late",
                "rate_percent": D("3"),
                "valid_from": now - timedelta(days=1),
            },
            actor=SYSTEM,
            at=now,
        )

    assert caught.value.code == "rule_change_refused"
    assert [item["code"] for item in caught.value.fields["valid_from"]] == ["start_in_past"]
    assert not EarningRule.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"kind": "rate", "rate_percent": None}, "rate_percent"),  # the database's check lets a NULL rate through
        ({"kind": "no_earning", "rate_percent": D("5")}, "__all__"),
        ({"rate_percent": D("5"), "channel_kinds": ["fax"]}, "channel_kinds"),
        ({"rate_percent": D("5"), "operation_types": ["gambling"]}, "operation_types"),
        ({"rate_percent": D("5"), "valid_until": "start"}, "valid_until"),  # an end not after the start
        ({"rate_percent": D("5"), "name": ""}, "name"),
    ],
)
def test_an_invalid_rule_is_refused_with_the_field(rule_set, now, values, field):
    values = {"rule_set": rule_set, "name": "Rule", **values}
    if values.get("valid_until") == "start":
        values["valid_until"] = now

    with pytest.raises(RuleInvalid) as caught:
        rule_create(model=EarningRule, values=values, actor=SYSTEM, at=now)

    assert field in caught.value.fields
    assert not EarningRule.objects.exists()


def test_tiers_of_another_programme_are_refused(rule_set, now):
    partner = Programme.objects.get(code="b2b").tiers.get()

    with pytest.raises(RuleInvalid) as caught:
        rule_create(
            model=EarningRule,
            values={"rule_set": rule_set, "name": "Rule", "rate_percent": D("5"), "tiers": [partner]},
            actor=SYSTEM,
            at=now,
        )

    assert [item["code"] for item in caught.value.fields["tiers"]] == ["other_programme"]
    assert not EarningRule.objects.exists()


# --- update ------------------------------------------------------------------------------------------------------


def test_a_rule_not_yet_in_force_changes_freely(rule_set, tiers, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1), rate_percent=D("5"))

    rule_update(
        rule=rule,
        changes={
            "rate_percent": D("6"),
            "tiers": [tiers["gold"]],
            "channel_kinds": ["site"],
            "valid_from": now + timedelta(days=2),
        },
        actor=SYSTEM,
        at=now,
    )

    row = _row(rule)
    assert (row["rate_percent"], row["tiers"], row["channel_kinds"], row["valid_from"]) == (
        D("6.00"),
        [tiers["gold"].pk],
        ["site"],
        now + timedelta(days=2),
    )


def test_a_rule_not_yet_in_force_cannot_be_moved_into_the_past(rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1))
    before = _row(rule)

    with pytest.raises(RuleChangeRefused):
        rule_update(rule=rule, changes={"valid_from": now - timedelta(hours=1)}, actor=SYSTEM, at=now)

    assert _row(rule) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"rate_percent": D("20")},
        {"kind": "no_earning", "rate_percent": None},
        {"priority": 5},
        {"channel_kinds": ["site"]},
        {"operation_types": ["purchase"]},
        {"new_arrival": True},
        {"tiers": "gold"},
        {"valid_from": "later"},
        {"rule_set": "other"},
    ],
)
def test_a_rule_in_force_keeps_its_conditions_and_effect(rule_set, tiers, now, changes):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=10), rate_percent=D("5"))
    before = _row(rule)
    if changes.get("tiers") == "gold":
        changes = {"tiers": [tiers["gold"]]}
    if changes.get("valid_from") == "later":
        changes = {"valid_from": now + timedelta(days=1)}
    if changes.get("rule_set") == "other":
        changes = {"rule_set": RuleSetFactory()}

    with pytest.raises(RuleChangeRefused) as caught:
        rule_update(rule=rule, changes=changes, actor=SYSTEM, at=now)

    assert caught.value.status_code == 409
    assert set(caught.value.fields) == set(changes)
    assert _row(rule) == before


def test_a_rule_in_force_may_be_renamed_and_ended_but_not_before_now(rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=10))

    rule_update(
        rule=rule,
        changes={"name": "Renamed", "note": "why", "valid_until": now + timedelta(days=3)},
        actor=SYSTEM,
        at=now,
    )
    with pytest.raises(RuleChangeRefused) as caught:
        rule_update(rule=rule, changes={"valid_until": now - timedelta(minutes=1)}, actor=SYSTEM, at=now)

    row = _row(rule)
    assert (row["name"], row["note"], row["valid_until"]) == ("Renamed", "why", now + timedelta(days=3))
    assert [item["code"] for item in caught.value.fields["valid_until"]] == ["end_in_past"]


def test_an_ended_rule_keeps_its_end(rule_set, now):
    rule = EarningRuleFactory(
        rule_set=rule_set, valid_from=now - timedelta(days=10), valid_until=now - timedelta(days=1)
    )

    with pytest.raises(RuleChangeRefused) as caught:
        rule_update(rule=rule, changes={"valid_until": None}, actor=SYSTEM, at=now)

    assert [item["code"] for item in caught.value.fields["valid_until"]] == ["rule_ended"]
    assert _row(rule)["valid_until"] == now - timedelta(days=1)


def test_ending_a_rule_ends_it_now(rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=10))

    rule_end(rule=rule, actor=SYSTEM, at=now)

    assert _row(rule)["valid_until"] == now


def test_a_promotion_in_force_keeps_its_multiplier_and_switch(retail, now):
    promotion = PromotionFactory(valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=6))
    before = _row(promotion)

    for changes in ({"multiplier": D("3")}, {"is_active": False}, {"programme": Programme.objects.get(code="b2b")}):
        with pytest.raises(RuleChangeRefused):
            rule_update(rule=promotion, changes=changes, actor=SYSTEM, at=now)

    assert _row(promotion) == before


def test_the_update_locks_the_rule_row_before_writing(rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1))

    with CaptureQueriesContext(connection) as queries:
        rule_update(rule=rule, changes={"rate_percent": D("7")}, actor=SYSTEM, at=now)

    statements = [query["sql"] for query in queries.captured_queries]
    table = EarningRule._meta.db_table
    lock = next(i for i, sql in enumerate(statements) if table in sql and "FOR UPDATE" in sql)
    write = next(i for i, sql in enumerate(statements) if sql.startswith(f'UPDATE "{table}"'))
    assert lock < write


# --- replace -----------------------------------------------------------------------------------------------------


def test_replacing_ends_the_rule_now_and_starts_a_copy_with_the_changes(rule_set, tiers, now):
    store, category = StoreFactory(), CategoryFactory()
    old = EarningRuleFactory(
        rule_set=rule_set,
        name="App",
        priority=3,
        valid_from=now - timedelta(days=30),
        valid_until=now + timedelta(days=30),
        rate_percent=D("8"),
        channel_kinds=["mobile_app"],
        new_arrival=False,
        operation_types=["purchase"],
        note="n",
        tiers=[tiers["basic"]],
        stores=[store],
        categories=[category],
    )
    before = _row(old)

    new = rule_replace(rule=old, changes={"rate_percent": D("9")}, actor=SYSTEM, at=now)

    assert _row(old) == {**before, "valid_until": now}
    copied = {key: value for key, value in _row(new).items() if key not in ("id", "created_at")}
    expected = {key: value for key, value in before.items() if key not in ("id", "created_at")}
    assert copied == {**expected, "valid_from": now, "rate_percent": D("9.00")}


def test_the_replacement_may_change_conditions_and_end(rule_set, tiers, now):
    old = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1), tiers=[tiers["basic"]])

    new = rule_replace(
        rule=old, changes={"tiers": [tiers["gold"]], "valid_until": now + timedelta(days=5)}, actor=SYSTEM, at=now
    )

    row = _row(new)
    assert (row["tiers"], row["valid_from"], row["valid_until"]) == ([tiers["gold"].pk], now, now + timedelta(days=5))
    assert _row(old)["tiers"] == [tiers["basic"].pk]


@pytest.mark.parametrize(
    ("start", "end"),
    [(timedelta(days=1), None), (-timedelta(days=5), -timedelta(days=1))],
    ids=["not yet in force", "ended"],
)
def test_only_a_rule_in_force_is_replaced(rule_set, now, start, end):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now + start, valid_until=now + end if end else None)
    before = _row(rule)

    with pytest.raises(RuleNotReplaceable):
        rule_replace(rule=rule, changes={"rate_percent": D("1")}, actor=SYSTEM, at=now)

    assert _row(rule) == before
    assert EarningRule.objects.count() == 1


def test_an_invalid_replacement_changes_nothing(rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))
    before = _row(rule)

    with pytest.raises(RuleInvalid):
        rule_replace(rule=rule, changes={"rate_percent": D("150")}, actor=SYSTEM, at=now)
    with pytest.raises(RuleChangeRefused):
        rule_replace(rule=rule, changes={"valid_until": now - timedelta(hours=1)}, actor=SYSTEM, at=now)

    assert _row(rule) == before
    assert EarningRule.objects.count() == 1


def test_the_replacement_locks_the_old_rule_before_writing(rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))

    with CaptureQueriesContext(connection) as queries:
        rule_replace(rule=rule, changes={"rate_percent": D("1")}, actor=SYSTEM, at=now)

    statements = [query["sql"] for query in queries.captured_queries]
    table = EarningRule._meta.db_table
    lock = next(i for i, sql in enumerate(statements) if table in sql and "FOR UPDATE" in sql)
    writes = [i for i, sql in enumerate(statements) if sql.startswith((f'UPDATE "{table}"', f'INSERT INTO "{table}"'))]
    assert writes
    assert lock < min(writes)


def test_a_calculation_as_of_before_the_replacement_gives_the_old_result(rule_set, customer, now):
    EarningRuleFactory(rule_set=rule_set, name="Ten", valid_from=now - timedelta(days=30), rate_percent=D("10"))
    old = EarningRule.objects.get(name="Ten")
    before_replacement = now - timedelta(days=1)
    earned_before = _earn(customer, at=before_replacement)

    rule_replace(rule=old, changes={"name": "Three", "rate_percent": D("3")}, actor=SYSTEM, at=now)

    assert earned_before == (D("100"), "10% by the rule “Ten”")
    assert _earn(customer, at=before_replacement) == earned_before
    assert _earn(customer) == (D("30"), "3% by the rule “Three”")


def test_a_promotion_as_of_before_its_replacement_keeps_its_multiplier(customer, now):
    promotion = PromotionFactory(
        name="Double", valid_from=now - timedelta(days=2), valid_until=now + timedelta(days=5), multiplier=D("2")
    )
    yesterday = now - timedelta(days=1)

    rule_replace(rule=promotion, changes={"name": "Triple", "multiplier": D("3")}, actor=SYSTEM, at=now)

    # The basic tier earns 5 %: 50 points on 1000, doubled then, tripled now.
    assert _earn(customer, at=yesterday)[0] == D("100")
    assert _earn(customer)[0] == D("150")
    assert Promotion.objects.get(name="Double").valid_until == now


def test_a_redemption_rule_is_replaced_with_its_bracket(rule_set, now):
    old = RedemptionRuleFactory(
        rule_set=rule_set,
        valid_from=now - timedelta(days=1),
        discount_from=D("20"),
        discount_to=D("30"),
        kind="balance_share",
        percent=D("45"),
    )

    new = rule_replace(rule=old, changes={"percent": D("40")}, actor=SYSTEM, at=now)

    row = _row(new)
    assert (row["discount_from"], row["discount_to"], row["kind"], row["percent"]) == (
        D("20.00"),
        D("30.00"),
        "balance_share",
        D("40.00"),
    )
    assert RedemptionRule.objects.get(pk=old.pk).valid_until == now


# --- delete and rule sets ----------------------------------------------------------------------------------------


def test_only_a_rule_not_yet_in_force_is_deleted(rule_set, now):
    scheduled = EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1))
    effective = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))

    rule_delete(rule=scheduled, actor=SYSTEM, at=now)
    with pytest.raises(RuleChangeRefused):
        rule_delete(rule=effective, actor=SYSTEM, at=now)

    assert list(EarningRule.objects.values_list("pk", flat=True)) == [effective.pk]


def test_rule_sets_are_switched_on_and_off_once(retail):
    rule_set = RuleSetFactory(programme=retail, is_active=False)
    version = Programme.objects.get(pk=retail.pk).rules_version

    switched = [
        rule_set_activate(rule_set=rule_set, actor=SYSTEM),
        rule_set_activate(rule_set=rule_set, actor=SYSTEM),
        rule_set_deactivate(rule_set=rule_set, actor=SYSTEM),
    ]

    assert switched == [True, False, True]
    assert RuleSet.objects.get(pk=rule_set.pk).is_active is False
    assert Programme.objects.get(pk=retail.pk).rules_version != version


def test_a_rule_set_with_rules_that_took_effect_is_not_deleted(rule_set, now):
    EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))
    empty = RuleSetFactory()

    with pytest.raises(RuleChangeRefused):
        rule_set_delete(rule_set=rule_set, actor=SYSTEM, at=now)
    rule_set_delete(rule_set=empty, actor=SYSTEM, at=now)

    assert list(RuleSet.objects.values_list("pk", flat=True)) == [rule_set.pk]


def test_an_update_changing_nothing_writes_nothing(rule_set, retail, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1), name="Same", rate_percent=D("5"))
    version = Programme.objects.get(pk=retail.pk).rules_version
    updated_at = EarningRule.objects.get(pk=rule.pk).updated_at

    rule_update(rule=rule, changes={"name": "Same", "rate_percent": D("5.00"), "tiers": []}, actor=SYSTEM, at=now)

    assert Programme.objects.get(pk=retail.pk).rules_version == version
    assert EarningRule.objects.get(pk=rule.pk).updated_at == updated_at
