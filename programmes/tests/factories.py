"""Factories of programme rules. Categories and products: ``catalog.tests.factories`` (or ``catalog_upsert`` for a
tree, which computes the paths).

The conditions held in many-to-many fields are passed as lists and set after the rule is saved:
``EarningRuleFactory(tiers=[gold], categories=[sofas], stores=[store])``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory

from programmes.models import EarningRule, Programme, Promotion, RedemptionRule, RuleSet

# Long before any test's moment: a rule without explicit dates is in force for every calculation.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _retail() -> Programme:
    return Programme.objects.get(code="retail")


class _Conditions(factory.django.DjangoModelFactory):
    """The conditions every rule and promotion shares; the many-to-many ones after the save."""

    class Meta:
        abstract = True
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Rule {n}")
    valid_from = EPOCH
    valid_until = None

    @factory.post_generation
    def tiers(self, create, extracted, **kwargs):
        if create and extracted:
            self.tiers.set(extracted)

    @factory.post_generation
    def stores(self, create, extracted, **kwargs):
        if create and extracted:
            self.stores.set(extracted)

    @factory.post_generation
    def categories(self, create, extracted, **kwargs):
        if create and extracted:
            self.categories.set(extracted)


class RuleSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RuleSet

    programme = factory.LazyFunction(_retail)
    code = factory.Sequence(lambda n: f"rules-{n}")
    name = factory.Sequence(lambda n: f"Rule set {n}")
    is_active = True


class EarningRuleFactory(_Conditions):
    """A rate rule (10 %); ``kind="no_earning", rate_percent=None`` for "no points"."""

    class Meta:
        model = EarningRule

    rule_set = factory.SubFactory(RuleSetFactory)
    kind = EarningRule.Kind.RATE
    rate_percent = Decimal("10")


class RedemptionRuleFactory(_Conditions):
    """A price-share cap (10 %); ``kind="balance_share"`` or ``kind="forbidden", percent=None`` for the others."""

    class Meta:
        model = RedemptionRule

    rule_set = factory.SubFactory(RuleSetFactory)
    kind = RedemptionRule.Kind.PRICE_SHARE
    percent = Decimal("10")
    discount_from = None
    discount_to = None


class PromotionFactory(_Conditions):
    """Double points from ``EPOCH`` for a hundred years."""

    class Meta:
        model = Promotion

    programme = factory.LazyFunction(_retail)
    name = factory.Sequence(lambda n: f"Promotion {n}")
    multiplier = Decimal("2")
    valid_until = datetime(2120, 1, 1, tzinfo=UTC)
    is_active = True
