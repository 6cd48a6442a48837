"""Writes of programmes: tiers (``tiers``) and rules (``rules``)."""

from programmes.exceptions import RuleChangeRefused, RuleInvalid, RuleNotReplaceable
from programmes.services.rules import (
    rule_check,
    rule_create,
    rule_delete,
    rule_end,
    rule_replace,
    rule_replace_check,
    rule_set_activate,
    rule_set_deactivate,
    rule_set_delete,
    rule_update,
)
from programmes.services.tiers import (
    purchase_record,
    tier_assign_manual,
    tier_upgrade_if_qualified,
    tiers_recalculate,
)

__all__ = [
    "RuleChangeRefused",
    "RuleInvalid",
    "RuleNotReplaceable",
    "purchase_record",
    "rule_check",
    "rule_create",
    "rule_delete",
    "rule_end",
    "rule_replace",
    "rule_replace_check",
    "rule_set_activate",
    "rule_set_deactivate",
    "rule_set_delete",
    "rule_update",
    "tier_assign_manual",
    "tier_upgrade_if_qualified",
    "tiers_recalculate",
]
