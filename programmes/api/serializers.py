"""Output of the perks API (SPEC F-TIER-3, F-TIER-4)."""

from __future__ import annotations

from rest_framework import serializers


class ProgrammeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class TierOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField(help_text="0 is the entry tier; higher is better.")


class NextTierOutput(TierOutput):
    qualification_threshold = serializers.DecimalField(max_digits=14, decimal_places=2)
    purchases_needed = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Purchases net of returns still needed within the qualification window to reach this tier.",
    )


class PerksOutput(serializers.Serializer):
    reservation_days_bonus = serializers.IntegerField(help_text="Days added to the standard reservation period.")
    reservation_item_limit = serializers.IntegerField(help_text="How many items the customer may reserve at once.")
    early_access_hours = serializers.IntegerField(
        help_text=(
            "New arrivals younger than this many hours are visible to this customer; an item whose age is below "
            "the largest window of the programme is hidden from tiers with fewer hours than its age."
        )
    )
    loan_limit_multiplier = serializers.DecimalField(max_digits=5, decimal_places=2)
    extra = serializers.JSONField(help_text="Other perks, free-form.")


class CustomerTierOutput(serializers.Serializer):
    customer_id = serializers.IntegerField()
    programme = ProgrammeOutput()
    tier = TierOutput()
    since = serializers.DateTimeField(
        allow_null=True, help_text="Null while the customer is in the entry tier by default."
    )
    manual = serializers.BooleanField(help_text="Assigned by staff.")
    manual_until = serializers.DateTimeField(allow_null=True)
    earn_rate_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    max_redemption_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    qualifying_purchases = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Purchases net of returns within the qualification window."
    )
    perks = PerksOutput()
    next_tier = NextTierOutput(allow_null=True, help_text="Null at the top tier.")


def customer_tier_answer(status) -> dict:
    row, tier, next_tier = status.customer_tier, status.tier, status.next_tier
    return {
        "customer_id": row.customer_id,
        "programme": status.programme,
        "tier": tier,
        "since": row.since,
        "manual": row.manual,
        "manual_until": row.manual_until,
        "earn_rate_percent": tier.earn_rate_percent,
        "max_redemption_percent": tier.max_redemption_percent,
        "qualifying_purchases": status.qualifying_purchases,
        "perks": tier.perks,
        "next_tier": None
        if next_tier is None
        else {
            "code": next_tier.code,
            "name": next_tier.name,
            "rank": next_tier.rank,
            "qualification_threshold": next_tier.qualification_threshold,
            "purchases_needed": status.purchases_needed,
        },
    }
