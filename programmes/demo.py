"""The demo programmes of the case studies (SPEC F-TIER-6), created by migration 0002 and restored by tests that
flush the database. Plain data and a function taking the model classes, so the migration can use its historical
models."""

from __future__ import annotations

from datetime import timedelta
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


# --- demo catalogue and rules (``make run`` only; not in migrations, so tests start without rules) -------------

DEMO_CATEGORIES = [
    {"code": "furniture", "name": "Furniture"},
    {"code": "sofas", "name": "Sofas", "parent": "furniture"},
    {"code": "chairs", "name": "Chairs", "parent": "furniture"},
    {"code": "tables", "name": "Tables", "parent": "furniture"},
    {"code": "jewellery", "name": "Jewellery"},
    {"code": "rings", "name": "Rings", "parent": "jewellery"},
    {"code": "services", "name": "Delivery and assembly"},
]


def _demo_products(today) -> list[dict]:
    yesterday = (today - timedelta(days=1)).isoformat()
    return [
        {"sku": "SOFA-OSLO-3", "name": "Sofa Oslo, 3 seats", "category": "sofas"},
        {"sku": "SOFA-BERGEN", "name": "Corner sofa Bergen", "category": "sofas", "new_arrival": True,
         "arrival_date": yesterday},
        {"sku": "CHAIR-MALMO", "name": "Chair Malmö", "category": "chairs"},
        {"sku": "TABLE-TURKU", "name": "Dining table Turku", "category": "tables"},
        {"sku": "RING-585-01", "name": "Gold ring 585", "category": "rings"},
        {"sku": "RING-585-NEW", "name": "Gold ring 585, new collection", "category": "rings", "new_arrival": True,
         "arrival_date": yesterday},
        {"sku": "DELIVERY", "name": "Delivery", "category": "services"},
        {"sku": "GIFT-CARD-5000", "name": "Gift card 5,000", "excluded_from_earning": True,
         "excluded_from_redemption": True},
    ]  # fmt: skip


# The jewellery chain's discount-bracket matrix before its relaunch: a share of the balance by shelf discount.
DISCOUNT_BRACKETS = [
    ("Shelf discount 20-29%: up to 45% of the balance", "20", "30", "balance_share", "45"),
    ("Shelf discount 30-39%: up to 40% of the balance", "30", "40", "balance_share", "40"),
    ("Shelf discount 40-49%: up to 30% of the balance", "40", "50", "balance_share", "30"),
    ("Shelf discount 50-59%: up to 50% of the balance", "50", "60", "balance_share", "50"),
    ("Shelf discount 60% and more: no points", "60", None, "forbidden", None),
]


def demo_rules_load(*, now) -> list[str]:
    """The demo catalogue, rule sets, rules and a promotion of the retail programme; what already exists (by code
    or name) is left alone. Returns what was created."""
    from catalog.models import Category
    from catalog.services import catalog_upsert
    from programmes.models import EarningRule, Programme, Promotion, RedemptionRule, RuleSet

    created = []
    retail = Programme.objects.filter(code="retail").first()
    if retail is None:
        return created
    if not Category.objects.filter(code="furniture").exists():
        catalog_upsert(categories=DEMO_CATEGORIES, products=_demo_products(now.date()))
        created.append("demo catalogue")
    since = now.replace(year=2021, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)

    matrix, new = RuleSet.objects.get_or_create(
        programme=retail,
        code="discount-brackets-2021",
        defaults={
            "name": "Discount-bracket matrix (before the relaunch)",
            "is_active": False,
            "description": "Spending by shelf discount as a share of the balance; replaced by the tier caps.",
        },
    )
    if new:
        for name, start, end, kind, percent in DISCOUNT_BRACKETS:
            RedemptionRule.objects.create(
                rule_set=matrix,
                name=name,
                valid_from=since,
                discount_from=Decimal(start),
                discount_to=Decimal(end) if end else None,
                kind=kind,
                percent=Decimal(percent) if percent else None,
            )
        created.append("rule set discount-brackets-2021")

    main, new = RuleSet.objects.get_or_create(
        programme=retail, code="main", defaults={"name": "Programme rules", "is_active": True}
    )
    if new:
        categories = {category.code: category for category in Category.objects.filter(code="services")}
        RedemptionRule.objects.create(
            rule_set=main, name="New arrivals: up to 10% in points", valid_from=since, new_arrival=True,
            kind="price_share", percent=Decimal("10"),
        )  # fmt: skip
        services = RedemptionRule.objects.create(
            rule_set=main, name="Delivery and assembly: no points", valid_from=since, kind="forbidden"
        )
        services.categories.set(categories.values())
        no_earning = EarningRule.objects.create(
            rule_set=main, name="Delivery and assembly earn nothing", valid_from=since, kind="no_earning", priority=100
        )
        no_earning.categories.set(categories.values())
        EarningRule.objects.create(
            rule_set=main, name="Loan interest: 3% cashback", valid_from=since, kind="rate", priority=50,
            rate_percent=Decimal("3"), operation_types=["loan_interest"],
        )  # fmt: skip
        app = EarningRule.objects.create(
            rule_set=main, name="Mobile app: 8% for Basic and Silver", valid_from=since, kind="rate", priority=10,
            rate_percent=Decimal("8"), channel_kinds=["mobile_app"],
        )  # fmt: skip
        app.tiers.set(retail.tiers.filter(code__in=["basic", "silver"]))
        created.append("rule set main")

    if not Promotion.objects.filter(programme=retail, name="Double points week").exists():
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        Promotion.objects.create(
            programme=retail, name="Double points week", multiplier=Decimal("2"), valid_from=start,
            valid_until=start + timedelta(days=7), channel_kinds=["site", "showroom_pos"],
        )  # fmt: skip
        created.append("promotion Double points week")
    return created
