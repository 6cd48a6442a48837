"""Writes of programmes: tiers (``tiers``) and rules (``rules``)."""

from programmes.services.tiers import (
    purchase_record,
    tier_assign_manual,
    tier_upgrade_if_qualified,
    tiers_recalculate,
)

__all__ = ["purchase_record", "tier_assign_manual", "tier_upgrade_if_qualified", "tiers_recalculate"]
