"""Programmes, tiers and their rules. See ``tiers`` and ``rules`` for what each holds."""

from programmes.models.rules import EarningRule, OperationType, Promotion, RedemptionRule, RuleSet
from programmes.models.tiers import (
    CustomerTier,
    Programme,
    PurchaseRecord,
    Rounding,
    Tier,
    TierChange,
    TierTerms,
    rules_changed,
)

__all__ = [
    "CustomerTier",
    "EarningRule",
    "OperationType",
    "Programme",
    "Promotion",
    "PurchaseRecord",
    "RedemptionRule",
    "Rounding",
    "RuleSet",
    "Tier",
    "TierChange",
    "TierTerms",
    "rules_changed",
]
