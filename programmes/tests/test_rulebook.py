"""The rulebook cache: one load per rules version, renewed by every change of a rule, rule set, promotion, condition
or tier; rules of an inactive rule set never apply."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import transaction

from catalog.tests.factories import CategoryFactory
from customers.tests.factories import CustomerFactory, StoreFactory
from programmes.calculator import CartLine, cart_calculate
from programmes.models import EarningRule, Programme
from programmes.rulebook import Rulebook, rulebook_for
from programmes.tests.factories import EarningRuleFactory, PromotionFactory, RedemptionRuleFactory, RuleSetFactory

pytestmark = pytest.mark.django_db

D = Decimal


def current() -> Programme:
    """The retail programme as a request reads it: with its current rules version."""
    return Programme.objects.get(code="retail")


@pytest.fixture
def rules(tiers) -> dict:
    rule_set = RuleSetFactory(code="main")
    return {
        "rule_set": rule_set,
        "earning": EarningRuleFactory(rule_set=rule_set, rate_percent=D("8")),
        "redemption": RedemptionRuleFactory(rule_set=rule_set, percent=D("10")),
        "promotion": PromotionFactory(multiplier=D("2")),
    }


def test_the_rulebook_is_loaded_once_and_reused_while_nothing_changes(rules, django_assert_num_queries):
    first = rulebook_for(current())
    programme = current()

    with django_assert_num_queries(0):
        again = rulebook_for(programme)

    assert again is first
    assert [rule.id for rule in first.earning] == [rules["earning"].pk]
    assert [rule.id for rule in first.redemption] == [rules["redemption"].pk]
    assert [promotion.id for promotion in first.promotions] == [rules["promotion"].pk]


def _earning_rates(book: Rulebook) -> list[Decimal | None]:
    return [rule.rate_percent for rule in book.earning]


CHANGES: dict[str, tuple[Callable[[dict, dict], None], Callable[[Rulebook, dict, dict], bool]]] = {
    "earning rule saved": (
        lambda r, t: (setattr(r["earning"], "rate_percent", D("12")), r["earning"].save()),
        lambda book, r, t: _earning_rates(book) == [D("12")],
    ),
    "earning rule created": (
        lambda r, t: EarningRuleFactory(rule_set=r["rule_set"], rate_percent=D("3"), priority=-1),
        lambda book, r, t: _earning_rates(book) == [D("8"), D("3")],
    ),
    "earning rule deleted": (lambda r, t: r["earning"].delete(), lambda book, r, t: book.earning == ()),
    "redemption rule saved": (
        lambda r, t: (setattr(r["redemption"], "kind", "forbidden"), setattr(r["redemption"], "percent", None),
                      r["redemption"].save()),
        lambda book, r, t: [rule.kind for rule in book.redemption] == ["forbidden"],
    ),
    "redemption rule deleted": (lambda r, t: r["redemption"].delete(), lambda book, r, t: book.redemption == ()),
    "rule set deactivated": (
        lambda r, t: (setattr(r["rule_set"], "is_active", False), r["rule_set"].save()),
        lambda book, r, t: book.earning == () and book.redemption == () and len(book.promotions) == 1,
    ),
    "rule set deleted": (
        lambda r, t: r["rule_set"].delete(),
        lambda book, r, t: book.earning == () and book.redemption == (),
    ),
    "tier added to a rule": (
        lambda r, t: r["earning"].tiers.add(t["gold"]),
        lambda book, r, t: book.earning[0].conditions.tier_ids == {t["gold"].pk},
    ),
    "tiers of a rule cleared": (
        lambda r, t: r["redemption"].tiers.clear(),
        lambda book, r, t: book.redemption[0].conditions.tier_ids == frozenset(),
    ),
    "store set on a rule": (
        lambda r, t: r["redemption"].stores.set([StoreFactory(code="north")]),
        lambda book, r, t: len(book.redemption[0].conditions.store_ids) == 1,
    ),
    "category added to a promotion": (
        lambda r, t: r["promotion"].categories.add(CategoryFactory(code="sofas")),
        lambda book, r, t: book.promotions[0].conditions.category_codes == {"sofas"},
    ),
    "promotion deactivated": (
        lambda r, t: (setattr(r["promotion"], "is_active", False), r["promotion"].save()),
        lambda book, r, t: book.promotions == (),
    ),
    "promotion deleted": (lambda r, t: r["promotion"].delete(), lambda book, r, t: book.promotions == ()),
    "tier saved": (
        lambda r, t: (setattr(t["gold"], "earn_rate_percent", D("11")), t["gold"].save()),
        lambda book, r, t: True,  # tiers are read with every calculation; their change still renews the version
    ),
}  # fmt: skip


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_renews_the_rulebook(rules, tiers, change, django_assert_max_num_queries):
    make_change, reflected = CHANGES[change]
    before = rulebook_for(current())

    make_change(rules, tiers)

    programme = current()
    assert programme.rules_version != before.version
    after = rulebook_for(programme)
    assert after is not before
    assert after.version == programme.rules_version
    assert reflected(after, rules, tiers)
    programme = current()
    with django_assert_max_num_queries(0):
        assert rulebook_for(programme) is after  # and cached again


def test_a_change_rolled_back_leaves_the_rulebook_as_it_was(rules):
    before = rulebook_for(current())

    with transaction.atomic():
        rules["earning"].rate_percent = D("50")
        rules["earning"].save()
        assert _earning_rates(rulebook_for(current())) == [D("50")]
        transaction.set_rollback(True)

    after = rulebook_for(current())
    assert after.version == before.version
    assert _earning_rates(after) == [D("8")]


def test_a_calculation_inside_a_rolled_back_change_leaves_nothing_behind(rules):
    customer = CustomerFactory()
    cart = [CartLine("SKU", D("1"), D("1000"))]

    with transaction.atomic():
        rules["earning"].rate_percent = D("50")
        rules["earning"].save()
        inside = cart_calculate(customer=customer, lines=cart).lines[0]
        transaction.set_rollback(True)
    after = cart_calculate(customer=customer, lines=cart).lines[0]

    assert (inside.earn_points, after.earn_points) == (D("1000"), D("160"))  # 50 % then 8 %, doubled


def test_rules_of_an_inactive_rule_set_never_apply(tiers):
    archive = RuleSetFactory(code="archive", is_active=False)
    EarningRuleFactory(rule_set=archive, rate_percent=D("50"))
    RedemptionRuleFactory(rule_set=archive, kind="forbidden", percent=None)
    customer = CustomerFactory()
    cart = [CartLine("SKU", D("1"), D("1000"))]

    inactive = cart_calculate(customer=customer, lines=cart, spendable_balance=D("1000")).lines[0]
    archive.is_active = True
    archive.save()
    active = cart_calculate(customer=customer, lines=cart, spendable_balance=D("1000")).lines[0]

    assert (inactive.earn_points, inactive.max_redeemable, inactive.redemption_limit.code) == (
        D("50"),
        D("200"),
        "tier_cap",
    )
    assert (active.earn_points, active.max_redeemable, active.redemption_limit.code) == (
        D("500"),
        D("0"),
        "rule_forbidden",
    )


def test_the_rulebook_holds_every_rule_of_the_active_sets_whatever_its_dates(rules):
    from datetime import UTC, datetime

    ended = EarningRuleFactory(
        rule_set=rules["rule_set"],
        valid_from=datetime(2020, 1, 1, tzinfo=UTC),
        valid_until=datetime(2021, 1, 1, tzinfo=UTC),
    )
    future = EarningRuleFactory(rule_set=rules["rule_set"], valid_from=datetime(2100, 1, 1, tzinfo=UTC))

    book = rulebook_for(current())

    assert {rule.id for rule in book.earning} == {rules["earning"].pk, ended.pk, future.pk}
    assert EarningRule.objects.count() == 3
