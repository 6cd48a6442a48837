"""The demo programmes of the case studies (SPEC F-TIER-6), created by migration 0002 and restored by tests that
flush the database. Plain data and a function taking the model classes, so the migration can use its historical
models."""

from __future__ import annotations

from decimal import Decimal

PROGRAMMES = [
    {"code": "retail", "name": "Retail programme", "customer_kind": "retail", "balance_type": "retail"},
    {"code": "b2b", "name": "B2B programme", "customer_kind": "b2b", "balance_type": "b2b"},
]

_GOLD_PERKS = {"reservation_days_bonus": 1, "reservation_item_limit": 7, "early_access_hours": 48}

TIERS = {
    "retail": [
        {"code": "basic", "name": "Basic", "rank": 0, "qualification_threshold": "0", "earn_rate_percent": "5",
         "max_redemption_percent": "20", "welcome_bonus": "500"},
        {"code": "silver", "name": "Silver", "rank": 1, "qualification_threshold": "100000", "earn_rate_percent": "7",
         "max_redemption_percent": "20", "welcome_bonus": "500"},
        {"code": "gold", "name": "Gold", "rank": 2, "qualification_threshold": "300000", "earn_rate_percent": "10",
         "max_redemption_percent": "25", "welcome_bonus": "1000", **_GOLD_PERKS},
        {"code": "platinum", "name": "Platinum", "rank": 3, "qualification_threshold": "1000000",
         "earn_rate_percent": "12", "max_redemption_percent": "30", "welcome_bonus": "5000", **_GOLD_PERKS},
    ],
    "b2b": [
        {"code": "partner", "name": "Partner", "rank": 0, "qualification_threshold": "0", "earn_rate_percent": "5",
         "max_redemption_percent": "20", "welcome_bonus": "500"},
    ],
}  # fmt: skip

_DECIMALS = ("qualification_threshold", "earn_rate_percent", "max_redemption_percent", "welcome_bonus")


def demo_programmes_create(Programme, Tier, BalanceType) -> None:
    """Create the demo programmes and tiers that are missing; leaves existing ones as they are."""
    for data in PROGRAMMES:
        balance_type = BalanceType.objects.filter(code=data["balance_type"]).first()
        if balance_type is None:
            continue  # the points migration creates both; a database without them gets no demo programme
        programme, _ = Programme.objects.get_or_create(
            code=data["code"],
            defaults={"name": data["name"], "customer_kind": data["customer_kind"], "balance_type": balance_type},
        )
        for tier in TIERS[data["code"]]:
            values = {key: Decimal(value) if key in _DECIMALS else value for key, value in tier.items()}
            Tier.objects.get_or_create(programme=programme, code=values.pop("code"), defaults=values)


def demo_programmes_delete(Programme, Tier) -> None:
    codes = [data["code"] for data in PROGRAMMES]
    Tier.objects.filter(programme__code__in=codes).delete()
    Programme.objects.filter(code__in=codes).delete()


def programmes_ensure_demo() -> None:
    """The demo programmes, for tests whose database was flushed (transactional tests)."""
    from points.models import BalanceType
    from points.services.lifetimes import balance_types_ensure_defaults
    from programmes.models import Programme, Tier

    balance_types_ensure_defaults()
    demo_programmes_create(Programme, Tier, BalanceType)
