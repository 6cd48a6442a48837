"""The benchmarks' rulebook (bench/cart.py, bench/orders.py): 200 products in 11 categories, 3 stores, 50 active rules
(25 earning, 15 redemption caps and discount brackets), 10 promotions of which 7 in force — the same 5-line cart meets
the same rules in both. Call after ``django.setup()``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

CATEGORIES = [
    ("furniture", None),
    ("sofas", "furniture"),
    ("chairs", "furniture"),
    ("tables", "furniture"),
    ("beds", "furniture"),
    ("jewellery", None),
    ("rings", "jewellery"),
    ("earrings", "jewellery"),
    ("textiles", None),
    ("lighting", None),
    ("services", None),
]
LEAVES = ["sofas", "chairs", "tables", "beds", "rings", "earrings", "textiles", "lighting", "services"]
CHANNEL_KINDS = [[], ["site"], ["showroom_pos"], ["mobile_app", "site"], ["showroom_pos", "call_centre"]]
OPERATION_TYPES = [[], ["purchase"], [], ["loan_interest"], ["purchase", "paid_service"]]
BRACKETS = [
    ("20", "30", "balance_share", "45"),
    ("30", "40", "balance_share", "40"),
    ("40", "50", "balance_share", "30"),
    ("50", "60", "balance_share", "50"),
    ("60", None, "forbidden", None),
]


def rulebook_create() -> list:
    """The catalogue, the stores and the rules; returns the stores."""
    from catalog.models import Category
    from catalog.services import catalog_upsert
    from integrations.models import Store
    from programmes.models import EarningRule, Programme, Promotion, RedemptionRule, RuleSet

    now = timezone.now()
    since, far = now - timedelta(days=400), now + timedelta(days=400)
    today = now.date()
    catalog_upsert(
        categories=[{"code": code, "name": code.title(), "parent": parent} for code, parent in CATEGORIES],
        products=[
            {
                "sku": f"SKU-{index:04d}",
                "name": f"Product {index}",
                "category": LEAVES[index % len(LEAVES)],
                "new_arrival": index % 10 == 0,
                "arrival_date": (today - timedelta(days=1)).isoformat() if index % 10 == 0 else None,
                "excluded_from_earning": index % 37 == 5,
                "excluded_from_redemption": index % 41 == 7,
            }
            for index in range(200)
        ],
    )
    categories = {category.code: category for category in Category.objects.all()}
    stores = [Store.objects.create(code=f"store-{index}", name=f"Showroom {index}") for index in range(3)]
    retail = Programme.objects.get(code="retail")
    tiers = {tier.code: tier for tier in retail.tiers.all()}
    tier_list = list(tiers.values())

    earning_set = RuleSet.objects.create(programme=retail, code="bench-earning", name="Bench earning")
    for index in range(25):
        no_points = index % 7 == 6
        rule = EarningRule.objects.create(
            rule_set=earning_set,
            name=f"Earning rule {index}",
            priority=index % 5,
            valid_from=since,
            valid_until=far if index % 3 == 0 else None,
            kind="no_earning" if no_points else "rate",
            rate_percent=None if no_points else Decimal(3 + index % 10),
            channel_kinds=CHANNEL_KINDS[index % len(CHANNEL_KINDS)],
            operation_types=OPERATION_TYPES[index % len(OPERATION_TYPES)],
            new_arrival=[None, None, True, False][index % 4],
        )
        if index % 2 == 0:
            rule.categories.set([categories[LEAVES[index % len(LEAVES)]]])
        if index % 4 == 1:
            rule.tiers.set(tier_list[index % 4 : index % 4 + 2])
        if index % 5 == 2:
            rule.stores.set([stores[index % 3]])

    redemption_set = RuleSet.objects.create(programme=retail, code="bench-redemption", name="Bench redemption")
    for start, end, kind, percent in BRACKETS:
        RedemptionRule.objects.create(
            rule_set=redemption_set,
            name=f"Shelf discount from {start}%",
            valid_from=since,
            discount_from=Decimal(start),
            discount_to=Decimal(end) if end else None,
            kind=kind,
            percent=Decimal(percent) if percent else None,
        )
    for index in range(10):
        rule = RedemptionRule.objects.create(
            rule_set=redemption_set,
            name=f"Redemption cap {index}",
            valid_from=since,
            valid_until=far if index % 2 else None,
            kind="forbidden" if index == 9 else "price_share",
            percent=None if index == 9 else Decimal(10 + 3 * index),
            new_arrival=True if index == 0 else None,
            channel_kinds=CHANNEL_KINDS[index % len(CHANNEL_KINDS)],
        )
        if index % 2 == 1 or index == 9:
            rule.categories.set([categories[LEAVES[(index * 2) % len(LEAVES)]]])
        if index % 3 == 2:
            rule.tiers.set([tiers["gold"], tiers["platinum"]])
        if index == 4:
            rule.stores.set(stores[:2])

    for index in range(10):
        in_force = index < 7
        promotion = Promotion.objects.create(
            programme=retail,
            name=f"Promotion {index}",
            multiplier=Decimal("1.5") + Decimal(index % 3) / 2,
            valid_from=since if in_force else far - timedelta(days=10),
            valid_until=far,
            channel_kinds=CHANNEL_KINDS[index % len(CHANNEL_KINDS)],
        )
        if index % 2 == 0:
            promotion.categories.set([categories[LEAVES[(index * 3) % len(LEAVES)]]])
        if index % 3 == 1:
            promotion.stores.set([stores[index % 3]])
    return stores
