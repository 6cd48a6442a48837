"""A programme's rules, loaded once per rules version and kept in the process (the cart calculator's hot path).

``Programme.rules_version`` is renewed (a random value) in the same transaction as every change to the programme's
tiers, rule sets, rules and promotions (``programmes.models.rules_changed``), so a rulebook cached under an older
version is never used again. The rulebook holds every rule of the programme's active rule sets whatever its dates:
the calculator picks those in force at its moment, which is what makes "as of" recalculations possible.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from programmes.models import EarningRule, Programme, Promotion, RedemptionRule, Tier


@dataclass(frozen=True)
class LineFacts:
    """What conditions look at: the sale, the customer's tier and the line's product."""

    tier_id: int
    channel_kind: str | None
    store_id: int | None
    category_codes: frozenset[str]  # the product's category and its ancestors
    new_arrival: bool
    operation_type: str
    discount_percent: Decimal


@dataclass(frozen=True)
class Conditions:
    valid_from: datetime
    valid_until: datetime | None
    tier_ids: frozenset[int]
    channel_kinds: frozenset[str]
    store_ids: frozenset[int]
    category_codes: frozenset[str]
    new_arrival: bool | None
    operation_types: frozenset[str]

    def in_force(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    def match(self, facts: LineFacts) -> bool:
        return (
            (not self.tier_ids or facts.tier_id in self.tier_ids)
            and (not self.channel_kinds or facts.channel_kind in self.channel_kinds)
            and (not self.store_ids or facts.store_id in self.store_ids)
            and (not self.category_codes or not self.category_codes.isdisjoint(facts.category_codes))
            and (self.new_arrival is None or self.new_arrival == facts.new_arrival)
            and (not self.operation_types or facts.operation_type in self.operation_types)
        )


@dataclass(frozen=True)
class CompiledEarningRule:
    id: int
    name: str
    priority: int
    conditions: Conditions
    kind: str
    rate_percent: Decimal | None


@dataclass(frozen=True)
class CompiledRedemptionRule:
    id: int
    name: str
    conditions: Conditions
    discount_from: Decimal | None
    discount_to: Decimal | None
    kind: str
    percent: Decimal | None

    def match(self, facts: LineFacts) -> bool:
        return (
            (self.discount_from is None or facts.discount_percent >= self.discount_from)
            and (self.discount_to is None or facts.discount_percent < self.discount_to)
            and self.conditions.match(facts)
        )


@dataclass(frozen=True)
class CompiledPromotion:
    id: int
    name: str
    conditions: Conditions
    multiplier: Decimal


@dataclass(frozen=True)
class Rulebook:
    programme_id: int
    version: uuid.UUID
    earning: tuple[CompiledEarningRule, ...]
    redemption: tuple[CompiledRedemptionRule, ...]
    promotions: tuple[CompiledPromotion, ...]
    tiers: tuple[Tier, ...]  # by rank, the entry tier first

    def earning_rule(self, facts: LineFacts, at: datetime) -> CompiledEarningRule | None:
        """The deciding earning rule: the highest priority, then the latest start (the rules are pre-sorted)."""
        return next((r for r in self.earning if r.conditions.in_force(at) and r.conditions.match(facts)), None)

    def redemption_rules(self, facts: LineFacts, at: datetime) -> list[CompiledRedemptionRule]:
        return [r for r in self.redemption if r.conditions.in_force(at) and r.match(facts)]

    def promotion(self, facts: LineFacts, at: datetime) -> CompiledPromotion | None:
        """The applicable promotion with the largest multiplier (promotions do not stack)."""
        return next((p for p in self.promotions if p.conditions.in_force(at) and p.conditions.match(facts)), None)


def _conditions(rule) -> Conditions:
    return Conditions(
        valid_from=rule.valid_from,
        valid_until=rule.valid_until,
        tier_ids=frozenset(tier.pk for tier in rule.tiers.all()),
        channel_kinds=frozenset(rule.channel_kinds or ()),
        store_ids=frozenset(store.pk for store in rule.stores.all()),
        category_codes=frozenset(category.code for category in rule.categories.all()),
        new_arrival=rule.new_arrival,
        operation_types=frozenset(rule.operation_types or ()),
    )


_CONDITIONS = ("tiers", "stores", "categories")


def rulebook_load(programme: Programme) -> Rulebook:
    """Read the rules and tiers from the database (a dozen queries): use ``rulebook_for``, which caches."""
    in_active_set = {"rule_set__programme": programme, "rule_set__is_active": True}
    earning = sorted(
        (
            CompiledEarningRule(rule.pk, rule.name, rule.priority, _conditions(rule), rule.kind, rule.rate_percent)
            for rule in EarningRule.objects.filter(**in_active_set).prefetch_related(*_CONDITIONS)
        ),
        key=lambda r: (-r.priority, -r.conditions.valid_from.timestamp(), -r.id),
    )
    redemption = tuple(
        CompiledRedemptionRule(
            rule.pk, rule.name, _conditions(rule), rule.discount_from, rule.discount_to, rule.kind, rule.percent
        )
        for rule in RedemptionRule.objects.filter(**in_active_set).order_by("pk").prefetch_related(*_CONDITIONS)
    )
    promotions = sorted(
        (
            CompiledPromotion(promotion.pk, promotion.name, _conditions(promotion), promotion.multiplier)
            for promotion in Promotion.objects.filter(programme=programme, is_active=True).prefetch_related(
                *_CONDITIONS
            )
        ),
        key=lambda p: (-p.multiplier, p.id),
    )
    tiers = tuple(programme.tiers.order_by("rank"))
    return Rulebook(programme.pk, programme.rules_version, tuple(earning), redemption, tuple(promotions), tiers)


_cache: dict[int, Rulebook] = {}
_cache_lock = threading.Lock()


def rulebook_for(programme: Programme) -> Rulebook:
    """The programme's rulebook for its ``rules_version`` (as read with the programme): no query when cached."""
    cached = _cache.get(programme.pk)
    if cached is not None and cached.version == programme.rules_version:
        return cached
    loaded = rulebook_load(programme)
    with _cache_lock:
        _cache[programme.pk] = loaded
    return loaded


_tiers_cache: dict[int, tuple[uuid.UUID, tuple[Tier, ...]]] = {}


def tiers_for(programme: Programme) -> tuple[Tier, ...]:
    """The programme's tiers by rank for its ``rules_version`` (as read with the programme), like ``rulebook_for``
    (a tier's save renews the version): the rulebook's when it is cached, else one query for the tiers alone (the
    purchase path needs no rules). No query when cached."""
    rulebook = _cache.get(programme.pk)
    if rulebook is not None and rulebook.version == programme.rules_version:
        return rulebook.tiers
    cached = _tiers_cache.get(programme.pk)
    if cached is not None and cached[0] == programme.rules_version:
        return cached[1]
    tiers = tuple(programme.tiers.order_by("rank"))
    with _cache_lock:
        _tiers_cache[programme.pk] = (programme.rules_version, tiers)
    return tiers
